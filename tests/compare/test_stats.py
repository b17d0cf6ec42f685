"""The paired tests and the bootstrap CI of `benchmark compare`: hand-computed values, edge cases and a tiny
MLflow store whose fold runs log ``predictions.csv`` and split sizes, as the tracking layer does."""

from __future__ import annotations

import json
import math
from io import StringIO

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from rich.console import Console
from scipy.stats import wilcoxon

from benchmark.compare import Comparison, compare
from benchmark.compare.bootstrap import bootstrap_ci
from benchmark.compare.stats import corrected_resampled_t, min_wilcoxon_p, split_ratio
from benchmark.metrics.level import level_metrics
from tests.compare.test_compare import DIGEST_A, EXP, _log

FOLDS = range(5)


def _series(values: list[float]) -> pd.Series:
    return pd.Series(values, index=list(range(len(values))))


# --- Nadeau–Bengio corrected resampled t ----------------------------------------------------------------


def test_corrected_t_matches_hand_computation() -> None:
    a = _series([0.84, 0.82, 0.83, 0.85, 0.81])
    b = _series([0.80, 0.80, 0.80, 0.80, 0.80])
    # d = a − b = [0.04, 0.02, 0.03, 0.05, 0.01]; J = 5; mean(d) = 0.15 / 5 = 0.03
    # d − mean = [0.01, −0.01, 0, 0.02, −0.02]; Σ squares = 0.0010; var(d, ddof=1) = 0.0010 / 4 = 2.5e-4
    # 5-fold: n_test/n_train = 1/4; (1/J + 1/4) · var = 0.45 · 2.5e-4 = 1.125e-4 = 0.03² / 8
    # t = 0.03 / sqrt(0.03² / 8) = sqrt(8) = 2.828..., df = J − 1 = 4
    # Student t, 4 df: P(|T| ≥ t) = 1 − sqrt(x) · (1 + (1 − x) / 2) with x = t² / (t² + 4) = 8 / 12 = 2/3
    #   = 1 − 0.81650 · 1.16667 = 0.04742
    x = 2 / 3
    expected = 1 - math.sqrt(x) * (1 + (1 - x) / 2)
    assert expected == pytest.approx(0.047421, abs=1e-6)
    assert corrected_resampled_t(a, b, ratio=1 / 4) == pytest.approx(expected, rel=1e-9)
    # Same folds: every difference positive, so the exact Wilcoxon p sits at its floor 2 / 2^5.
    assert wilcoxon(a, b).pvalue == pytest.approx(0.0625)


def test_corrected_t_is_symmetric_and_more_conservative_than_the_plain_t() -> None:
    a, b = _series([0.84, 0.82, 0.83, 0.85, 0.81]), _series([0.80] * 5)
    assert corrected_resampled_t(a, b, 0.25) == pytest.approx(corrected_resampled_t(b, a, 0.25))
    # ratio 0 is the uncorrected paired t: t = 0.03 / sqrt(2.5e-4 / 5) = 4.243 -> a smaller p.
    assert corrected_resampled_t(a, b, 0.0) < corrected_resampled_t(a, b, 0.25)


def test_corrected_t_zero_variance_and_too_few_pairs() -> None:
    a = _series([0.9, 0.8, 0.7])
    assert corrected_resampled_t(a, a, 0.5) == 1.0  # identical results: no evidence of a difference
    assert corrected_resampled_t(a, a - 0.1, 0.5) == 0.0  # constant non-zero difference: |t| = inf
    assert math.isnan(corrected_resampled_t(a, pd.Series([0.1], index=[2]), 0.5))  # one paired fold
    assert math.isnan(corrected_resampled_t(a, a - 0.1, math.nan))  # unknown ratio
    b = pd.Series([0.5, math.nan, 0.4, 0.2], index=[0, 1, 2, 3])  # pairs folds 0 and 2 only
    assert corrected_resampled_t(a, b, 0.5) == pytest.approx(corrected_resampled_t(a[[0, 2]], b[[0, 2]], 0.5))


def test_min_wilcoxon_p() -> None:
    assert min_wilcoxon_p(5) == 0.0625  # 2 / 2^5: nothing is significant at 0.05 with 5 folds
    assert min_wilcoxon_p(6) == 0.03125
    assert math.isnan(min_wilcoxon_p(0))
    for j in (3, 5, 8):  # scipy's exact test reaches the floor when all differences share a sign
        assert wilcoxon(np.arange(1, j + 1) * 0.01).pvalue == pytest.approx(min_wilcoxon_p(j))


