"""Low-level pieces of the packed feature cache: size estimate, RAM/pack sink, streaming ``.npy`` writer
and atomic directory commits.

The packed ``features.npy`` is written in one pass while the source files are read, before the total
number of rows is known, so the header is reserved up front and rewritten with the final shape.
A pack is assembled in a temporary sibling directory and renamed into place only when complete, so an
interrupted pack never leaves a directory that looks valid.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import struct
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from benchmark.data.files import stores

__all__ = ["NpyAppender", "PackBuilder", "Sink", "estimate_size", "fsync_path"]

_LEFTOVER_AGE_S = 24 * 3600
_HEADER_BYTES = 128  # magic(6) + version(2) + length(2) + padded dict; holds any (T, D) int64 shape


def fsync_path(path: Path) -> None:
    """fsync a file or directory (directories so that renames inside them are durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class NpyAppender:
    """Append (n, D) float32 rows to a ``.npy`` file whose row count is only known at the end.

    Args:
        path: the ``.npy`` file to create.
        dim: D, the row width.

    ``sha256`` hashes every appended row's bytes in order (a content fingerprint of the pack).
    """

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.rows = 0
        self.sha256 = hashlib.sha256()
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._fh.write(b"\0" * _HEADER_BYTES)

    def write(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype="<f4")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"NpyAppender: expected (n, {self.dim}) rows, got {x.shape}")
        buf = memoryview(x).cast("B")
        self._fh.write(buf)
        self.sha256.update(buf)
        self.rows += x.shape[0]

    def close(self) -> None:
        """Write the final header, flush and fsync."""
        header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({self.rows}, {self.dim}), }}"
        header = header.ljust(_HEADER_BYTES - 10 - 1) + "\n"
        self._fh.seek(0)
        self._fh.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()


class PackBuilder:
    """Context manager that assembles a pack directory atomically.

    The temporary directory ``<parent>/.tmp-<name>-<random>`` is created lazily by `tmp`; on an
    exception (or if `commit` was never called) it is removed. `commit` fsyncs it and renames it onto
    ``target``, replacing an older pack via a rename-aside so readers never see a half-written one.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self._tmp: Path | None = None
        self._open: list[NpyAppender] = []

    @property
    def tmp(self) -> Path:
        if self._tmp is None:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._remove_leftovers()
            self._tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{self.target.name}-", dir=self.target.parent))
        return self._tmp

    def _remove_leftovers(self) -> None:
        """Delete temporary/aside dirs of this pack left by killed processes (older than a day, so a
        concurrent packer's work in progress is never touched)."""
        cutoff = time.time() - _LEFTOVER_AGE_S
        for prefix in (".tmp-", ".old-"):
            for d in self.target.parent.glob(f"{prefix}{self.target.name}-*"):
                with contextlib.suppress(OSError):
                    if d.stat().st_mtime < cutoff:
                        shutil.rmtree(d, ignore_errors=True)

    def appender(self, filename: str, dim: int) -> NpyAppender:
        app = NpyAppender(self.tmp / filename, dim)
        self._open.append(app)
        return app

    def save_array(self, filename: str, array: np.ndarray) -> None:
        path = self.tmp / filename
        with open(path, "wb") as fh:
            np.save(fh, array)
            fh.flush()
            os.fsync(fh.fileno())

    def save_text(self, filename: str, text: str) -> None:
        path = self.tmp / filename
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def commit(self) -> Path:
        tmp = self.tmp
        fsync_path(tmp)
        old = None
        if self.target.exists():
            old = self.target.with_name(f".old-{self.target.name}-{uuid.uuid4().hex[:8]}")
            os.rename(self.target, old)
        os.rename(tmp, self.target)
        fsync_path(self.target.parent)
        self._tmp = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target

    def __enter__(self) -> PackBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        for app in self._open:
            app.abort()
        if self._tmp is not None:  # not committed: an error or an early return
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class Sink:
    """Receives bags in order and keeps them in RAM until ``limit`` bytes, then spills to a pack."""

    def __init__(self, limit: int | None, builder: PackBuilder, rows: int | None) -> None:
        self.limit, self.builder, self.rows = limit, builder, rows
        self.chunks: list[np.ndarray] = []
        self.buffer: np.ndarray | None = None
        self.nbytes = 0
        self.filled = 0
        self.writer: NpyAppender | None = None

    def add(self, x: np.ndarray) -> None:
        if self.writer is None and (self.limit is None or self.nbytes + x.nbytes > self.limit):
            self.writer = self.builder.appender("features.npy", x.shape[1])
            for c in self._ram_chunks():
                self.writer.write(c)
            self.chunks, self.buffer = [], None
        if self.writer is not None:
            self.writer.write(x)
        elif self.rows is not None:  # exact size known from h5 metadata: fill one array, no 2x peak
            if self.buffer is None:
                self.buffer = np.empty((self.rows, x.shape[1]), dtype=np.float32)
            self.buffer[self.filled : self.filled + len(x)] = x
        else:
            self.chunks.append(x)
        self.filled += len(x)
        self.nbytes += x.nbytes

    def _ram_chunks(self) -> list[np.ndarray]:
        return [self.buffer[: self.filled]] if self.buffer is not None else self.chunks

    def ram_features(self) -> np.ndarray:
        chunks = self._ram_chunks()
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=0)


def estimate_size(paths: list[Path]) -> tuple[int, int | None]:
    """(float32 bytes, total rows or None): exact for h5 (metadata), file sizes for .pt."""
    nbytes, rows = 0, 0
    for p in paths:
        shape = stores.feature_shape(p)
        if shape is None or len(shape) != 2:
            nbytes += os.stat(p).st_size
            rows = None
            continue
        nbytes += shape[0] * shape[1] * 4
        rows = None if rows is None else rows + shape[0]
    return nbytes, rows
