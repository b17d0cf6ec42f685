"""Layout detection and per-file readers (benchmark.data.files.stores)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from benchmark.core.errors import DataError
from benchmark.data import fixtures as fx
from benchmark.data.files.stores import detect_store, feature_shape, read_features


@pytest.fixture
def slides() -> dict[str, np.ndarray]:
    return fx.make_slides(6, dim=8, seed=1)


def _writers() -> dict[str, tuple]:
    return {
        "clam-pt": (lambda d, s: fx.write_pt(d, s), "pt_files"),
        "clam-h5": (lambda d, s: fx.write_clam_h5(d, s), "h5_files"),
        "trident": (lambda d, s: fx.write_trident(d, s, encoder="conch_v1"), "features_conch_v1"),
        "stamp": (lambda d, s: fx.write_stamp(d / "stamp-feats", s), "stamp-feats"),
    }


@pytest.mark.parametrize("layout", ["clam-pt", "clam-h5", "trident", "stamp"])
def test_detects_layout_and_round_trips(tmp_path: Path, slides: dict, layout: str) -> None:
    write, dirname = _writers()[layout]
    out = write(tmp_path, slides)
    store = detect_store(tmp_path)
    assert store.layout == layout
    assert store.directory == out and out.name == dirname
    files = store.files()
    assert list(files) == sorted(slides)
    for sid, x in slides.items():
        got = read_features(files[sid])
        assert got.dtype == np.float32 and got.shape == x.shape
        np.testing.assert_array_equal(got, x)


def test_trident_encoder_recorded_and_patch_dirs_ignored(tmp_path: Path, slides: dict) -> None:
    fx.write_trident(tmp_path, slides, encoder="uni_v1", patches=True)
    store = detect_store(tmp_path)
    assert (store.layout, store.encoder) == ("trident", "uni_v1")
    assert (tmp_path / "20x_256px_0px_overlap" / "patches").is_dir()  # present, but not chosen


def test_detects_store_when_given_the_feature_dir_itself(tmp_path: Path, slides: dict) -> None:
    out = fx.write_clam_h5(tmp_path, slides)
    assert detect_store(out).directory == out
    stamp = fx.write_stamp(tmp_path / "x", slides, key="patch_embeddings")
    store = detect_store(stamp)
    assert store.layout == "stamp"
    np.testing.assert_array_equal(read_features(store.files()["slide_002"]), slides["slide_002"])


def test_clam_dir_with_pt_and_h5_prefers_pt(tmp_path: Path, slides: dict) -> None:
    fx.write_clam_h5(tmp_path, slides)
    fx.write_pt(tmp_path, slides)
    assert detect_store(tmp_path).layout == "clam-pt"


def test_several_trident_encoders_is_an_error(tmp_path: Path, slides: dict) -> None:
    fx.write_trident(tmp_path, slides, encoder="uni_v1")
    fx.write_trident(tmp_path, slides, encoder="conch_v1")
    with pytest.raises(DataError, match=r"several TRIDENT encoders.*conch_v1.*uni_v1.*--features"):
        detect_store(tmp_path)
    one = tmp_path / "20x_256px_0px_overlap" / "features_uni_v1"
    assert detect_store(one).encoder == "uni_v1"


def test_no_features_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "train_images").mkdir()
    (tmp_path / "train.csv").write_text("x\n")
    with pytest.raises(DataError, match=r"no feature files found under .*pt_files"):
        detect_store(tmp_path)
    with pytest.raises(DataError, match=r"does not exist"):
        detect_store(tmp_path / "nope")


def test_pt_half_and_bfloat16_become_float32(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float16)
    torch.save(torch.from_numpy(x), tmp_path / "a.pt")
    torch.save(torch.from_numpy(x.astype(np.float32)).bfloat16(), tmp_path / "b.pt")
    a, b = read_features(tmp_path / "a.pt"), read_features(tmp_path / "b.pt")
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(a, x.astype(np.float32))
    np.testing.assert_allclose(b, x.astype(np.float32), rtol=1e-2)


def test_pt_with_dict_of_features_is_accepted(tmp_path: Path) -> None:
    x = torch.ones(2, 5)
    torch.save({"features": x, "coords": torch.zeros(2, 2)}, tmp_path / "d.pt")
    np.testing.assert_array_equal(read_features(tmp_path / "d.pt"), np.ones((2, 5), np.float32))


class _Payload:
    """Unpickling this would create a marker file; a safe loader must refuse it."""

    marker: Path

    def __reduce__(self):  # noqa: D105
        return (Path.touch, (self.marker,))


def test_pickled_object_in_pt_is_refused_without_executing(tmp_path: Path) -> None:
    payload = _Payload()
    payload.marker = tmp_path / "executed"
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(DataError, match=r"evil\.pt.*pickled Python object") as err:
        read_features(tmp_path / "evil.pt")
    assert "\n" not in str(err.value)
    assert not payload.marker.exists()


def test_pt_holding_a_non_tensor_is_an_error(tmp_path: Path) -> None:
    torch.save({"a": [1, 2]}, tmp_path / "list.pt")
    with pytest.raises(DataError, match=r"list\.pt holds a dict, not a \(N, D\) float tensor"):
        read_features(tmp_path / "list.pt")
    torch.save(torch.arange(6).reshape(3, 2), tmp_path / "int.pt")
    with pytest.raises(DataError, match=r"int\.pt: expected float features"):
        read_features(tmp_path / "int.pt")
    torch.save(torch.ones(7), tmp_path / "flat.pt")
    with pytest.raises(DataError, match=r"flat\.pt: expected a 2-D"):
        read_features(tmp_path / "flat.pt")


@pytest.mark.parametrize("suffix", [".h5", ".pt"])
def test_truncated_file_is_an_error_naming_it(tmp_path: Path, slides: dict, suffix: str) -> None:
    out = fx.write_clam_h5(tmp_path, slides) if suffix == ".h5" else fx.write_pt(tmp_path, slides)
    path = out / f"slide_000{suffix}"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a copy cut in half
    with pytest.raises(DataError, match=rf"slide_000\{suffix}.*(truncated|corrupt|cannot be read)") as err:
        read_features(path)
    assert "\n" not in str(err.value)


def test_h5_without_feature_dataset_is_an_error(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["coords"] = np.zeros((3, 2))
    with pytest.raises(DataError, match=r"c\.h5 has no feature dataset .*found \['coords'\]"):
        read_features(tmp_path / "c.h5")


def test_zero_instance_file_is_read_and_shape_comes_from_metadata(tmp_path: Path) -> None:
    out = fx.write_trident(
        tmp_path, {"empty": np.zeros((0, 8), np.float32), "full": np.ones((5, 8), np.float32)}
    )
    assert read_features(out / "empty.h5").shape == (0, 8)
    assert feature_shape(out / "full.h5") == (5, 8)
    pt = fx.write_pt(tmp_path, {"p": np.ones((2, 8), np.float32)})
    assert feature_shape(pt / "p.pt") == (2, 8)  # a memory-mapped load: the header, not the data


def test_stray_file_next_to_a_named_layout_is_ignored(tmp_path: Path, slides: dict) -> None:
    torch.save(torch.ones(3, 3), tmp_path / "model.pt")  # e.g. a checkpoint in the data dir
    fx.write_clam_h5(tmp_path, slides)
    assert detect_store(tmp_path).layout == "clam-h5"


def test_plain_directory_of_pt_files(tmp_path: Path, slides: dict) -> None:
    out = fx.write_pt(tmp_path / "mine", slides, subdir=None)
    store = detect_store(tmp_path)
    assert (store.layout, store.directory) == ("pt", out)
    np.testing.assert_array_equal(read_features(store.files()["slide_005"]), slides["slide_005"])
