"""``benchmark perf``: the trainer's batched path vs CLAM's loop vs the compute floor, measured in one run.

For every model, three paths train the same freshly seeded model for the same epochs on the same slides
(`benchmark.run.perf_paths`):

* **reference** — CLAM's training loop: batch 1, each bag ``torch.load``-ed from ``pt_files/<slide>.pt`` at
  every step of every epoch, the same total loss (CLAM's instance loss and HMIL's auxiliary terms included),
  validation every epoch bag by bag from the files;
* **batched** — `benchmark.run.train.fit_fold` itself (length-bucketed padded batches, the configured loss
  terms, bf16 autocast on CUDA only, validation through `predict` and checkpoint selection every epoch);
* **floor** — the batched path's batches pre-built on the device: forward, loss, backward and step only.
  The batched path can at best reach it.

The slides are split once (4/5 training, 1/5 validation, `benchmark.run.perf_split`). Each path runs one
untimed warm-up epoch on at most two batches of slides (allocator, lazy initialisation, thread pool) before
its timed epochs from a fresh model. Speed is reported as ratios measured in the same run (robust to how busy
the machine is): epoch time of the reference (or floor) over the path's. Peak RSS is the sampled process RSS
during the timed epochs of a path (the process's, so it includes the dataset in RAM); on CUDA the allocator's
peak is reported too. The bag-size regime (``--bags``) is described in `benchmark.run.perf_bags`.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from benchmark.core.config import CVConfig, DataConfig, RunConfig
from benchmark.core.errors import ConfigError
from benchmark.core.overrides import Overrides
from benchmark.data.bags import BagCollection
from benchmark.run.memory import PeakMemory
from benchmark.run.perf_bags import BagRegime, describe_bags, load_perf_bags, parse_bags, perf_split
from benchmark.run.perf_paths import PathTiming, batched_path, floor_path, reference_path, write_pt_files
from benchmark.run.resolve import expand_models, resolve_run_config
from benchmark.run.setup import resolve_device
from benchmark.run.threads import apply_thread_policy

__all__ = ["PATHS", "PerfReport", "run_perf"]

log = logging.getLogger(__name__)

PATHS = ("reference", "batched", "floor")
Runner = Callable[[RunConfig, BagCollection, np.ndarray, np.ndarray], PathTiming]
Measured = tuple[PathTiming, float, float | None]  # timing, peak RSS MiB, peak CUDA MiB (None off CUDA)


@dataclass
class PerfReport:
    """A `run_perf` measurement.

    Attributes:
        regime: what was measured — bags (the ``--bags`` value), source, slides (train/val), D, dtype,
            bag-size min/median/max, epochs, warm-up, threads, device, torch version.
        rows: one per (model, path) with epoch_s, train_s, val_s, train_slides_per_s, speed_vs_reference,
            speed_vs_floor (epoch-time ratios; > 1 = faster), the same two ratios on training time alone,
            steps, peak_rss_mib, peak_cuda_mib (None off CUDA) and loss (the last epoch's mean loss terms).
    """

    regime: dict[str, object]
    rows: list[dict[str, object]]

    def to_dict(self) -> dict[str, object]:
        return {"regime": self.regime, "rows": self.rows}


def _config(
    name: str, data: DataConfig, *, epochs: int, batch_size: int | None, device: str, seed: int
) -> RunConfig:
    """The model's resolved run config as ``benchmark run`` would build it, with early stopping off so that
    every path runs exactly ``epochs`` epochs."""
    train: dict[str, object] = {"epochs": epochs, "patience": 0, "device": device}
    if batch_size is not None:
        train["batch_size"] = batch_size
    return resolve_run_config(name, data=data, cv=CVConfig(), seed=seed, overrides=Overrides(train=train))


def _timed(
    run: Runner,
    config: RunConfig,
    bags: BagCollection,
    split: tuple[np.ndarray, np.ndarray],
    device: torch.device,
    warmup: bool,
) -> Measured:
    """One path's timing and peak memory, after its untimed warm-up epoch on the first slides."""
    train_idx, val_idx = split
    if warmup:
        k = 2 * config.train.batch_size
        one = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=1))
        run(one, bags, train_idx[:k], val_idx[: config.train.batch_size])
    cuda = PeakMemory(device) if device.type == "cuda" else nullcontext()
    with PeakMemory("cpu") as rss, cuda:
        timing = run(config, bags, train_idx, val_idx)
    return timing, rss.peak_mb, cuda.peak_mb if device.type == "cuda" else None


