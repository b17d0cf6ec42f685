"""The MLflow UI in a real headless Chromium on a small finished run: the link the CLI prints opens the
experiment's runs (model-training view, not the GenAI overview) and a parent run shows its description table.

Needs Debian's ``chromium`` (``.ci/run`` installs it): skipped without it, failed under ``CI=true``. With
``HMIL_BENCH_SCREENSHOTS=DIR`` it also saves ``experiment.png``, ``parent.png`` and ``compare_plot.png`` there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli.main import main
from benchmark.cli.run import ui_url
from tests.requirements import require
from tests.tracking.browser import chromium, dump_dom, mlflow_server, page_text, screenshot, table_rows

# Text of MLflow 3's GenAI experiment overview (its cards), never on the model-training runs page.
GENAI_OVERVIEW = ("Token Usage", "Tokens per Trace", "Latency", "Cost Breakdown")
MEAN_STD = re.compile(r"^\d\.\d{3} ± \d\.\d{3}$")


def _shots() -> Path | None:
    folder = os.environ.get("HMIL_BENCH_SCREENSHOTS")
    return Path(folder) if folder else None


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    require(None if chromium() else "chromium is not installed (Debian: apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{tmp}/mlflow.db"
    store = ["--dataset", "digits-panda", "--tracking-uri", uri]
    run = [*store, "--models", "abmil,meanpool", "--folds", "2", "--epochs", "1", "--threads", "1"]
    run += ["--cache-dir", str(tmp / "cache"), "--splits-dir", str(tmp / "splits"), "--no-compare"]
    assert main(["run", *run]) == 0
    if shots := _shots():
        shots.mkdir(parents=True, exist_ok=True)
        plot = shots / "compare_plot.png"
        assert main(["compare", *store, "--bootstrap", "0", "--plot", str(plot)]) == 0 and plot.stat().st_size
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("digits-panda")
    parents = client.search_runs([exp.experiment_id], "tags.`benchmark.role` = 'parent'")
    assert sorted(r.data.tags["benchmark.method"] for r in parents) == ["abmil", "meanpool"]
    with mlflow_server(uri, tmp / "server.log") as base:
        yield base, exp.experiment_id, {r.data.tags["benchmark.method"]: r for r in parents}


def _dom(url: str, *needles: str) -> str:
    """The rendered DOM; loaded again with more virtual time when a needle is missing (a slow server)."""
    for budget_ms in (15000, 30000, 60000):
        dom = dump_dom(url, budget_ms=budget_ms)
        if all(n in page_text(dom) for n in needles):
            break
    return dom


def test_experiment_link_opens_the_runs_not_the_genai_overview(ui):
    base, experiment_id, parents = ui
    url = ui_url(experiment_id, host=base)  # the link `benchmark run` prints
    names = [r.info.run_name for r in parents.values()]
    assert all(re.fullmatch(rf"{m}-[0-9a-f]{{8}}", r.info.run_name) for m, r in parents.items()), names
    text = page_text(_dom(url, *names))
    for name in names:
        assert name in text, f"parent run {name} not listed on {url}: {text[:1500]}"
    assert "Run Name" in text, text[:1500]  # the runs table's header
    shown = [marker for marker in GENAI_OVERVIEW if marker in text]
    assert not shown, f"{url} shows the GenAI overview ({shown}): {text[:1500]}"
    assert "Judges" not in text, f"{url} opened in the GenAI view (its side bar): {text[:1500]}"
    if shots := _shots():
        screenshot(url, shots / "experiment.png", window="1600,1000")


def test_parent_page_shows_the_description_table(ui):
    base, experiment_id, parents = ui
    parent = parents["abmil"]
    url = f"{base}/#/experiments/{experiment_id}/runs/{parent.info.run_id}"
    dom = _dom(url, "AUC (macro OvR)")
    text = page_text(dom)
    assert parent.info.run_name in text and "Description" in text, text[:1500]
    assert "2/2 folds finished" in text, text[:3000]
    rows = {row[0]: row[1:] for row in table_rows(dom)}
    assert rows.get("test metric") == ["fine", "coarse"], f"no description table in {url}: {rows}"
    auc = rows["AUC (macro OvR)"]
    assert all(MEAN_STD.match(cell) for cell in auc), auc
    m = parent.data.metrics
    assert auc[0] == f"{m['test.fine.auc.mean']:.3f} ± {m['test.fine.auc.std']:.3f}"
    assert {"balanced accuracy", "accuracy", "F1 macro", "quadratic κ"} <= rows.keys(), rows
    if shots := _shots():
        screenshot(url, shots / "parent.png", window="1600,1400")
