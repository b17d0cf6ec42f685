"""Metrics: hand-computed examples, sklearn cross-checks, undefined values, roll-up, keys."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score, precision_recall_fscore_support, roc_auc_score

from benchmark.core.hierarchy import Hierarchy
from benchmark.metrics.evaluate import (
    PER_CLASS_COLUMNS,
    EvaluationResult,
    class_keys,
    evaluate,
    level_metrics,
    per_class_table,
    sanitize_key,
)

# 3 classes, 6 samples. argmax predictions: [0, 1, 1, 1, 2, 0]; confusion rows=true:
#   [[1, 1, 0],
#    [0, 2, 0],
#    [1, 0, 1]]
Y3 = np.array([0, 0, 1, 1, 2, 2])
P3 = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.3, 0.6, 0.1],
        [0.2, 0.5, 0.3],
        [0.1, 0.8, 0.1],
        [0.1, 0.2, 0.7],
        [0.5, 0.1, 0.4],
    ]
)
NAMES3 = ["ISUP 0", "3+4", "high"]
MLFLOW_KEY = re.compile(r"^[/\w.\- ]*$")  # mlflow/utils/validation.py


@pytest.fixture
def m3():
    return level_metrics(Y3, P3, NAMES3, ordinal=True)


def test_confusion_and_accuracy(m3):
    np.testing.assert_array_equal(m3.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert m3.overall["accuracy"] == pytest.approx(4 / 6)
    assert m3.overall["n"] == 6.0
    assert m3.overall["n_undefined"] == 0.0
    assert m3.undefined == []


def test_per_class_by_hand(m3):
    # class 0: TP=1 FN=1 FP=1 TN=3; class 1: TP=2 FN=0 FP=1 TN=3; class 2: TP=1 FN=1 FP=0 TN=4
    pc = m3.per_class
    assert list(pc.columns) == list(PER_CLASS_COLUMNS)
    assert list(pc.index) == NAMES3
    np.testing.assert_array_equal(pc["support"], [2, 2, 2])
    np.testing.assert_allclose(pc["accuracy"], [4 / 6, 5 / 6, 5 / 6])
    np.testing.assert_allclose(pc["sensitivity"], [0.5, 1.0, 0.5])
    np.testing.assert_allclose(pc["specificity"], [0.75, 0.75, 1.0])
    np.testing.assert_allclose(pc["precision"], [0.5, 2 / 3, 1.0])
    np.testing.assert_allclose(pc["f1"], [0.5, 0.8, 2 / 3])
    # class 0 AUC: positives .7, .3 vs negatives .2 .1 .1 .5 → 7 of 8 pairs ordered
    np.testing.assert_allclose(pc["auc"], [7 / 8, 7 / 8, 1.0])


def test_macro_values_by_hand_and_against_sklearn(m3):
    o = m3.overall
    assert o["balanced_accuracy"] == pytest.approx(2 / 3)
    assert o["sensitivity"] == o["balanced_accuracy"]
    assert o["specificity"] == pytest.approx((0.75 + 0.75 + 1.0) / 3)
    assert o["precision"] == pytest.approx(13 / 18)
    assert o["f1_macro"] == pytest.approx(59 / 90)
    pred = P3.argmax(1)
    prec, rec, f1, _ = precision_recall_fscore_support(Y3, pred, labels=[0, 1, 2])
    np.testing.assert_allclose(m3.per_class["precision"], prec)
    np.testing.assert_allclose(m3.per_class["sensitivity"], rec)
    np.testing.assert_allclose(m3.per_class["f1"], f1)
    assert o["f1_weighted"] == pytest.approx(f1_score(Y3, pred, average="weighted"))
    assert o["auc"] == pytest.approx(roc_auc_score(Y3, P3, multi_class="ovr", average="macro"))
    assert o["auc"] == pytest.approx((7 / 8 + 7 / 8 + 1.0) / 3)


def test_f1_weighted_with_unequal_support():
    y = np.array([0, 0, 0, 1, 2, 2])
    p = np.eye(3)[[0, 0, 1, 1, 2, 0]]
    m = level_metrics(y, p, ["a", "b", "c"])
    assert m.overall["f1_weighted"] == pytest.approx(f1_score(y, p.argmax(1), average="weighted"))
    assert m.overall["f1_macro"] == pytest.approx(f1_score(y, p.argmax(1), average="macro"))


@pytest.mark.parametrize("pred", [[0, 1, 1, 1, 2, 0], [0, 0, 0, 2, 2, 2], [2, 2, 1, 0, 0, 1]])
def test_qwk_matches_sklearn(pred):
    p = np.eye(3)[pred]
    m = level_metrics(Y3, p, NAMES3, ordinal=True)
    expected = cohen_kappa_score(Y3, pred, labels=[0, 1, 2], weights="quadratic")
    assert m.overall["qwk"] == pytest.approx(expected)


def test_qwk_only_when_ordinal_and_nan_when_undefined():
    assert "qwk" not in level_metrics(Y3, P3, NAMES3).overall
    # all truths and predictions in one class: expected disagreement is 0 → undefined
    y = np.zeros(4, dtype=int)
    m = level_metrics(y, np.tile([0.9, 0.05, 0.05], (4, 1)), NAMES3, ordinal=True)
    assert math.isnan(m.overall["qwk"])
    assert "qwk" in m.undefined


def test_absent_class_is_nan_and_skipped_in_macro():
    y = np.array([0, 0, 1, 1, 0, 1])  # class 2 never occurs
    p = np.array(
        [[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.3, 0.6, 0.1], [0.4, 0.5, 0.1], [0.5, 0.4, 0.1], [0.7, 0.2, 0.1]]
    )  # predictions [0, 2, 1, 1, 0, 0]: class 2 predicted once (an FP)
    m = level_metrics(y, p, ["ISUP 0", "ISUP 1", "ISUP 5"])
    pc = m.per_class
    assert math.isnan(pc.loc["ISUP 5", "auc"]) and math.isnan(pc.loc["ISUP 5", "sensitivity"])
    assert pc.loc["ISUP 5", "precision"] == 0.0  # predicted once, never right: defined and 0
    assert pc.loc["ISUP 5", "f1"] == 0.0
    assert pc.loc["ISUP 5", "specificity"] == pytest.approx(5 / 6)
    assert sorted(m.undefined) == ["auc.ISUP_5", "sensitivity.ISUP_5"]
    assert m.overall["n_undefined"] == 2.0
    auc0 = roc_auc_score(y == 0, p[:, 0])
    auc1 = roc_auc_score(y == 1, p[:, 1])
    assert m.overall["auc"] == pytest.approx((auc0 + auc1) / 2)
    assert m.overall["balanced_accuracy"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    # macro precision/F1 include the defined 0 of the absent-but-predicted class
    assert m.overall["precision"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert m.overall["f1_macro"] == pytest.approx(
        f1_score(y, p.argmax(1), labels=[0, 1, 2], average="macro", zero_division=np.nan)
    )


def test_never_predicted_absent_class_has_nan_precision_and_f1():
    y = np.array([0, 1, 0, 1])
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1], [0.6, 0.3, 0.1]])
    m = level_metrics(y, p, ["a", "b", "c"])
    assert set(m.undefined) == {"auc.c", "sensitivity.c", "precision.c", "f1.c"}
    assert m.overall["n_undefined"] == 4.0
    assert m.overall["f1_macro"] == pytest.approx((0.5 + 0.5) / 2)
    assert m.overall["precision"] == pytest.approx((0.5 + 0.5) / 2)


def test_single_class_present_auc_and_specificity_undefined():
    y = np.array([1, 1, 1])
    p = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    m = level_metrics(y, p, ["neg", "pos"])
    assert m.per_class.loc["pos", "sensitivity"] == pytest.approx(2 / 3)  # defined: TP / (TP + FN)
    assert math.isnan(m.per_class.loc["pos", "specificity"])
    assert math.isnan(m.overall["auc"])  # no class has both positives and negatives
    assert {"auc.neg", "auc.pos", "specificity.pos", "sensitivity.neg", "auc"} <= set(m.undefined)
    assert m.overall["n_undefined"] == sum("." in u for u in m.undefined)


def test_binary_case():
    y = np.array([0, 0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.3, 0.8, 0.4])
    p = np.stack([1 - p1, p1], axis=1)  # predictions [0, 1, 0, 1, 0]
    m = level_metrics(y, p, ["NILM", "abnormal"])
    auc = roc_auc_score(y, p1)
    np.testing.assert_allclose(m.per_class["auc"], [auc, auc])
    assert m.overall["auc"] == pytest.approx(auc)
    assert m.per_class.loc["abnormal", "sensitivity"] == pytest.approx(1 / 2)
    assert m.per_class.loc["abnormal", "specificity"] == pytest.approx(2 / 3)
    # one-vs-rest symmetry: specificity of one class is the sensitivity of the other
    assert m.per_class.loc["NILM", "sensitivity"] == m.per_class.loc["abnormal", "specificity"]
    assert m.overall["accuracy"] == pytest.approx(3 / 5)


# ---------------------------------------------------------------- hierarchy-level evaluation
@pytest.fixture
def hier():
    return Hierarchy.from_groups({"benign": ["ISUP 0"], "cancer": ["ISUP 1", "ISUP 2"]})


FINE_Y = np.array([0, 1, 2, 0])
FINE_P = np.array(
    [
        [0.40, 0.35, 0.25],  # fine argmax 0 (benign) but roll-up [0.40, 0.60] → cancer
        [0.10, 0.60, 0.30],
        [0.30, 0.30, 0.40],
        [0.80, 0.10, 0.10],
    ]
)
HEAD_P = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.9, 0.1]])


def test_rolled_up_coarse_metrics_equal_hand_summed(hier):
    res = evaluate(FINE_Y, FINE_P, hier)
    assert set(res.levels) == {"fine", "coarse"} and res.hierarchy_consistency is None
    summed = np.stack([FINE_P[:, 0], FINE_P[:, 1] + FINE_P[:, 2]], axis=1)
    coarse_y = np.array([0, 1, 1, 0])
    by_hand = level_metrics(coarse_y, summed, ["benign", "cancer"])
    assert res.levels["coarse"].overall == pytest.approx(by_hand.overall, nan_ok=True)
    pd.testing.assert_frame_equal(res.levels["coarse"].per_class, by_hand.per_class)
    # roll-up predictions [1, 1, 1, 0] vs truth [0, 1, 1, 0]
    assert res.levels["coarse"].overall["accuracy"] == pytest.approx(3 / 4)
    assert res.levels["coarse"].per_class.loc["benign", "sensitivity"] == pytest.approx(1 / 2)
    assert res.levels["coarse"].overall["auc"] == pytest.approx(roc_auc_score(coarse_y, summed[:, 1]))


def test_coarse_head_and_hierarchy_consistency(hier):
    res = evaluate(FINE_Y, FINE_P, hier, coarse_head_probs=HEAD_P)
    # parent(argmax fine) = [0, 1, 1, 0]; argmax head = [0, 1, 0, 0] → 3 of 4 agree
    assert res.hierarchy_consistency == pytest.approx(3 / 4)
    head = res.levels["coarse_head"]
    assert head.overall["accuracy"] == pytest.approx(3 / 4)
    assert head.overall["auc"] == pytest.approx(roc_auc_score([0, 1, 1, 0], HEAD_P[:, 1]))
    flat = res.flat()
    assert flat["test.hierarchy_consistency"] == pytest.approx(3 / 4)
    assert flat["test.coarse_head.auc"] == head.overall["auc"]


def test_ordinal_hierarchy_gives_qwk_on_every_level():
    h = Hierarchy.from_groups({"low": ["G1", "G2"], "high": ["G3"]}, ordinal=True)
    res = evaluate(
        np.array([0, 1, 2, 2]), np.eye(3)[[0, 1, 1, 2]], h, coarse_head_probs=np.eye(2)[[0, 0, 1, 1]]
    )
    assert {"qwk" in lv.overall for lv in res.levels.values()} == {True}
    assert res.levels["fine"].overall["qwk"] == pytest.approx(
        cohen_kappa_score([0, 1, 2, 2], [0, 1, 1, 2], weights="quadratic")
    )


def test_flat_key_naming(hier):
    res = evaluate(FINE_Y, FINE_P, hier, coarse_head_probs=HEAD_P)
    flat = res.flat("test")
    for key in [
        "test.fine.accuracy",
        "test.fine.auc",
        "test.fine.auc.ISUP_0",
        "test.fine.sensitivity.ISUP_2",
        "test.fine.support.ISUP_1",
        "test.fine.n_undefined",
        "test.coarse.specificity",
        "test.coarse.f1.benign",
        "test.coarse_head.auc",
        "test.hierarchy_consistency",
    ]:
        assert key in flat, key
    assert all(MLFLOW_KEY.match(k) and " " not in k for k in flat)
    assert all(isinstance(v, float) for v in flat.values())
    assert flat["test.fine.auc.ISUP_0"] == res.levels["fine"].per_class.loc["ISUP 0", "auc"]
    assert "val.fine.accuracy" in res.flat("val")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("ISUP 0", "ISUP_0"),
        ("3+4", "3_4"),
        ("ASC-US", "ASC-US"),
        ("Grade 1.5", "Grade_1_5"),
        (" a / b ", "a_b"),
        ("négatif", "n_gatif"),
        ("+", "_"),
    ],
)
def test_sanitize_key(name, key):
    assert sanitize_key(name) == key


def test_class_keys_disambiguate_collisions():
    assert class_keys(["3+4", "3 4", "x"]) == ["3_4_0", "3_4_1", "x"]
    m = level_metrics(Y3, P3, ["3+4", "3 4", "x"])
    assert "t.auc.3_4_1" in m.flat("t")


def test_per_class_table(hier):
    res = evaluate(FINE_Y, FINE_P, hier, coarse_head_probs=HEAD_P)
    table = per_class_table(res)
    assert list(table.columns) == ["level", "class", *PER_CLASS_COLUMNS]
    assert list(table["level"]) == ["fine"] * 3 + ["coarse"] * 2 + ["coarse_head"] * 2
    assert list(table["class"]) == ["ISUP 0", "ISUP 1", "ISUP 2", "benign", "cancer", "benign", "cancer"]
    row = table[(table["level"] == "coarse") & (table["class"] == "benign")].iloc[0]
    assert row["sensitivity"] == pytest.approx(1 / 2)
    assert per_class_table(EvaluationResult()).empty


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        (np.array([0, 1]), np.ones((3, 3)) / 3, r"shape \(n, K\) = \(2, 3\)"),
        (np.array([0, 1, 3]), np.ones((3, 3)) / 3, r"labels must lie in 0\.\.2"),
        (np.array([0, -1, 1]), np.ones((3, 3)) / 3, r"labels must lie in 0\.\.2"),
        (np.array([0, 1, 2]), np.array([[np.nan, 0.5, 0.5]] + [[1 / 3] * 3] * 2), "non-finite"),
        (np.array([0.0, 1.5, 2.0]), np.ones((3, 3)) / 3, "integer label indices"),
        (np.zeros((0,), dtype=int), np.ones((0, 3)), "non-empty 1-D"),
        (np.array([0, 1, 2]), np.ones((3, 2)) / 2, r"shape \(n, K\)"),
    ],
)
def test_invalid_inputs_raise(y, p, match):
    with pytest.raises(ValueError, match=match):
        level_metrics(y, p, ["a", "b", "c"])


def test_evaluate_rejects_wrong_shapes(hier):
    with pytest.raises(ValueError, match=r"fine_probs must have shape \(n, 3\)"):
        evaluate(FINE_Y, FINE_P[:, :2], hier)
    with pytest.raises(ValueError, match=r"coarse_head_probs must have shape \(4, 2\)"):
        evaluate(FINE_Y, FINE_P, hier, coarse_head_probs=HEAD_P[:3])


def test_rank_auc_equals_sklearn_with_ties():
    """The Mann–Whitney AUC of level_metrics is sklearn's roc_auc_score, ties (rounded scores) included."""
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(4, 200))
        y = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(int)
        if y.all() or not y.any():
            continue
        s = np.round(rng.random(n), int(rng.integers(1, 4)))  # 1–3 decimals: many ties
        per_class = level_metrics(y, np.stack([1 - s, s], axis=1), ["a", "b"]).per_class["auc"]
        assert per_class["b"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert per_class["a"] == pytest.approx(roc_auc_score(y == 0, 1 - s), abs=1e-12)
        checked += 1
    assert checked > 250
