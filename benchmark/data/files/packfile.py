"""Low-level pieces of the packed feature cache: the shape scan, RAM/pack sink, streaming ``.npy`` writer
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.data.files import stores

__all__ = ["NpyAppender", "PackBuilder", "Scan", "Sink", "fsync_path", "scan"]

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
    """Append (n, D) rows to a ``.npy`` file whose row count is only known at the end.

    Args:
        path: the ``.npy`` file to create.
        dim: D, the row width.
        dtype: the stored precision (float32 or float16), little-endian.

    ``sha256`` hashes every appended row's bytes in order (a content fingerprint of the pack).
    """

    def __init__(self, path: Path, dim: int, dtype: np.dtype | type = np.float32) -> None:
        self.path = path
        self.dim = dim
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.rows = 0
        self.sha256 = hashlib.sha256()
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._fh.write(b"\0" * _HEADER_BYTES)

    def write(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"NpyAppender: expected (n, {self.dim}) rows, got {x.shape}")
        buf = memoryview(x).cast("B")
        self._fh.write(buf)
        self.sha256.update(buf)
        self.rows += x.shape[0]

    def close(self) -> None:
        """Write the final header, flush and fsync."""
        shape = f"({self.rows}, {self.dim})"
        header = f"{{'descr': '{self.dtype.str}', 'fortran_order': False, 'shape': {shape}, }}"
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

    def appender(self, filename: str, dim: int, dtype: np.dtype | type = np.float32) -> NpyAppender:
        app = NpyAppender(self.tmp / filename, dim, dtype)
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
    """Receives the bags in order and holds them in RAM up to ``limit`` bytes, else streams them to a pack.

    With ``rows`` (every file's shape known from its header) the RAM copy is one (rows, D) array allocated
    at the first bag and filled slice by slice, so the loading peak is that array plus one file. Without it
    (a legacy ``.pt`` whose shape needs a full read) bags are kept as chunks and joined at the end.

    Args:
        limit: RAM budget in bytes; None = write a pack from the first bag.
        builder: where a pack is assembled.
        rows: T, the total instances, when known.
        dtype: precision of the held / packed features (bags arrive in it).
    """

    def __init__(self, limit: int | None, builder: PackBuilder, rows: int | None, dtype: np.dtype) -> None:
        self.limit, self.builder, self.rows, self.dtype = limit, builder, rows, np.dtype(dtype)
        self.chunks: list[np.ndarray] = []
        self.buffer: np.ndarray | None = None
        self.nbytes = 0
        self.filled = 0
        self.writer: NpyAppender | None = None

    def add(self, x: np.ndarray) -> None:
        """Append one bag (N, D) of ``dtype``."""
        if self.writer is None and (self.limit is None or self.nbytes + x.nbytes > self.limit):
            self.writer = self.builder.appender("features.npy", x.shape[1], self.dtype)
            for c in self._ram_chunks():
                self.writer.write(c)
            self.chunks, self.buffer = [], None
        if self.writer is not None:
            self.writer.write(x)
        elif self.rows is not None:
            if self.buffer is None:
                self.buffer = np.empty((self.rows, x.shape[1]), dtype=self.dtype)
            self.buffer[self.filled : self.filled + len(x)] = x
        else:
            self.chunks.append(x)
        self.filled += len(x)
        self.nbytes += x.nbytes

    def _ram_chunks(self) -> list[np.ndarray]:
        if self.buffer is not None:  # the whole buffer when it is full: the array itself, not a view of it
            return [self.buffer if self.filled == len(self.buffer) else self.buffer[: self.filled]]
        return self.chunks

    def ram_features(self) -> np.ndarray:
        """(T, D) the bags held in RAM (the preallocated array itself when the shapes were known)."""
        chunks = self._ram_chunks()
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=0)


@dataclass(frozen=True)
class Scan:
    """What the feature files' headers tell before any data is read.

    Attributes:
        file_rows: (S,) instances per file, None where the header cannot tell.
        dim: D of the first file whose shape is known (None if none is).
        unknown_bytes: on-disk size of the files of unknown shape (their in-memory size estimate).
        all_fp16: every file is known to store float16 (so ``feature_dtype="source"`` holds float16).
    """

    file_rows: list[int | None]
    dim: int | None
    unknown_bytes: int
    all_fp16: bool

    @property
    def rows(self) -> int | None:
        """T, the total instances, when every file's shape is known."""
        return None if None in self.file_rows else sum(r for r in self.file_rows if r is not None)

    def nbytes(self, dtype: np.dtype | type) -> int:
        """Estimated bytes of the (T, D) array in ``dtype`` (exact when every shape is known)."""
        known = sum(r for r in self.file_rows if r is not None)
        return known * (self.dim or 0) * np.dtype(dtype).itemsize + self.unknown_bytes


def scan(paths: list[Path]) -> Scan:
    """Read every file's header (h5 metadata; a memory-mapped ``torch.load`` for ``.pt``)."""
    file_rows: list[int | None] = []
    dim: int | None = None
    unknown, all_fp16 = 0, bool(paths)
    for p in paths:
        meta = stores.feature_meta(p)
        if meta is None:
            file_rows.append(None)
            unknown += os.stat(p).st_size
            all_fp16 = False
            continue
        file_rows.append(meta.rows)
        dim = meta.dim if dim is None else dim
        all_fp16 = all_fp16 and meta.dtype == np.float16
    return Scan(file_rows, dim, unknown, all_fp16)
