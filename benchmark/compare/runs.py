"""Read fold runs from MLflow and pick one comparable set per method for `benchmark compare`.

Layout read here (written by the tracking layer): one experiment per dataset; a parent run per
(method, dataset, config) tagged ``benchmark.role=parent``; nested fold runs tagged
``benchmark.role=fold`` and ``benchmark.fold=<k>`` that carry the ``test.*`` metrics. Every run carries
``benchmark.method``, ``benchmark.config_hash`` and ``benchmark.split_digest``.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.entities import Run, ViewType

from benchmark.core.errors import BenchmarkError, SplitError, UnknownNameError

__all__ = ["FoldRun", "Selection", "load_fold_runs", "select_runs", "short"]

logger = logging.getLogger(__name__)

_PAGE = 1000  # runs per search page; search_runs is paginated through `page_token`
_UNTAGGED = "<untagged>"


def short(digest: str, n: int = 12) -> str:
    """Short prefix of a hash for messages and tables (digests are sha256 hex)."""
    return digest[:n] if digest else _UNTAGGED


@dataclass(frozen=True)
class FoldRun:
    """One FINISHED fold run, reduced to what the comparison needs."""

    run_id: str
    method: str
    config_hash: str
    split_digest: str  # "" when the run has no digest tag
    fold: int
    start_time: int  # ms since the epoch
    parent_id: str | None
    metrics: dict[str, float]
    params: dict[str, str] = field(default_factory=dict)  # e.g. n_train, n_test, cv.n_folds


@dataclass(frozen=True)
class Selection:
    """Fold runs chosen for the comparison: one config per method, one run per (method, fold)."""

    runs: list[FoldRun]
    split_digest: str | None
    configs: dict[str, str]  # method -> selected config hash
    notes: list[str] = field(default_factory=list)


def _check_store(tracking_uri: str) -> None:
    """Refuse a local store that does not exist: MLflow would silently create an empty one."""
    parsed = urlparse(tracking_uri)
    if tracking_uri.startswith("databricks"):
        return  # "databricks" / "databricks://profile" are not paths even without a URL scheme
    if parsed.scheme == "sqlite":
        path = tracking_uri[len("sqlite:///") :] if tracking_uri.startswith("sqlite:///") else ""
    elif parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else tracking_uri
    else:
        return  # remote servers report their own errors
    if path and path != ":memory:" and not os.path.exists(path):
        raise BenchmarkError(
            f"MLflow tracking store {tracking_uri!r} does not exist ({path} not found); pass --tracking-uri "
            "pointing at the store that `benchmark run` wrote to (default sqlite:///mlflow.db)"
        )


def _search(client: MlflowClient, experiment_id: str, filter_string: str) -> list[Run]:
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string, ViewType.ACTIVE_ONLY, max_results=_PAGE, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _role_filter(role: str) -> str:
    return f"tags.`benchmark.role` = '{role}'"


def load_fold_runs(tracking_uri: str, experiment: str) -> tuple[list[FoldRun], dict[str, int]]:
    """Fetch the FINISHED fold runs of an experiment and the start times of its parent runs.

    Returns:
        ``(fold_runs, parent_start)`` where ``parent_start`` maps parent run id -> start time (ms).

    Raises:
        BenchmarkError: the store or experiment does not exist, or it holds no finished fold run.
    """
    _check_store(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None or exp.lifecycle_stage != "active":
        names = [e.name for e in client.search_experiments()]
        close = difflib.get_close_matches(experiment, names, n=1)
        hint = f" (closest: {close[0]!r})" if close else ""
        raise BenchmarkError(
            f"MLflow experiment {experiment!r} not found in {tracking_uri}; existing: "
            f"{', '.join(sorted(names)) or 'none'}{hint}. Run `benchmark run --dataset {experiment}` first "
            "or pass --experiment NAME"
        )
    raw = _search(client, exp.experiment_id, _role_filter("fold"))
    parents = _search(client, exp.experiment_id, _role_filter("parent"))
    parent_start = {p.info.run_id: int(p.info.start_time or 0) for p in parents}

    runs: list[FoldRun] = []
    unfinished = 0
    for run in raw:
        if run.info.status != "FINISHED":
            unfinished += 1  # FAILED / KILLED / RUNNING / SCHEDULED folds never enter a table
            continue
        tags = run.data.tags
        method, fold = tags.get("benchmark.method"), tags.get("benchmark.fold", "")
        if not method or not fold.isdigit():
            logger.warning(
                "skipping fold run %s: missing benchmark.method or benchmark.fold tag", run.info.run_id
            )
            continue
        runs.append(
            FoldRun(
                run_id=run.info.run_id,
                method=method,
                config_hash=tags.get("benchmark.config_hash", ""),
                split_digest=tags.get("benchmark.split_digest", "").lower(),
                fold=int(fold),
                start_time=int(run.info.start_time or 0),
                parent_id=tags.get("mlflow.parentRunId"),
                metrics=dict(run.data.metrics),
                params=dict(run.data.params),
            )
        )
    if not runs:
        extra = f" ({unfinished} fold run(s) are FAILED, KILLED or still RUNNING)" if unfinished else ""
        raise BenchmarkError(
            f"MLflow experiment {experiment!r} has no FINISHED fold runs{extra}; run "
            f"`benchmark run --dataset {experiment}` first"
        )
    logger.debug("experiment %s: %d finished fold runs, %d skipped", experiment, len(runs), unfinished)
    return runs, parent_start


def _digest_listing(runs: Sequence[FoldRun]) -> str:
    """``"1a2b3c4d5e6f (abmil, transmil), 9f8e7d6c5b4a (clam-sb)"`` for error messages."""
    by_digest: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        by_digest[r.split_digest].add(r.method)
    return ", ".join(f"{short(d)} ({', '.join(sorted(m))})" for d, m in sorted(by_digest.items()))


def _filter_digest(runs: list[FoldRun], prefix: str, experiment: str) -> list[FoldRun]:
    prefix = prefix.strip().lower()
    matches = sorted({r.split_digest for r in runs if r.split_digest and r.split_digest.startswith(prefix)})
    if not prefix or not matches:
        raise SplitError(
            f"--split-digest {prefix!r} matches no finished fold run in experiment {experiment!r}; "
            f"recorded digests: {_digest_listing(runs)}"
        )
    if len(matches) > 1:
        raise SplitError(
            f"--split-digest {prefix!r} is ambiguous, it matches {', '.join(short(d) for d in matches)}; "
            "give a longer prefix"
        )
    return [r for r in runs if r.split_digest == matches[0]]


def _pick_configs(
    runs: list[FoldRun], parent_start: dict[str, int]
) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Newest (config_hash, split_digest) per method, dated by its parent run's start time.

    A rerun of the same config on a new split file is a different group, so the newest split wins without
    the two ever being averaged together.
    """
    started: dict[tuple[str, str, str], int] = {}
    for r in runs:
        key = (r.method, r.config_hash, r.split_digest)
        # Fall back to the fold's own start time when the parent run is missing or deleted.
        t = parent_start.get(r.parent_id or "", r.start_time)
        started[key] = max(started.get(key, t), t)
    chosen: dict[str, tuple[str, str]] = {}
    notes: list[str] = []
    for method in sorted({m for m, _, _ in started}):
        groups = sorted(
            ((t, c, d) for (m, c, d), t in started.items() if m == method), key=lambda g: (g[0], g[1], g[2])
        )
        t, config, digest = groups[-1]
        chosen[method] = (config, digest)
        if len(groups) > 1:
            when = datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
            older = ", ".join(short(c) for _, c, _ in groups[:-1])
            notes.append(f"{method}: using newest config {short(config)} ({when} UTC); superseded: {older}")
    return chosen, notes


