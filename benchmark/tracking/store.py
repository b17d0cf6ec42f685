"""MLflow layout: experiment per dataset, parent run per (method, dataset, config), child run per fold.

Tags (all runs): ``benchmark.role`` (parent|fold), ``benchmark.method``, ``benchmark.dataset``,
``benchmark.config_hash``, ``benchmark.split_digest``, ``benchmark.data_fingerprint``; parents add
``benchmark.split_file`` (and the protocol, version, commit); fold runs add ``benchmark.fold``. The experiment records the digest of every split file it has seen
(``benchmark.cv.files.<file name>``) so a run on different folds is refused unless ``--new-splits``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities import Metric, Param, Run
from mlflow.tracking import MlflowClient

from benchmark import __version__
from benchmark.core.errors import BenchmarkError, SplitError

try:
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH as _MAX_PARAM_LENGTH
except ImportError:  # older MLflow
    _MAX_PARAM_LENGTH = 500

__all__ = [
    "DEFAULT_TRACKING_URI",
    "BufferedCurves",
    "aggregate_folds",
    "check_split_digest",
    "check_tracking_uri",
    "children",
    "configure",
    "ensure_experiment",
    "find_parent",
    "finished_folds",
    "git_commit",
    "log_metrics",
    "log_params",
    "results_json",
    "retire_superseded",
]

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_MAX_PARAMS_PER_BATCH = 100
_OPENED: set[str] = set()  # SQLite stores created/migrated and servers reached by this process
_MAX_METRICS_PER_BATCH = 1000


def configure(tracking_uri: str | None) -> str:
    """Resolve the store (option > MLFLOW_TRACKING_URI > ``sqlite:///mlflow.db``), check it and activate it."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    source = "--tracking-uri" if tracking_uri else ("MLFLOW_TRACKING_URI" if env else "--tracking-uri")
    uri = check_tracking_uri(tracking_uri or env or DEFAULT_TRACKING_URI, option=source)
    # MLflow installs its own INFO handler at import ("Creating initial MLflow database tables..."); our CLI
    # decides verbosity, so quieten it before the store is first opened (that is when it logs the tables).
    if not logging.getLogger("benchmark").isEnabledFor(logging.DEBUG):
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    if uri not in _OPENED:  # once per process: later calls (the comparison after a run, …) reuse it
        if uri.startswith("sqlite:///"):
            _open_sqlite_store_once(uri)
        elif uri.startswith(("http://", "https://")):
            _check_server(uri, source)
        _OPENED.add(uri)
    return uri


def _check_server(uri: str, option: str) -> None:
    """Fail at once when nothing answers at ``uri``: MLflow's client retries each request for minutes first
    (MLFLOW_HTTP_REQUEST_MAX_RETRIES, …_TIMEOUT). Any HTTP answer will do; TLS problems are MLflow's to tell."""
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5).close()
    except OSError as exc:  # URLError (refused, unknown host), TimeoutError; an HTTPError is an answer
        reason = getattr(exc, "reason", exc)
        if not isinstance(exc, urllib.error.HTTPError) and not isinstance(reason, ssl.SSLError):
            msg = f"{option} {uri}: the MLflow server does not answer ({reason}); start `mlflow server`"
            raise BenchmarkError(f"{msg} (docs/scaling.md) or fix the URI.") from None


_TRACKING_FIX = "use sqlite:///mlflow.db (a file here), sqlite:////abs/path.db or an http(s):// MLflow server"
_SERVERS = ("http", "https", "databricks", "databricks-uc", "uc", "postgresql", "mysql", "mssql")


