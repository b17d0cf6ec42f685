"""`benchmark.compare` against a real temporary MLflow SQLite store with known per-fold metrics."""

from __future__ import annotations

import json
import math
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from rich.console import Console
from scipy.stats import wilcoxon

from benchmark.compare import Comparison, compare, paired_wilcoxon, plot_comparison
from benchmark.core.errors import BenchmarkError, ConfigError, SplitError, UnknownNameError

EXP = "panda-sim"
MIXED = "mixed-sim"
DIGEST_A = "a1" * 32  # sha256 hex length
DIGEST_B = "a1" + "b2" * 31  # shares the prefix "a1" with DIGEST_A
CONFIG = {"abmil": "cfg-abmil-new", "clam-sb": "cfg-clam", "hmil": "cfg-hmil"}
OLD_ABMIL = "cfg-abmil-old"
CLASSES = ("ISUP_0", "ISUP_1", "ISUP_10")  # ISUP_10 checks natural class ordering

# Known per-fold fine AUCs: hmil beats both on every fold -> exact two-sided Wilcoxon p = 2/2^5 = 0.0625.
AUC = {
    "hmil": [0.90, 0.88, 0.93, 0.91, 0.89],
    "clam-sb": [0.87, 0.89, 0.86, 0.90, 0.84],
    "abmil": [0.85, 0.86, 0.84, 0.88, 0.83],
}
BASE = {"hmil": 0.80, "clam-sb": 0.75, "abmil": 0.70}


def _metrics(method: str, fold: int) -> dict[str, float]:
    """Deterministic metric values for one fold; only hmil has a coarse head."""
    rng = np.random.default_rng([fold, len(method)])
    out = {"test.fine.auc": AUC[method][fold], "test.coarse.auc": AUC[method][fold] - 0.05}
    for name in ("accuracy", "balanced_accuracy", "specificity", "sensitivity", "f1_macro", "qwk"):
        out[f"test.fine.{name}"] = BASE[method] + 0.01 * fold + 0.001 * len(name)
        out[f"test.coarse.{name}"] = BASE[method] + 0.1 + 0.01 * rng.random()
    for i, cls in enumerate(CLASSES):
        out[f"test.fine.auc.{cls}"] = AUC[method][fold] - 0.02 * i
        out[f"test.fine.sensitivity.{cls}"] = 0.6 + 0.05 * i + 0.01 * fold
    if method == "clam-sb" and fold == 4:
        out["test.fine.qwk"] = math.nan  # undefined on this fold -> n = 4
    if method == "hmil":
        out |= {f"test.coarse_head.{k}": v for k, v in [("auc", 0.95 - 0.01 * fold), ("accuracy", 0.9)]}
        out["test.hierarchy_consistency"] = 0.97 + 0.005 * fold
    return out


def _log(client, exp_id, method, config, digest, folds, t0, status="FINISHED", metrics=_metrics):
    """One parent run plus nested fold runs, with the tag layout of the tracking layer."""
    common = {
        "benchmark.method": method,
        "benchmark.dataset": EXP,
        "benchmark.config_hash": config,
        "benchmark.split_digest": digest,
    }
    parent = client.create_run(
        exp_id, start_time=t0, tags={**common, "benchmark.role": "parent", "benchmark.n_folds": "5"}
    )
    for k in folds:
        run = client.create_run(
            exp_id,
            start_time=t0 + 10 + k,
            tags={
                **common,
                "benchmark.role": "fold",
                "benchmark.fold": str(k),
                "mlflow.parentRunId": parent.info.run_id,
            },
        )
        values = metrics(method, k)
        client.log_batch(run.info.run_id, metrics=[Metric(key, v, t0, 0) for key, v in values.items()])
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, status)
    client.set_terminated(parent.info.run_id)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'm.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment(EXP)
    # An older abmil config with better numbers must be superseded by the newer one.
    _log(
        client,
        exp,
        "abmil",
        OLD_ABMIL,
        DIGEST_A,
        range(5),
        t0=1_000,
        metrics=lambda m, k: {"test.fine.auc": 0.99, "test.fine.accuracy": 0.99},
    )
    for method in AUC:
        _log(client, exp, method, CONFIG[method], DIGEST_A, range(5), t0=2_000)
    # Ignored: a FAILED hmil fold, a still RUNNING abmil fold 5, both with absurd values.
    bad = lambda m, k: {"test.fine.auc": 0.01, "test.fine.accuracy": 0.01}  # noqa: E731
    _log(client, exp, "hmil", CONFIG["hmil"], DIGEST_A, [0], t0=3_000, status="FAILED", metrics=bad)
    _log(client, exp, "abmil", CONFIG["abmil"], DIGEST_A, [5], t0=3_000, status="RUNNING", metrics=bad)

    mixed = client.create_experiment(MIXED)
    _log(client, mixed, "abmil", "c1", DIGEST_A, range(3), t0=1_000)
    _log(client, mixed, "hmil", "c2", DIGEST_A, range(3), t0=1_000)
    _log(client, mixed, "clam-sb", "c3", DIGEST_B, range(3), t0=1_000)

    empty = client.create_experiment("empty-sim")
    _log(client, empty, "abmil", "c1", DIGEST_A, [0], t0=1_000, status="RUNNING")
    return uri


