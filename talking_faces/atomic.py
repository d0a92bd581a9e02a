"""Atomic file output: write beside the target, then rename, so no reader ever sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import TalkingFacesError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file in `path`'s folder, then rename it over `path`.

    The temporary name ends with `path`'s suffix, because np.save and soundfile choose the
    format by it. On any failure, Ctrl-C included, the temporary file is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
    except OSError as exc:
        raise TalkingFacesError(f"Cannot write {path}: {exc.strerror}; choose a writable location.") from None
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TalkingFacesError(f"Cannot write {path}: {exc.strerror}; choose a writable location with free space.") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