def test_split_ratio_from_params_or_k() -> None:
    logged = [{"n_train": "60", "n_val": "10", "n_test": "20"}, {"n_train": "60", "n_test": "20"}]
    assert split_ratio(logged, 5) == (pytest.approx(1 / 3), "n_test/n_train logged by the fold runs")
    assert split_ratio([{"cv.n_folds": "5"}], 10) == (0.25, "1/(k-1), k = 5")  # 10 ids = 5 folds × 2 repeats
    assert split_ratio([{}], 3) == (0.5, "1/(k-1), k = 3")
    assert math.isnan(split_ratio([], 1)[0])


# --- bootstrap CI ---------------------------------------------------------------------------------------


def _noisy(n: int = 60, k: int = 3, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    p = rng.dirichlet(np.ones(k), n)
    p[np.arange(n), y] += 0.4
    return y, p / p.sum(axis=1, keepdims=True)


def test_bootstrap_separable_predictions_give_one_one() -> None:
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    ci = bootstrap_ci(y, np.eye(3)[y], ["a", "b", "c"], "auc", n_boot=30)
    assert (ci.estimate, ci.low, ci.high, ci.n_finite, ci.n_slides) == (1.0, 1.0, 1.0, 30, 7)


def test_bootstrap_seeded_stable_and_contains_the_estimate() -> None:
    y, p = _noisy()
    names = ["a", "b", "c"]
    first = bootstrap_ci(y, p, names, "auc", n_boot=100, seed=0)
    assert bootstrap_ci(y, p, names, "auc", n_boot=100, seed=0) == first  # same seed, same interval
    assert bootstrap_ci(y, p, names, "auc", n_boot=100, seed=1) != first
    assert first.estimate == pytest.approx(level_metrics(y, p, names).overall["auc"])  # the table's metric
    assert first.low < first.estimate < first.high
    assert 0.05 < first.high - first.low < 0.3 and first.n_finite == 100


def test_bootstrap_resamples_slides_not_rows() -> None:
    """A slide tested in two repeats is drawn with both rows: the CI equals the one-repeat CI."""
    y, p = _noisy()
    slides = np.arange(len(y))
    once = bootstrap_ci(y, p, ["a", "b", "c"], "auc", n_boot=50)
    twice = bootstrap_ci(
        np.r_[y, y], np.r_[p, p], ["a", "b", "c"], "auc", slides=np.r_[slides, slides], n_boot=50
    )
    assert (twice.low, twice.high, twice.n_slides) == (once.low, once.high, once.n_slides)


def test_bootstrap_unknown_metric_raises() -> None:
    y, p = _noisy()
    with pytest.raises(KeyError):
        bootstrap_ci(y, p, ["a", "b", "c"], "hierarchy_consistency", n_boot=2)


# --- end to end: a tiny store whose fold runs log predictions and split sizes ----------------------------

FINE, PARENT = ("0", "1", "2"), {"0": "benign", "1": "malignant", "2": "malignant"}
FOLD_AUC = {
    "good": [0.95, 0.94, 0.96, 0.95, 0.97],
    "noisy": [0.80, 0.78, 0.83, 0.79, 0.81],
    "old": [0.70, 0.72, 0.71, 0.69, 0.70],  # runs that predate predictions.csv and the split-size params
}


def _predictions(method: str, fold: int) -> str:
    """6 test slides per fold (2 per fine class); "good" separates them perfectly, "noisy" does not."""
    rng = np.random.default_rng([fold, len(method)])
    y = np.repeat(np.arange(3), 2)
    p = np.eye(3)[y] if method == "good" else rng.dirichlet(np.ones(3), len(y)) + 0.5 * np.eye(3)[y]
    p = p / p.sum(axis=1, keepdims=True)
    frame = pd.DataFrame(
        {
            "slide_id": [f"s{fold}-{i}" for i in range(len(y))],
            "case_id": [f"c{fold}-{i}" for i in range(len(y))],
            "fine_true": [FINE[i] for i in y],
            **{f"p_fine.{c}": p[:, k] for k, c in enumerate(FINE)},
            "coarse_true": [PARENT[FINE[i]] for i in y],
        }
    )
    return frame.to_csv(index=False)


def _fold_metrics(method: str, fold: int) -> dict[str, float]:
    return {"test.fine.auc": FOLD_AUC[method][fold], "test.coarse.auc": FOLD_AUC[method][fold]}


@pytest.fixture(scope="module")
def tested(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Comparison]:
    tmp = tmp_path_factory.mktemp("mlflow-stats")
    uri = f"sqlite:///{tmp / 'm.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment(EXP, artifact_location=(tmp / "artifacts").as_uri())  # not ./mlruns
    for method in FOLD_AUC:
        _log(client, exp, method, f"cfg-{method}", DIGEST_A, FOLDS, t0=1_000, metrics=_fold_metrics)
    for run in client.search_runs([exp], "tags.`benchmark.role` = 'fold'"):
        method, fold = run.data.tags["benchmark.method"], int(run.data.tags["benchmark.fold"])
        if method == "old":
            continue
        for key, value in {"n_train": 60, "n_val": 10, "n_test": 20, "cv.n_folds": 5}.items():
            client.log_param(run.info.run_id, key, value)
        client.log_text(run.info.run_id, _predictions(method, fold), "predictions.csv")
    return uri, compare(uri, EXP, n_boot=40)


def test_comparison_carries_both_tests(tested: tuple[str, Comparison]) -> None:
    _, cmp = tested
    auc = cmp.table[cmp.table["metric"] == "auc"].set_index("method")
    assert cmp.ratio == pytest.approx(1 / 3) and "logged" in cmp.ratio_source
    for method in ("noisy", "old"):
        expected = corrected_resampled_t(_series(FOLD_AUC[method]), _series(FOLD_AUC["good"]), 1 / 3)
        assert auc.at[method, "p_nb"] == pytest.approx(expected)
        assert auc.at[method, "p_value"] == pytest.approx(0.0625) and auc.at[method, "n_pairs"] == 5
    assert math.isnan(auc.at["good", "p_nb"])


def test_comparison_carries_the_ci_or_says_why_not(tested: tuple[str, Comparison]) -> None:
    _, cmp = tested
    assert set(cmp.intervals) == {"good", "noisy"}
    good, noisy = cmp.intervals["good"], cmp.intervals["noisy"]
    assert (good.low, good.high, good.n_slides, good.n_boot) == (1.0, 1.0, 30, 40)
    assert noisy.low <= noisy.estimate <= noisy.high < 1.0
    assert any("old: no CI" in note and "predictions.csv" in note for note in cmp.notes)
    auc = cmp.table[cmp.table["metric"] == "auc"].set_index("method")
    assert auc.at["noisy", "ci_low"] == noisy.low and math.isnan(auc.at["old", "ci_low"])


def test_every_format_carries_the_new_fields(tested: tuple[str, Comparison]) -> None:
    _, cmp = tested
    md = cmp.to_markdown()
    assert "Wilcoxon cannot go below p = 0.0625 with 5 folds" in md and "repeated k-fold" in md
    assert "Nadeau–Bengio corrected resampled t" in md and "df = 4" in md
    assert "good 1.000 [1.000, 1.000]" in md and "(5 folds)" in md
    doc = json.loads(cmp.to_json())
    assert doc["tests"]["wilcoxon"]["min_attainable_p"] == 0.0625 and doc["tests"]["corrected_t"]["df"] == 4
    assert doc["methods"]["good"]["ci95"]["low"] == 1.0 and doc["methods"]["old"]["ci95"] is None
    noisy = cmp.table[(cmp.table["method"] == "noisy") & (cmp.table["metric"] == "auc")].iloc[0]
    assert doc["methods"]["noisy"]["p_nb_vs_best"] == pytest.approx(noisy["p_nb"])
    csv = pd.read_csv(StringIO(cmp.to_csv()))
    assert {"p_value", "p_nb", "ci_low", "ci_high", "pooled"} <= set(csv.columns)
    assert "Nadeau" in cmp.to_latex()
    console = Console(record=True, width=250, file=StringIO())
    console.print(cmp.to_rich_table())
    assert "Wilcoxon cannot go below" in console.export_text()


def test_coarse_ci_from_rolled_up_fine_probabilities(tested: tuple[str, Comparison]) -> None:
    uri, _ = tested
    cmp = compare(uri, EXP, level="coarse", methods=["good"], n_boot=10)
    assert (cmp.intervals["good"].low, cmp.intervals["good"].high) == (1.0, 1.0)
    none = compare(uri, EXP, level="coarse", methods=["good"], n_boot=0)
    assert none.intervals == {} and "bootstrap" not in none.to_markdown()