def check_tracking_uri(uri: str, *, option: str = "--tracking-uri") -> str:
    """``uri`` when MLflow can open a store of its form (checked without I/O but for the SQLite directory),
    else a `BenchmarkError` naming ``option``, what is wrong and the fix; cheap, so callers run it up front."""
    scheme, _, rest = uri.partition("://") if "://" in uri else ("", "", uri)
    scheme = scheme.lower()
    file_ok = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() in ("true", "1")
    problem = None
    if scheme == "sqlite":
        parent = Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent
        if not uri.startswith("sqlite:///") or uri == "sqlite:///":
            problem = "a SQLite URI is sqlite:/// then a file path"
        elif not parent.is_dir():
            raise BenchmarkError(f"{option} {uri}: directory {parent} does not exist; create it first.")
    elif scheme == "file" or (not scheme and file_ok):  # MLflow reads a bare path as a file store
        problem = None if file_ok else "MLflow 3 retired file stores (MLFLOW_ALLOW_FILE_STORE=true keeps one)"
    elif scheme.split("+")[0] in _SERVERS or uri in ("databricks", "databricks-uc", "uc"):
        server = scheme in ("http", "https") and not rest.split("/", 1)[0]  # postgresql:///db: local socket
        problem = f"no host after {scheme}://" if server else None
    else:
        problem = f"unknown scheme {scheme!r}" if scheme else "not a URI (no scheme://)"
    if problem:
        raise BenchmarkError(f"{option} {uri}: {problem}; {_TRACKING_FIX}.")
    return uri