def select_runs(
    runs: list[FoldRun],
    parent_start: dict[str, int],
    *,
    experiment: str,
    methods: Sequence[str] | None = None,
    split_digest: str | None = None,
) -> Selection:
    """Choose one config per method and one run per (method, fold); refuse mixed split digests.

    Args:
        runs: FINISHED fold runs of one experiment.
        parent_start: parent run id -> start time (ms), used to find each method's newest config.
        experiment: experiment name, for messages.
        methods: keep only these methods (order ignored); unknown names raise.
        split_digest: keep only runs whose split digest starts with this prefix.

    Raises:
        UnknownNameError: a requested method has no finished fold run.
        SplitError: the digest prefix matches none or several digests, or the selection mixes digests.
    """
    if methods:
        present = sorted({r.method for r in runs})
        for name in methods:
            if name not in present:
                close = difflib.get_close_matches(name, present, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise UnknownNameError(
                    f"method {name!r} has no finished fold runs in experiment {experiment!r}; "
                    f"methods present: {', '.join(present)}.{hint}"
                )
        runs = [r for r in runs if r.method in set(methods)]
    if split_digest is not None:
        runs = _filter_digest(runs, split_digest, experiment)

    chosen, notes = _pick_configs(runs, parent_start)
    latest: dict[tuple[str, int], FoldRun] = {}
    for r in runs:
        if (r.config_hash, r.split_digest) != chosen[r.method]:
            continue
        key = (r.method, r.fold)
        # A retried fold leaves several finished runs; the newest one is the result of record.
        if key not in latest or r.start_time > latest[key].start_time:
            latest[key] = r
    selected = sorted(latest.values(), key=lambda r: (r.method, r.fold))

    digests = {r.split_digest for r in selected}
    if len(digests) > 1:
        raise SplitError(
            f"runs in experiment {experiment!r} use {len(digests)} different split digests: "
            f"{_digest_listing(selected)}; methods evaluated on different folds are not comparable, "
            "pass --split-digest <prefix> to pick one"
        )
    for note in notes:
        logger.info(note)
    digest = digests.pop() or None
    return Selection(selected, digest, {m: c for m, (c, _) in chosen.items()}, notes)