@pytest.fixture(scope="module")
def fine(store: str) -> Comparison:
    return compare(store, EXP, per_class=True)


def _row(cmp: Comparison, method: str, metric: str) -> pd.Series:
    t = cmp.table
    return t[(t["method"] == method) & (t["metric"] == metric)].iloc[0]


def test_mean_std_n_match_numpy(fine: Comparison) -> None:
    for method, vals in AUC.items():
        row = _row(fine, method, "auc")
        assert row["mean"] == pytest.approx(np.mean(vals))
        assert row["std"] == pytest.approx(np.std(vals, ddof=1))
        assert row["n"] == 5
    qwk = _row(fine, "clam-sb", "qwk")  # fold 4 is NaN: averaged over the 4 defined folds
    expected = [BASE["clam-sb"] + 0.01 * k + 0.003 for k in range(4)]
    assert (qwk["n"], qwk["mean"]) == (4, pytest.approx(np.mean(expected)))
    assert fine.metrics == ("accuracy", "balanced_accuracy", "specificity", "auc", "f1_macro", "qwk")
    assert fine.split_digest == DIGEST_A


def test_best_method_and_order(fine: Comparison) -> None:
    assert fine.best["auc"] == "hmil"
    assert fine.methods == ("hmil", "clam-sb", "abmil")
    auc = fine.table[fine.table["metric"] == "auc"]
    assert auc.loc[auc["best"], "method"].tolist() == ["hmil"]


def test_wilcoxon_equals_scipy(fine: Comparison) -> None:
    for method in ("clam-sb", "abmil"):
        expected = wilcoxon(AUC[method], AUC["hmil"], alternative="two-sided").pvalue
        assert _row(fine, method, "auc")["p_value"] == pytest.approx(expected)
    assert _row(fine, "abmil", "auc")["p_value"] == pytest.approx(0.0625)  # minimum for 5 folds
    assert math.isnan(_row(fine, "hmil", "auc")["p_value"])


def test_paired_wilcoxon_edge_cases() -> None:
    a = pd.Series([0.9, 0.8, 0.7], index=[0, 1, 2])
    assert math.isnan(paired_wilcoxon(a, a))  # all differences zero
    assert math.isnan(paired_wilcoxon(a, pd.Series([0.1], index=[2])))  # one paired fold
    b = pd.Series([0.5, 0.4, 0.3, 0.2, math.nan], index=[0, 1, 2, 3, 4])
    c = pd.Series([0.6, 0.3, 0.5, 0.9], index=[1, 2, 3, 4])  # pairs folds 1..3 only
    assert paired_wilcoxon(b, c) == pytest.approx(wilcoxon([0.4, 0.3, 0.2], [0.6, 0.3, 0.5]).pvalue)