def _open_sqlite_store_once(uri: str) -> None:
    """Create/migrate a SQLite store under an exclusive file lock.

    Two processes opening the same new SQLite file at once (two `benchmark run` started together) race in
    MLflow's schema creation and one dies with an alembic "Online migration expected to match one row"
    error. The lock (``<db>.lock`` beside the file) serialises the open; once the schema exists each call
    costs one lock and one small query.
    """
    import fcntl  # POSIX-only: imported here so that the module still imports where it does not exist

    db = Path(uri.removeprefix("sqlite:///")).expanduser().resolve()
    with open(db.with_name(db.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            MlflowClient(uri).search_experiments(max_results=1)  # creates and migrates the schema if needed
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# MLflow 3's UI reads an experiment's kind to choose its pages (runs and models, not traces and judges). Its
# GenAI/model-training switch still defaults to GenAI, hence the ``?workflowType=machine_learning`` link the
# CLI prints.
_EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """Experiment id for ``name``, created if missing (a deleted one is restored), marked as a model-training
    experiment so the MLflow UI opens on its runs."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, tags={"benchmark.version": __version__, **_EXPERIMENT_KIND})
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    for key, value in _EXPERIMENT_KIND.items():  # experiments made by older versions lack the tag
        if exp.tags.get(key) != value:
            client.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def check_split_digest(
    client: MlflowClient, exp_id: str, split_file: str, digest: str, *, accept_new: bool
) -> None:
    """Refuse a split file whose digest differs from the one recorded for this experiment."""
    key = f"benchmark.cv.files.{Path(split_file).name}"
    recorded = client.get_experiment(exp_id).tags.get(key)
    if recorded is not None and recorded != digest and not accept_new:
        raise SplitError(
            f"split file {split_file} has sha256 {digest[:12]}… but experiment {exp_id} recorded {recorded[:12]}… "
            "for it; results would not be comparable. Restore the original file, or pass --new-splits to accept it."
        )
    if recorded != digest:
        client.set_experiment_tag(exp_id, key, digest)


def _tag_filter(tags: Mapping[str, str]) -> str:
    return " and ".join(f"tags.\"{k}\" = '{v}'" for k, v in tags.items())


def find_parent(client: MlflowClient, exp_id: str, tags: Mapping[str, str]) -> Run | None:
    """The newest parent run with exactly these identifying tags, or None."""
    runs = client.search_runs(
        [exp_id], _tag_filter({"benchmark.role": "parent", **tags}), order_by=["attributes.start_time DESC"]
    )
    return runs[0] if runs else None


def children(client: MlflowClient, exp_id: str, parent_id: str) -> list[Run]:
    """Every child run of a parent, newest first."""
    return client.search_runs(
        [exp_id], f"tags.\"mlflow.parentRunId\" = '{parent_id}'", order_by=["attributes.start_time DESC"]
    )


def finished_folds(client: MlflowClient, exp_id: str, parent_id: str) -> dict[int, Run]:
    """fold index → newest FINISHED child run of this parent."""
    done: dict[int, Run] = {}
    for run in children(client, exp_id, parent_id):
        fold = run.data.tags.get("benchmark.fold")
        if run.info.status == "FINISHED" and fold is not None and int(fold) not in done:
            done[int(fold)] = run
    return done


def retire_superseded(client: MlflowClient, exp_id: str, parent_id: str, fold: int, by: str) -> int:
    """Soft-delete the KILLED/FAILED children of ``fold`` once run ``by`` has finished it, so the parent lists
    exactly one run per fold (they stay restorable in MLflow's trash, tagged with their successor)."""
    n = 0
    for run in children(client, exp_id, parent_id):
        tags = run.data.tags
        if tags.get("benchmark.fold") == str(fold) and run.info.status in ("KILLED", "FAILED"):
            client.set_tag(run.info.run_id, "benchmark.superseded_by", by)
            client.delete_run(run.info.run_id)
            n += 1
    return n


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, object]) -> None:
    """Log params in batches, truncating values to MLflow's limit (read from the library)."""
    items = [Param(k, str(v)[:_MAX_PARAM_LENGTH]) for k, v in params.items()]
    for i in range(0, len(items), _MAX_PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[i : i + _MAX_PARAMS_PER_BATCH], synchronous=True)


def log_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    """Log metrics in batches; NaN is kept (MLflow stores it), None is skipped."""
    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
    for i in range(0, len(items), _MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=items[i : i + _MAX_METRICS_PER_BATCH], synchronous=True)


class BufferedCurves:
    """Per-epoch curves for one run, written in batches (one store transaction every ``interval`` seconds
    and at `flush`) instead of one per epoch: SQLite commits would otherwise dominate short epochs."""

    def __init__(self, client: MlflowClient, run_id: str, interval: float = 10.0) -> None:
        self.client, self.run_id, self.interval = client, run_id, interval
        self._pending: list[Metric] = []
        self._last = time.monotonic()

    def add(self, record: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, step) for k, v in record.items() if v is not None]
        if time.monotonic() - self._last >= self.interval:
            self.flush()

    def flush(self) -> None:
        for i in range(0, len(self._pending), _MAX_METRICS_PER_BATCH):
            self.client.log_batch(
                self.run_id, metrics=self._pending[i : i + _MAX_METRICS_PER_BATCH], synchronous=True
            )
        self._pending = []
        self._last = time.monotonic()


def aggregate_folds(fold_runs: Mapping[int, Run]) -> dict[str, dict[str, object]]:
    """Mean, sample std (ddof=1) and per-fold values of every ``test.*`` and ``compute.*`` metric."""
    keys = sorted(
        {k for r in fold_runs.values() for k in r.data.metrics if k.startswith(("test.", "compute."))}
    )
    out: dict[str, dict[str, object]] = {}
    for key in keys:
        values = [fold_runs[f].data.metrics.get(key, math.nan) for f in sorted(fold_runs)]
        arr = np.asarray(values, dtype=float)
        finite = arr[~np.isnan(arr)]
        out[key] = {
            "mean": float(finite.mean()) if finite.size else math.nan,
            "std": float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
            "n": int(finite.size),
            "values": [None if math.isnan(v) else v for v in arr.tolist()],
        }
    return out


def results_json(aggregated: Mapping[str, Mapping[str, object]]) -> str:
    def clean(v: object) -> object:
        return None if isinstance(v, float) and math.isnan(v) else v

    return json.dumps({k: {kk: clean(vv) for kk, vv in v.items()} for k, v in aggregated.items()}, indent=1)


def git_commit() -> str | None:
    """The git commit of the installed source tree, when it is a checkout (else None)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
