"""Atomic file output: write beside the target, then rename, so no reader ever sees half a file.

`staged_outputs` does this for several files of one run at once: each is written to a hidden
temporary file in its own folder, and they are renamed into place together only when all were
written. A failure or Ctrl-C leaves none of them, and no temporary file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import TalkingFacesError


class Stage:
    """The temporary files of one `staged_outputs` block: `path(target)` gives the file to write for `target`."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, Path]] = []  # (temporary, target)

    def path(self, target: str | Path) -> Path:
        """A new hidden temporary file beside `target`, ending with its suffix (np.save and soundfile go by it)."""
        target = Path(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}")
            os.close(fd)
        except OSError as exc:
            raise TalkingFacesError(f"Cannot write {target}: {exc.strerror}; choose a writable location.") from None
        self._files.append((Path(name), target))
        return Path(name)

    def target_of(self, filename: str | os.PathLike | None) -> Path:
        """The target whose temporary file is `filename`, else the last one staged."""
        for tmp, target in self._files:
            if filename is not None and Path(filename).absolute() == tmp.absolute():
                return target
        return self._files[-1][1] if self._files else Path(filename or "the output")

    def commit(self) -> None:
        for tmp, target in self._files:
            os.replace(tmp, target)
        self._files = []

    def discard(self) -> None:
        for tmp, _ in self._files:
            tmp.unlink(missing_ok=True)
        self._files = []


@contextmanager
def staged_outputs() -> Iterator[Stage]:
    """Write several outputs all-or-nothing: `with staged_outputs() as stage: write(stage.path(target))`.

    A write that fails with an OSError becomes a TalkingFacesError with the real reason.
    """
    stage = Stage()
    try:
        yield stage
        stage.commit()
    except OSError as exc:
        target = stage.target_of(exc.filename)
        stage.discard()
        raise TalkingFacesError(f"Cannot write {target}: {exc.strerror}; choose a writable location with free space.") from None
    except BaseException:
        stage.discard()
        raise


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file in `path`'s folder, then rename it over `path`.

    On any failure, Ctrl-C included, the temporary file is removed.
    """
    with staged_outputs() as stage:
        write(stage.path(path))