def test_json_schema_and_values(fine: Comparison) -> None:
    doc = json.loads(fine.to_json())
    assert {"experiment", "level", "split_digest", "methods", "best"} <= doc.keys()
    assert (doc["experiment"], doc["level"], doc["split_digest"]) == (EXP, "fine", DIGEST_A)
    abmil = doc["methods"]["abmil"]
    assert (abmil["n_folds"], abmil["config_hash"], abmil["folds"]) == (5, CONFIG["abmil"], [0, 1, 2, 3, 4])
    assert abmil["metrics"]["auc"]["values"] == AUC["abmil"]
    assert abmil["metrics"]["auc"]["std"] == pytest.approx(np.std(AUC["abmil"], ddof=1))
    assert abmil["p_value_vs_best"] == pytest.approx(0.0625)
    assert doc["methods"]["hmil"]["p_value_vs_best"] is None
    assert doc["methods"]["clam-sb"]["metrics"]["qwk"]["values"][4] is None  # NaN -> null
    assert doc["best"]["auc"] == "hmil"
    assert doc["per_class"]["hmil"]["auc"]["ISUP_1"]["mean"] == pytest.approx(np.mean(AUC["hmil"]) - 0.02)


def test_markdown_and_latex_bold_best(fine: Comparison) -> None:
    mean, std = np.mean(AUC["hmil"]), np.std(AUC["hmil"], ddof=1)
    md = fine.to_markdown()
    assert f"**{mean:.3f} ± {std:.3f}**" in md
    assert "| p (auc) |" in md and "0.0625" in md
    tex = fine.to_latex()
    assert f"\\textbf{{{mean:.3f} $\\pm$ {std:.3f}}}" in tex
    assert "balanced\\_accuracy" in tex and "\\toprule" in tex


def test_failed_and_running_runs_ignored(fine: Comparison) -> None:
    assert 0.01 not in fine.folds["value"].tolist()
    assert sorted(fine.folds.loc[fine.folds["method"] == "abmil", "fold"].unique()) == [0, 1, 2, 3, 4]


def test_newer_config_supersedes_older(fine: Comparison) -> None:
    assert _row(fine, "abmil", "auc")["config_hash"] == CONFIG["abmil"]
    assert _row(fine, "abmil", "auc")["mean"] == pytest.approx(np.mean(AUC["abmil"]))
    assert any("abmil" in n and "superseded" in n and OLD_ABMIL[:12] in n for n in fine.notes)


def test_mixed_split_digests_refused(store: str) -> None:
    with pytest.raises(SplitError, match=r"--split-digest <prefix>") as err:
        compare(store, MIXED)
    assert DIGEST_A[:12] in str(err.value) and DIGEST_B[:12] in str(err.value)
    assert "\n" not in str(err.value)


def test_split_digest_prefix_selects_runs(store: str) -> None:
    cmp = compare(store, MIXED, split_digest=DIGEST_A[:8].upper())
    assert set(cmp.methods) == {"abmil", "hmil"} and cmp.split_digest == DIGEST_A
    assert compare(store, MIXED, split_digest=DIGEST_B[:4]).methods == ("clam-sb",)
    with pytest.raises(SplitError, match="matches no finished fold run"):
        compare(store, MIXED, split_digest="ffff")
    with pytest.raises(SplitError, match="ambiguous"):
        compare(store, MIXED, split_digest="A1")
    assert compare(store, MIXED, methods=["clam-sb"]).split_digest == DIGEST_B


def test_per_class_table(fine: Comparison) -> None:
    pc = fine.per_class
    assert pc is not None
    assert list(dict.fromkeys(pc["class"])) == list(CLASSES)
    assert set(pc["metric"]) == {"auc", "sensitivity"}  # specificity was not logged per class
    row = pc[(pc["method"] == "abmil") & (pc["metric"] == "auc") & (pc["class"] == "ISUP_10")].iloc[0]
    assert row["mean"] == pytest.approx(np.mean(AUC["abmil"]) - 0.04)
    assert row["std"] == pytest.approx(np.std(AUC["abmil"], ddof=1))
    assert "per-class auc" in fine.to_markdown()


