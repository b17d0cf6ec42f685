"""Real-data loaders: ``panda``, ``bracs``, ``csv`` (benchmark.data.files.datasets)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from benchmark.core.config import DataConfig
from benchmark.core.errors import BenchmarkError, DataError
from benchmark.data import fixtures as fx
from benchmark.data.files.datasets import load_bracs, load_csv, load_panda
from benchmark.data.files.labels import PANDA_KNOWN_MISLABELLED
from benchmark.data.loading import DATASETS, dataset_info

WRITERS = {
    "clam-pt": fx.write_pt,
    "clam-h5": fx.write_clam_h5,
    "trident": fx.write_trident,
    "stamp": lambda d, s: fx.write_stamp(Path(d) / "feats", s),
}


@pytest.fixture
def slides() -> dict[str, np.ndarray]:
    return fx.make_slides(6, dim=8, seed=3)


def _cfg(tmp_path: Path, name: str = "panda", **kw) -> DataConfig:
    kw.setdefault("data_dir", str(tmp_path))
    return DataConfig(name=name, cache_dir=str(tmp_path / "cache"), **kw)


# ---------------------------------------------------------------------------------------- panda
@pytest.mark.parametrize("layout", list(WRITERS))
def test_panda_loads_every_layout(tmp_path: Path, slides: dict, layout: str) -> None:
    WRITERS[layout](tmp_path, slides)
    rows = fx.panda_rows(list(slides))
    fx.write_panda_csv(tmp_path / "train.csv", rows)
    bags = load_panda(_cfg(tmp_path))
    assert bags.info["layout"] == layout
    assert bags.slide_ids == list(slides) and bags.case_ids == list(slides)
    assert bags.fine_labels.tolist() == [0, 1, 2, 3, 4, 5]
    assert bags.coarse_labels.tolist() == [0, 1, 1, 2, 2, 2]
    assert bags.sites == [r[1] for r in rows] and set(bags.sites) == {"karolinska", "radboud"}
    assert bags.hierarchy.fine[0] == "ISUP 0"
    assert bags.hierarchy.coarse == ("benign", "low-grade", "high-grade")
    assert bags.hierarchy.ordinal
    for i, sid in enumerate(bags.slide_ids):
        np.testing.assert_array_equal(bags.bag(i), slides[sid])


def test_panda_negative_means_benign(tmp_path: Path, slides: dict) -> None:
    fx.write_clam_h5(tmp_path, slides)
    rows = [(sid, "radboud", 0, "negative") for sid in slides]
    fx.write_panda_csv(tmp_path / "train.csv", rows)
    assert load_panda(_cfg(tmp_path)).fine_labels.tolist() == [0] * 6


def test_panda_isup_gleason_mismatch_lists_ids(tmp_path: Path) -> None:
    many = fx.make_slides(8, dim=4, seed=0)
    fx.write_clam_h5(tmp_path, many)
    rows = [(sid, "karolinska", 3, "3+3") for sid in many]  # ISUP of 3+3 is 1
    rows[0] = (rows[0][0], "radboud", 0, "negative")
    fx.write_panda_csv(tmp_path / "train.csv", rows)
    with pytest.raises(
        DataError,
        match=r"7 row\(s\) have an isup_grade that contradicts.*slide_001 \(isup 3, "
        r"gleason 3\+3\).*\(\+2 more\)",
    ) as err:
        load_panda(_cfg(tmp_path))
    assert "slide_000" not in str(err.value)


def test_panda_known_mislabelled_slide_is_dropped(
    tmp_path: Path, slides: dict, caplog: pytest.LogCaptureFixture
) -> None:
    slides = {PANDA_KNOWN_MISLABELLED: np.ones((3, 8), np.float32), **slides}
    fx.write_trident(tmp_path, slides)
    rows = [(PANDA_KNOWN_MISLABELLED, "karolinska", 2, "4+3")] + fx.panda_rows(list(slides)[1:])
    fx.write_panda_csv(tmp_path / "train.csv", rows)
    with caplog.at_level(logging.WARNING):
        bags = load_panda(_cfg(tmp_path))
    assert PANDA_KNOWN_MISLABELLED not in bags.slide_ids and len(bags) == 6
    assert f"dropped {PANDA_KNOWN_MISLABELLED}" in caplog.text


def test_panda_bad_rows_and_header(tmp_path: Path, slides: dict) -> None:
    fx.write_clam_h5(tmp_path, slides)
    rows = fx.panda_rows(list(slides))
    rows[2] = (rows[2][0], "karolinska", 7, "3+3")
    fx.write_panda_csv(tmp_path / "train.csv", rows)
    with pytest.raises(
        DataError, match=r"train\.csv: 1 row\(s\) have an isup_grade outside 0\.\.5.*slide_002"
    ):
        load_panda(_cfg(tmp_path))
    rows = fx.panda_rows(list(slides)) + [fx.panda_rows(list(slides))[4]]
    fx.write_panda_csv(tmp_path / "train.csv", rows)
    with pytest.raises(
        DataError, match=r"train\.csv: 1 image_id\(s\) appear on more than one row \(slide_004\)"
    ):
        load_panda(_cfg(tmp_path))
    (tmp_path / "train.csv").write_text("image_id,isup_grade\na,1\n")
    with pytest.raises(
        DataError, match=r"header image_id,isup_grade; expected exactly image_id,data_provider"
    ):
        load_panda(_cfg(tmp_path))


def test_panda_missing_features_are_an_error(tmp_path: Path, slides: dict) -> None:
    fx.write_clam_h5(tmp_path, dict(list(slides.items())[:4]))
    fx.write_panda_csv(tmp_path / "train.csv", fx.panda_rows(list(slides)))
    with pytest.raises(
        DataError,
        match=r"2 of 6 labelled slides in .*train\.csv have no feature file .*h5_files"
        r"/<slide>\.h5 \(slide_004, slide_005\); extract features",
    ):
        load_panda(_cfg(tmp_path))


def test_extra_feature_files_are_a_warning(
    tmp_path: Path, slides: dict, caplog: pytest.LogCaptureFixture
) -> None:
    fx.write_pt(tmp_path, slides)
    fx.write_panda_csv(tmp_path / "train.csv", fx.panda_rows(list(slides)[:5]))
    with caplog.at_level(logging.WARNING):
        bags = load_panda(_cfg(tmp_path))
    assert len(bags) == 5
    assert "1 feature file(s)" in caplog.text and "slide_005" in caplog.text


def test_missing_data_dir_explains_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCHMARK_DATA_DIR", raising=False)
    with pytest.raises(
        DataError, match=r"no data directory given.*train\.csv.*pt_files.*--dataset panda-sim"
    ) as err:
        load_panda(_cfg(tmp_path, data_dir=None))
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match=r"data directory .*nowhere does not exist.*--dataset panda-sim"):
        load_panda(_cfg(tmp_path, data_dir=str(tmp_path / "nowhere")))
    with pytest.raises(DataError, match=r"train\.csv does not exist.*panda-sim"):
        load_panda(_cfg(tmp_path))


def test_data_dir_from_environment(tmp_path: Path, slides: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    fx.write_clam_h5(tmp_path / "d", slides)
    fx.write_panda_csv(tmp_path / "d" / "train.csv", fx.panda_rows(list(slides)))
    monkeypatch.setenv("BENCHMARK_DATA_DIR", str(tmp_path / "d"))
    assert len(load_panda(_cfg(tmp_path, data_dir=None))) == 6


def test_several_encoders_need_features_option(tmp_path: Path, slides: dict) -> None:
    fx.write_trident(tmp_path, slides, encoder="uni_v1")
    fx.write_trident(tmp_path, {k: v[:, :4] for k, v in slides.items()}, encoder="conch_v1")
    fx.write_panda_csv(tmp_path / "train.csv", fx.panda_rows(list(slides)))
    with pytest.raises(DataError, match="several TRIDENT encoders"):
        load_panda(_cfg(tmp_path))
    feats = tmp_path / "20x_256px_0px_overlap" / "features_conch_v1"
    bags = load_panda(_cfg(tmp_path, features=str(feats)))
    assert bags.dim == 4 and bags.info["encoder"] == "conch_v1"


# ---------------------------------------------------------------------------------------- bracs / csv
def test_bracs_labels_cases_and_hierarchy(tmp_path: Path) -> None:
    slides = fx.make_slides(7, dim=8, seed=4, prefix="BRACS")
    fx.write_clam_h5(tmp_path, slides)
    labels = ["Type_N", "PB", "UDH", "Type_FEA", "adh", "DCIS", "Type_IC"]
    rows = [
        {"slide_id": f"{s}.svs", "label": lab, "patient_id": f"p{i // 2}"}
        for i, (s, lab) in enumerate(zip(slides, labels, strict=True))
    ]
    fx.write_labels_csv(tmp_path / "labels.csv", rows)
    bags = load_bracs(_cfg(tmp_path, "bracs"))
    assert bags.fine_labels.tolist() == list(range(7))
    assert bags.coarse_labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert bags.hierarchy.coarse == ("benign", "atypical", "malignant")
    assert bags.case_ids == ["p0", "p0", "p1", "p1", "p2", "p2", "p3"] and bags.sites is None
    rows[3]["label"] = "Type_XYZ"
    fx.write_labels_csv(tmp_path / "labels.csv", rows)
    with pytest.raises(
        DataError,
        match=r"labels\.csv: 1 row\(s\) have a label outside the hierarchy \(Type_XYZ.*"
        r"BRACS_003\); valid labels: N, PB, UDH, FEA, ADH, DCIS, IC",
    ):
        load_bracs(_cfg(tmp_path, "bracs"))


def test_csv_dataset_with_explicit_files_and_sites(tmp_path: Path) -> None:
    slides = fx.make_slides(6, dim=8, seed=5)
    feats = fx.write_stamp(tmp_path / "stamp", slides, key="patch_embeddings")
    fine = ["NILM", "LSIL", "HSIL"]
    rows = [
        {"case_id": f"c{i}", "slide_id": s, "label": fine[i % 3], "site": "A" if i < 3 else "B"}
        for i, s in enumerate(slides)
    ]
    labels = fx.write_labels_csv(tmp_path / "meta" / "my_labels.csv", rows)
    tree = fx.write_hierarchy_toml(
        tmp_path / "meta" / "tree.toml",
        {"negative": ["NILM"], "positive": ["LSIL", "HSIL"]},
        fine=fine,
        ordinal=True,
    )
    cfg = DataConfig(
        name="csv",
        labels=str(labels),
        hierarchy=str(tree),
        features=str(feats),
        cache_dir=str(tmp_path / "cache"),
    )
    bags = load_csv(cfg)
    assert bags.hierarchy.fine == tuple(fine) and bags.hierarchy.ordinal
    assert bags.fine_labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert bags.coarse_labels.tolist() == [0, 1, 1, 0, 1, 1]
    assert bags.sites == ["A", "A", "A", "B", "B", "B"] and bags.case_ids[0] == "c0"
    assert bags.info["layout"] == "stamp"


def test_csv_dataset_needs_a_hierarchy(tmp_path: Path) -> None:
    slides = fx.make_slides(3, dim=8)
    fx.write_pt(tmp_path, slides)
    fx.write_labels_csv(tmp_path / "labels.csv", [{"slide_id": s, "label": "a"} for s in slides])
    with pytest.raises(DataError, match=r"hierarchy\.toml does not exist \(or pass --hierarchy FILE\)"):
        load_csv(_cfg(tmp_path, "csv"))
    (tmp_path / "hierarchy.toml").write_text("[groups]\nx = 'a'\n")
    with pytest.raises(BenchmarkError, match=r"hierarchy\.toml: group 'x' must be a list"):
        load_csv(_cfg(tmp_path, "csv"))
    (tmp_path / "labels.csv").write_text("slide,lab\n")
    fx.write_hierarchy_toml(tmp_path / "hierarchy.toml", {"x": ["a"], "y": ["b"]})
    with pytest.raises(DataError, match=r"labels\.csv lacks column\(s\) \['slide_id', 'label'\]"):
        load_csv(_cfg(tmp_path, "csv"))


def test_registered_with_dataset_info() -> None:
    for name in ("panda", "bracs", "csv"):
        assert name in DATASETS
        info = dataset_info(name)
        assert info.needs_data_dir and info.size == "user data" and "pt_files" in info.layout
    assert "train.csv" in dataset_info("panda").layout
    assert dataset_info("csv").hierarchy is None
    assert dataset_info("bracs").hierarchy.n_fine == 7


def test_csv_accepts_stamp_style_columns(tmp_path: Path) -> None:
    slides = fx.make_slides(4, dim=8, seed=7)
    fx.write_stamp(tmp_path / "feats", slides)
    rows = [
        {"PATIENT": f"P{i // 2}", "FILENAME": f"{s}.h5", "label": "ab"[i % 2]} for i, s in enumerate(slides)
    ]
    fx.write_labels_csv(tmp_path / "labels.csv", rows)
    fx.write_hierarchy_toml(tmp_path / "hierarchy.toml", {"x": ["a"], "y": ["b"]})
    bags = load_csv(_cfg(tmp_path, "csv"))
    assert bags.slide_ids == list(slides) and bags.case_ids == ["P0", "P0", "P1", "P1"]
    assert bags.fine_labels.tolist() == [0, 1, 0, 1]
