"""Write tiny feature sets and label files in the real on-disk layouts (for tests, demos and CLI checks).

Every writer takes ``slides: {slide_id: (N, D) array}`` and returns the directory the feature files
went to. Example::

    slides = make_slides(6, dim=8, seed=0)
    write_trident(tmp_path, slides)                      # tmp_path/20x_256px_0px_overlap/features_uni_v1/*.h5
    write_panda_csv(tmp_path / "train.csv", panda_rows(list(slides)))
    bags = load_dataset(DataConfig(name="panda", data_dir=str(tmp_path)))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import torch

__all__ = [
    "make_slides",
    "panda_rows",
    "write_clam_h5",
    "write_hierarchy_toml",
    "write_labels_csv",
    "write_panda_csv",
    "write_pt",
    "write_stamp",
    "write_trident",
]

Slides = Mapping[str, np.ndarray]
# (isup_grade, gleason_score) pairs cycled by `panda_rows`; all consistent with the ISUP table.
_PANDA_GRADES = (
    (0, "0+0"),
    (1, "3+3"),
    (2, "3+4"),
    (3, "4+3"),
    (4, "4+4"),
    (5, "4+5"),
    (4, "3+5"),
    (5, "5+5"),
)


def make_slides(
    n_slides: int = 6,
    dim: int = 8,
    *,
    min_instances: int = 3,
    max_instances: int = 10,
    seed: int = 0,
    prefix: str = "slide",
) -> dict[str, np.ndarray]:
    """Random float32 bags ``{f"{prefix}_{i:03d}": (N_i, dim)}`` with N_i in [min_instances, max_instances]."""
    rng = np.random.default_rng(seed)
    return {
        f"{prefix}_{i:03d}": rng.standard_normal(
            (int(rng.integers(min_instances, max_instances + 1)), dim)
        ).astype(np.float32)
        for i in range(n_slides)
    }


def _coords(n: int) -> np.ndarray:
    """(n, 2) top-left level-0 pixel coordinates on a 256-px grid."""
    i = np.arange(n)
    return np.stack([(i % 16) * 256, (i // 16) * 256], axis=1)


def _write_h5(
    path: Path, key: str, x: np.ndarray, *, coords_dtype: str = "int32", attrs: dict | None = None
) -> None:
    x = np.asarray(x)
    with h5py.File(path, "w") as f:
        # CLAM/TRIDENT append in chunks with an unbounded first axis; mimic that storage layout.
        ds = f.create_dataset(
            key, data=x, maxshape=(None, *x.shape[1:]), chunks=(32, *x.shape[1:]) if x.ndim == 2 else None
        )
        for k, v in (attrs or {}).items():
            ds.attrs[k] = v
        f.create_dataset(
            "coords", data=_coords(len(x)).astype(coords_dtype), maxshape=(None, 2), chunks=(32, 2)
        )


def write_clam_h5(directory: str | Path, slides: Slides) -> Path:
    """CLAM ``<directory>/h5_files/<slide>.h5`` with ``features`` (N, D) float32 and ``coords`` (N, 2) int32."""
    out = Path(directory) / "h5_files"
    out.mkdir(parents=True, exist_ok=True)
    for sid, x in slides.items():
        _write_h5(out / f"{sid}.h5", "features", np.asarray(x, dtype=np.float32))
    return out


def write_pt(directory: str | Path, slides: Slides, *, subdir: str | None = "pt_files") -> Path:
    """CLAM ``<directory>/pt_files/<slide>.pt``: ``torch.save`` of a (N, D) tensor (dtype kept)."""
    out = Path(directory) / subdir if subdir else Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for sid, x in slides.items():
        torch.save(torch.from_numpy(np.ascontiguousarray(x)), out / f"{sid}.pt")
    return out


def write_trident(
    directory: str | Path,
    slides: Slides,
    *,
    encoder: str = "uni_v1",
    magnification: str = "20x_256px_0px_overlap",
    patches: bool = True,
) -> Path:
    """TRIDENT job dir: ``<directory>/<magnification>/features_<encoder>/<slide>.h5``.

    Each file has ``features`` (N, D) (attrs name/savetodir/encoder) and ``coords`` (N, 2) int64; a
    (0, D) array is written as TRIDENT does for slides without tissue. With ``patches``, also writes
    ``patches/<slide>_patches.h5`` (coords only) and a ``thumbnails`` folder, which loaders must ignore.
    """
    run = Path(directory) / magnification
    out = run / f"features_{encoder}"
    out.mkdir(parents=True, exist_ok=True)
    for sid, x in slides.items():
        attrs = {"name": sid, "savetodir": str(out), "encoder": encoder}
        _write_h5(
            out / f"{sid}.h5", "features", np.asarray(x, dtype=np.float32), coords_dtype="int64", attrs=attrs
        )
    if patches:
        (run / "patches").mkdir(exist_ok=True)
        (Path(directory) / "thumbnails").mkdir(parents=True, exist_ok=True)
        for sid, x in slides.items():
            with h5py.File(run / "patches" / f"{sid}_patches.h5", "w") as f:
                f.create_dataset("coords", data=_coords(len(x)).astype("int64"))
    return out


def write_stamp(
    directory: str | Path, slides: Slides, *, key: str = "feats", encoder: str = "ctranspath"
) -> Path:
    """STAMP ``<directory>/<slide>.h5`` with ``feats`` (or ``patch_embeddings``) (N, D) and ``coords``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for sid, x in slides.items():
        attrs = {"feat_type": "tile", "encoder": encoder}
        _write_h5(out / f"{sid}.h5", key, np.asarray(x, dtype=np.float32), attrs=attrs)
    return out


def panda_rows(slide_ids: Sequence[str], *, radboud_every: int = 2) -> list[tuple[str, str, int, str]]:
    """Consistent PANDA rows cycling ISUP 0..5; every ``radboud_every``-th slide is Radboud
    (whose benign slides are written ``negative``, as in Kaggle's file)."""
    rows = []
    for i, sid in enumerate(slide_ids):
        isup, gleason = _PANDA_GRADES[i % len(_PANDA_GRADES)]
        provider = "radboud" if i % radboud_every == 1 else "karolinska"
        if provider == "radboud" and gleason == "0+0":
            gleason = "negative"
        rows.append((sid, provider, isup, gleason))
    return rows


def write_panda_csv(path: str | Path, rows: Iterable[tuple[str, str, int, str]]) -> Path:
    """Kaggle PANDA ``train.csv``: header ``image_id,data_provider,isup_grade,gleason_score``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["image_id,data_provider,isup_grade,gleason_score"]
    lines += [f"{i},{p},{g},{s}" for i, p, g, s in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_labels_csv(path: str | Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """A labels CSV (header = the first row's keys), e.g. ``[{"slide_id": "s1", "label": "N", "case_id": "p1"}]``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(rows[0])
    lines = [",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_hierarchy_toml(
    path: str | Path,
    groups: Mapping[str, Sequence[str]],
    *,
    fine: Sequence[str] | None = None,
    ordinal: bool = False,
) -> Path:
    """A hierarchy TOML for the ``csv`` dataset (see `benchmark.core.hierarchy`)."""
    path = Path(path)

    def arr(xs: Sequence[str]) -> str:
        return "[" + ", ".join(f'"{x}"' for x in xs) + "]"

    lines = [f"ordinal = {'true' if ordinal else 'false'}"]
    if fine is not None:
        lines.append(f"fine = {arr(fine)}")
    lines.append("[groups]")
    lines += [f'"{k}" = {arr(v)}' for k, v in groups.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