def _rows(
    name: str, config: RunConfig, results: dict[str, Measured], n_train: int, n_val: int
) -> list[dict[str, object]]:
    """Rows of one model: per path its times, throughput, memory, loss terms and the ratios to the others."""
    epoch = {p: (t.train_seconds + t.eval_seconds) / t.epochs for p, (t, _, _) in results.items()}
    train = {p: t.train_seconds / t.epochs for p, (t, _, _) in results.items()}
    rows = []
    for path, (t, rss, cuda) in results.items():
        rows.append(
            {
                "model": name,
                "path": path,
                "batch_size": 1 if path == "reference" else config.train.batch_size,
                "epochs": t.epochs,
                "train_slides": n_train,
                "val_slides": n_val,
                "steps": t.steps,
                "epoch_s": epoch[path],
                "train_s": train[path],
                "val_s": t.eval_seconds / t.epochs,
                "train_slides_per_s": n_train / train[path],
                "speed_vs_reference": epoch["reference"] / epoch[path],
                "speed_vs_floor": epoch["floor"] / epoch[path],
                "train_speed_vs_reference": train["reference"] / train[path],
                "train_speed_vs_floor": train["floor"] / train[path],
                "peak_rss_mib": rss,
                "peak_cuda_mib": cuda,
                "loss": t.loss,
            }
        )
    return rows


def _regime(regime: BagRegime, data: DataConfig, bags: BagCollection, **run: object) -> dict[str, object]:
    """The header of a measurement: the regime's source and shape, then ``run`` (split, epochs, threads...)."""
    source = {
        "small": f"{data.name} as loaded",
        "realistic": f"generated (benchmark.run.perf_bags.realistic_bags), {data.name}'s labels and class shares",
        "fixed": f"{data.name}, each bag resampled to {regime.size} of its instances",
    }[regime.kind]
    return {
        "bags": regime.label,
        "source": source,
        **describe_bags(bags),
        **run,
        "torch": torch.__version__,
    }


def run_perf(
    data: DataConfig,
    models: Sequence[str],
    *,
    bags: str | BagRegime = "small",
    epochs: int = 2,
    batch_size: int | None = None,
    slides: int | None = None,
    device: str = "auto",
    threads: int | None = None,
    seed: int = 0,
    warmup: bool = True,
) -> PerfReport:
    """Measure the reference, batched and floor paths for every model on one bag-size regime.

    Args:
        data: the dataset (its labels and hierarchy; its bags too unless ``bags="realistic"``).
        models: registry names, or ``["all"]``.
        bags: "small", "realistic" or a bag size N (see `benchmark.run.perf_bags`).
        epochs: timed epochs per path (after the warm-up).
        batch_size: bags per step of the batched and floor paths (default: the resolved config's).
        slides: use only this many slides (the realistic cohort's size for ``bags="realistic"``).
        device: "auto", "cpu" or "cuda[:i]".
        threads: torch CPU threads (`benchmark.run.threads.apply_thread_policy`; default: the CPU budget).
        seed: run seed (model init, shuffles, generated bags).
        warmup: run the untimed warm-up epoch before each path.

    Raises:
        ConfigError: a bad ``bags``, ``epochs`` or ``slides`` value, or an unknown device.
    """
    regime = parse_bags(bags)
    if epochs < 1:
        raise ConfigError(f"--epochs must be ≥ 1 (timed epochs per path), got {epochs}.")
    used_threads = apply_thread_policy(threads)
    dev = resolve_device(device)
    names = expand_models(models)
    collection = load_perf_bags(data, regime, slides=slides, seed=seed)
    split = perf_split(collection, seed=seed)
    header = _regime(
        regime,
        data,
        collection,
        train_slides=len(split[0]),
        val_slides=len(split[1]),
        epochs=epochs,
        warmup="1 untimed epoch on ≤ 2 batches of slides per path" if warmup else "none",
        threads=used_threads,
        device=str(dev),
    )
    report = PerfReport(header, [])
    log.debug("perf: %s", report.regime)
    with tempfile.TemporaryDirectory(prefix="benchmark-perf-") as tmp:
        paths = write_pt_files(collection, Path(tmp))
        runners: dict[str, Runner] = {
            "reference": partial(_reference, paths),
            "batched": batched_path,
            "floor": floor_path,
        }
        for name in names:
            config = _config(name, data, epochs=epochs, batch_size=batch_size, device=device, seed=seed)
            results = {p: _timed(runners[p], config, collection, split, dev, warmup) for p in PATHS}
            rows = _rows(name, config, results, len(split[0]), len(split[1]))
            report.rows += rows
            log.info(
                "%s: batched ×%.2f vs reference, %.2f of the floor's speed",
                name,
                rows[1]["speed_vs_reference"],
                rows[1]["speed_vs_floor"],
            )
    return report


def _reference(
    paths: Sequence[Path], config: RunConfig, bags: BagCollection, train_idx: np.ndarray, val_idx: np.ndarray
) -> PathTiming:
    """`reference_path` with the runner signature (the files bound first)."""
    return reference_path(config, bags, paths, train_idx, val_idx)
