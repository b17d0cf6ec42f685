"""What a run is asked to do: `RunRequest`, shared by ``benchmark run``, ``ablate``, ``tune`` and ``validate``
(`benchmark.tune.request.TuneRequest` and `benchmark.reproduce.runner.ValidationRequest` extend it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from benchmark.core.config import CVConfig, DataConfig, TrackingConfig
from benchmark.core.errors import ConfigError
from benchmark.core.overrides import Overrides

__all__ = ["EXECUTORS", "RunRequest", "SlurmOptions"]

#: Where cells run (`benchmark.run.executors`): this process, or worker processes on this machine.
EXECUTORS = ("inline", "local", "slurm")


@dataclass(frozen=True, kw_only=True)
class SlurmOptions:
    """``--executor slurm``: one job array per `benchmark run`, submitted through submitit.

    Attributes:
        folder: where submitit writes job scripts and each cell's logs (must be on a file system every
            node sees; it also holds the locks that close each parent exactly once).
        partition, time_min, cpus_per_task, gpus_per_task, mem_gb: the resources of one cell.
        array_parallelism: cells running at once (SLURM's ``%`` array limit).
        retries: resubmissions of a cell whose job died (pre-empted, cancelled, killed; not a user error).
        wait: follow the array until every cell ended (else return after submitting).
    """

    folder: str = "slurm-logs"
    partition: str | None = None
    time_min: int = 60
    cpus_per_task: int = 1
    gpus_per_task: int = 0
    mem_gb: float | None = None
    array_parallelism: int = 32
    retries: int = 1
    wait: bool = False

    def __post_init__(self) -> None:
        for name in ("time_min", "cpus_per_task", "array_parallelism"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--slurm-{name.replace('_', '-')} must be ≥ 1, got {getattr(self, name)}.")
        if self.gpus_per_task < 0 or self.retries < 0:
            raise ConfigError("--slurm-gpus-per-task and --retries must be ≥ 0.")


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """A request to train and test models on identical folds.

    Attributes:
        models: registry names, or ["all"].
        data, cv: dataset and split protocol (``cv.splits_dir``/``cv.splits_file`` say where the folds are).
        seed: run seed (fold seeds derive from it).
        overrides: ``train.*``/``model.*``/``loss.*`` values over the resolved defaults (typed from CLI options
            and config files, strings from ``--set``).
        tracking: MLflow store and experiment (default: the dataset name).
        new_splits: regenerate the default split file / accept a digest differing from the recorded one.
        folds: run only these fold indices (default all).
        threads: torch CPU threads of this process (default: the CPUs it may use, `benchmark.run.threads`);
            execution only, not hashed, recorded on every fold run.
        label: method name recorded in MLflow instead of the model name (one model only), e.g. the rungs
            of an ablation ladder ("hmil+ham").
        parent_tags: extra tags on the parent run (e.g. ``benchmark.params_from.study`` for tuned runs).
        command: the command line, shown in the parent run's MLflow description (not hashed).
        heatmaps: log the attention heatmaps of this many test slides per fold (output only, not hashed).
        executor: "inline" (one cell after the other in this process) or "local" (``jobs`` worker
            processes); execution only, results are the same.
        jobs: worker processes of the local executor (default: one per CPU, at most the number of cells).
        devices: devices the local workers are pinned to in turn (e.g. ``["cuda:0", "cuda:1"]``).
        slurm: the job array of ``executor="slurm"``.
    """

    models: Sequence[str]
    data: DataConfig = field(default_factory=DataConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    seed: int = 0
    overrides: Overrides = field(default_factory=Overrides)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    new_splits: bool = False
    folds: Sequence[int] | None = None
    threads: int | None = None
    label: str | None = None
    parent_tags: Mapping[str, str] = field(default_factory=dict)
    command: str | None = None
    heatmaps: int = 0
    executor: str = "inline"
    jobs: int | None = None
    devices: Sequence[str] = ()
    slurm: SlurmOptions = field(default_factory=SlurmOptions)

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}.")
        if self.jobs is not None and self.jobs < 1:
            raise ConfigError(f"--jobs must be ≥ 1, got {self.jobs}.")
        if (self.jobs is not None or self.devices) and self.executor == "inline":
            raise ConfigError("--jobs and --devices need --executor local (inline runs one cell at a time).")
        if self.executor == "slurm" and (self.jobs is not None or self.devices):
            raise ConfigError(
                "--jobs/--devices are for --executor local; SLURM sizes cells with --slurm-* options."
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be ≥ 1, got {self.threads}.")
        if self.heatmaps < 0:
            raise ConfigError(f"--heatmaps must be ≥ 0 test slides per fold, got {self.heatmaps}.")
