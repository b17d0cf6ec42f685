"""Per-fold figures: ROC legends carry the logged AUCs, every level gets a ROC, titles name model/fold/level."""

from __future__ import annotations

import re
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from benchmark.core.config import RunConfig
from benchmark.core.hierarchy import Hierarchy
from benchmark.metrics import evaluate
from benchmark.metrics.figures import OKABE_ITO, class_styles, figure_title, roc_figure
from benchmark.models import resolve_model_params
from benchmark.run.inference import Predictions
from benchmark.run.outcome import FoldOutcome
from benchmark.tracking import fold_logging

FINE = ("ISUP 0", "ISUP 1", "ISUP 2", "ISUP 3", "ISUP 4", "ISUP 5")
HIER = Hierarchy.from_groups(
    {"benign": FINE[:1], "low": FINE[1:3], "high": FINE[3:]}, fine=FINE, ordinal=True
)
LEGEND = re.compile(r"^(?P<name>.+) \(AUC (?P<auc>\d\.\d\d), n=(?P<n>\d+)\)$")


def _predictions(n: int = 60, absent: int | None = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded labels (n,) and informative but imperfect probabilities (n, 6); class ``absent`` not in y."""
    rng = np.random.default_rng(seed)
    classes = [k for k in range(len(FINE)) if k != absent]
    y = rng.choice(classes, size=n)
    logits = rng.normal(size=(n, len(FINE))) + 1.2 * np.eye(len(FINE))[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs


def _legend(fig: plt.Figure) -> dict[str, tuple[str, int]]:
    """Class name -> (AUC text, positives) parsed from the ROC legend."""
    (ax,) = fig.axes
    out = {}
    for text in ax.get_legend().get_texts():
        if match := LEGEND.match(text.get_text()):
            out[match["name"]] = (match["auc"], int(match["n"]))
    return out


@pytest.mark.parametrize("pass_metrics", [False, True])
def test_roc_legend_auc_equals_logged_metric(pass_metrics: bool) -> None:
    y, probs = _predictions()
    fine = evaluate(y, probs, HIER).levels["fine"]
    fig = roc_figure(y, probs, FINE, "abmil · fold 2 · fine level", metrics=fine if pass_metrics else None)
    try:
        legend = _legend(fig)
        expected = {
            name: f"{fine.per_class.loc[name, 'auc']:.2f}" for name in FINE if name != "ISUP 5"
        }  # the metric `benchmark.metrics` logs as test.fine.auc.<class>
        assert {k: v[0] for k, v in legend.items()} == expected
        assert {k: v[1] for k, v in legend.items()} == {FINE[k]: int((y == k).sum()) for k in range(5)}
        texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert "ISUP 5 (not in test set)" in texts  # undefined AUC: named, no curve, no number
        assert (
            fig.axes[0].get_legend().get_title().get_text().endswith(f"macro AUC {fine.overall['auc']:.2f}")
        )
        # Each drawn curve is that class's ROC: its area equals the legend's AUC.
        curves = {ln.get_label(): ln for ln in fig.axes[0].get_lines() if LEGEND.match(ln.get_label())}
        assert len(curves) == 5
        for label, line in curves.items():
            name = LEGEND.match(label)["name"]
            fpr, tpr = line.get_data()
            assert np.trapezoid(tpr, fpr) == pytest.approx(fine.per_class.loc[name, "auc"], abs=1e-9)
        assert "fold 2" in fig.axes[0].get_title()
    finally:
        plt.close(fig)


def test_roc_colours_are_distinct_and_styles_take_over_past_seven() -> None:
    styles = class_styles(6)
    assert len({c for c, _ in styles}) == 6 and {s for _, s in styles} == {"-"}
    assert all(c in OKABE_ITO for c, _ in styles)
    eleven = class_styles(11)
    assert len(set(eleven)) == 11  # (colour, style) pairs stay unique
    assert eleven[7] == (eleven[0][0], "--")


def test_figure_title() -> None:
    assert figure_title("abmil", 2, "fine") == "abmil · fold 2 · fine level"
    assert figure_title("hmil", "0", "coarse_head") == "hmil · fold 0 · coarse head level"
    assert figure_title("hmil", None, "coarse") == "hmil · coarse level"


def test_fold_logging_writes_roc_and_confusion_of_every_level(tmp_path, monkeypatch) -> None:
    """A real fold run in a temporary store gets fine, coarse and coarse-head ROC curves, titled with the fold."""
    titles: list[str] = []

    def spy(make):
        def wrapped(*args, **kwargs):
            fig = make(*args, **kwargs)
            titles.append(fig.axes[0].get_title())
            return fig

        return wrapped

    for name in ("roc_figure", "confusion_figure"):
        monkeypatch.setattr(fold_logging, name, spy(getattr(fold_logging, name)))
    y, probs = _predictions(n=24, absent=None, seed=1)
    head = HIER.roll_up(probs)[:, ::-1].copy()  # a (bad) coarse head, different from the roll-up
    bags = SimpleNamespace(
        hierarchy=HIER,
        fine_labels=y,
        slide_ids=[f"s{i}" for i in range(len(y))],
        case_ids=[f"c{i}" for i in range(len(y))],
    )
    test = evaluate(y, probs, HIER, coarse_head_probs=head)
    outcome = FoldOutcome(
        best_epoch=1,
        epochs_run=1,
        history=[],
        val=test,
        test=test,
        test_predictions=Predictions(np.arange(len(y)), probs, head, 1.0),
        n_params=1,
        seconds=1.0,
        train_slides_per_s=1.0,
        eval_slides_per_s=1.0,
        peak_memory_mb=0.0,
    )
    client = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    exp = client.create_experiment("figs", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(exp, tags={"benchmark.fold": "3"}).info.run_id
    config = RunConfig(model="abmil", model_params=resolve_model_params("abmil"))
    fold_logging.log_fold_outcome(client, run_id, config, bags, outcome, fold=3)
    assert len(titles) == 6
    assert all(t.startswith("abmil · fold 3 · ") for t in titles)
    assert sum("coarse level" in t for t in titles) == 2

    logged = {f.path for f in client.list_artifacts(run_id, "figures")}
    levels = ("fine", "coarse", "coarse_head")
    assert logged == {f"figures/{kind}_{lv}.png" for kind in ("roc", "confusion") for lv in levels}
    coarse = Image.open(client.download_artifacts(run_id, "figures/roc_coarse.png", str(tmp_path)))
    fine = Image.open(client.download_artifacts(run_id, "figures/roc_fine.png", str(tmp_path)))
    assert coarse.size == fine.size and coarse.size[0] >= 600
    assert not np.array_equal(np.asarray(coarse), np.asarray(fine))
    # The coarse legend uses the coarse metrics that were logged for the roll-up.
    fig = roc_figure(HIER.coarse_of(y), HIER.roll_up(probs), HIER.coarse, "t", metrics=test.levels["coarse"])
    try:
        assert set(_legend(fig)) == set(HIER.coarse)
    finally:
        plt.close(fig)
