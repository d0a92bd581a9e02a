"""Writing a `.npy` array chunk by chunk, so a `(T, V, 3)` clip is never held in memory.

The file is numpy's format (a `numpy.lib.format` header, then the C-order data), written with
plain file writes rather than through `open_memmap`: the pages of a memory map count towards the
process's resident memory until they are written back (2.6 GB for 10 minutes of a 12k-vertex face),
and a full disk under a memory map kills the process with SIGBUS instead of raising ENOSPC.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np


class NpyWriter:
    """A `.npy` file of shape `shape` whose rows are written in order by `write(start, rows)`.

    Space for the whole array is reserved on opening, so a full disk fails before any work.
    `close()` raises unless every row was written. Use as a context manager.
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype: np.dtype | type = np.float32) -> None:
        self.path, self.shape, self.dtype = Path(path), tuple(shape), np.dtype(dtype)
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._next = 0
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        self._file = open(self.path, "wb")
        try:
            np.lib.format.write_array_header_1_0(self._file, header)
            self._file.flush()
            _reserve(self._file, self._file.tell() + self.shape[0] * self._row_bytes)
        except BaseException:
            self._file.close()
            raise

    def write(self, start: int, rows: np.ndarray) -> None:
        """Write `rows` `(n, *shape[1:])` as rows `start .. start + n - 1`; rows come in order."""
        if start != self._next or tuple(rows.shape[1:]) != self.shape[1:] or start + rows.shape[0] > self.shape[0]:
            raise ValueError(f"rows {start}:{start + rows.shape[0]} of shape {rows.shape} do not continue {self.path} at row {self._next}")
        self._file.write(np.ascontiguousarray(rows, dtype=self.dtype).data)
        self._next += rows.shape[0]

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        if self._next != self.shape[0]:
            raise ValueError(f"{self.path} got {self._next} of its {self.shape[0]} rows")

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, exc_type: type | None, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._file.close()


def _reserve(file, size: int) -> None:
    """Allocate `size` bytes for `file`: a full disk raises ENOSPC (naming the file) now."""
    try:
        os.posix_fallocate(file.fileno(), 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # file systems without fallocate pass
            raise OSError(exc.errno, exc.strerror, file.name) from None