def test_coarse_head_level_leaves_out_flat_models_and_says_so(store: str) -> None:
    """Issue 12: models without a coarse head used to fill the coarse_head table with all-dash rows."""
    cmp = compare(store, EXP, level="coarse_head")
    assert cmp.metrics == ("accuracy", "auc", "hierarchy_consistency")
    assert _row(cmp, "hmil", "hierarchy_consistency")["mean"] == pytest.approx(0.98)
    assert "abmil" not in cmp.methods and "hmil" in cmp.methods
    assert not any(line.startswith("| abmil") for line in cmp.to_markdown().splitlines())
    assert any("not shown (no coarse_head metrics logged" in n and "abmil" in n for n in cmp.notes)
    assert "abmil" in cmp.to_markdown()  # the footer names what was left out
    with pytest.raises(BenchmarkError, match="no test.coarse_head"):
        compare(store, MIXED, level="coarse_head", split_digest=DIGEST_A, methods=["abmil"])


def test_csv_round_trip(fine: Comparison) -> None:
    df = pd.read_csv(StringIO(fine.to_csv()))
    overall = df[df["class"].isna()]
    assert len(overall) == len(fine.table)
    got = overall[(overall["method"] == "hmil") & (overall["metric"] == "auc")]["mean"].iloc[0]
    assert got == pytest.approx(np.mean(AUC["hmil"]))


def test_rich_table_bold_best(fine: Comparison) -> None:
    console = Console(record=True, width=250, file=StringIO())
    console.print(fine.to_rich_table())
    html = console.export_html(inline_styles=True)
    mean, std = np.mean(AUC["hmil"]), np.std(AUC["hmil"], ddof=1)
    assert f'<span style="font-weight: bold">{mean:.3f} ± {std:.3f}</span>' in html


def test_plot_written(fine: Comparison, tmp_path: Path) -> None:
    out = plot_comparison(fine, tmp_path / "fig" / "cmp.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5_000
    with pytest.raises(ConfigError, match=r"\.png"):
        plot_comparison(fine, tmp_path / "cmp.jpg")


def test_user_errors(store: str, tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match=r"experiment 'panda-simm' not found.*closest: 'panda-sim'"):
        compare(store, "panda-simm")
    with pytest.raises(BenchmarkError, match="no FINISHED fold runs.*benchmark run --dataset empty-sim"):
        compare(store, "empty-sim")
    with pytest.raises(BenchmarkError, match="does not exist"):
        compare(f"sqlite:///{tmp_path / 'nope.db'}", EXP)
    assert not (tmp_path / "nope.db").exists()
    with pytest.raises(UnknownNameError, match="Did you mean 'abmil'"):
        compare(store, EXP, methods=["abmill"])
    with pytest.raises(ConfigError, match="Did you mean 'accuracy'"):
        compare(store, EXP, metrics=["acuracy"])
    with pytest.raises(ConfigError, match="--level"):
        compare(store, EXP, level="leaf")


@pytest.mark.parametrize("width", [60, 80, 100])
def test_rich_table_fits_the_console_without_truncating_method_names(fine: Comparison, width: int) -> None:
    console = Console(record=True, width=width, file=StringIO())
    console.print(fine.to_rich_table(width))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    assert "…" not in text  # no cell truncated
    for method in fine.methods:  # full method names, each on one row of the table
        assert any(line.startswith(f"│ {method} ") for line in lines), method
    header = next(line for line in lines if line.startswith("┃ method"))
    assert "AUC" in header and "p (AUC)" in header  # the primary metric and its test are never left out
    wide = Console(record=True, width=400, file=StringIO())
    wide.print(fine.to_rich_table())
    full = max(len(line) for line in wide.export_text().splitlines() if line.startswith("┃"))
    assert ("Left out to fit" in text) == (full > width)  # the footer says so exactly when columns went


def test_rich_table_without_width_keeps_every_column(fine: Comparison) -> None:
    console = Console(record=True, width=300, file=StringIO())
    console.print(fine.to_rich_table())
    header = next(line for line in console.export_text().splitlines() if line.startswith("┃ method"))
    assert all(h in header for h in ("config", "folds", "steps", "AUC", "acc")) and "Left out" not in header


def test_hierarchy_descriptions_parse_into_fine_and_coarse_names() -> None:
    from benchmark.compare.class_names import parse_hierarchy

    assert parse_hierarchy("benign{ISUP 0} | low-grade{ISUP 1, ISUP 2}") == (
        ["ISUP 0", "ISUP 1", "ISUP 2"],
        ["benign", "low-grade"],
    )
    assert parse_hierarchy("None") is None and parse_hierarchy("a{x} | b") is None
