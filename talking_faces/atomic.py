"""Atomic file output: write beside the target, then rename, so no reader ever sees half a file.

`staged_outputs` does this for several files of one run at once: each is written to a hidden
temporary file in its own folder, and they are renamed into place together only when all were
written. A failure, Ctrl-C or SIGTERM leaves none of them, and no temporary file.
"""

from __future__ import annotations

import contextvars
import errno
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import TalkingFacesError

# Below this much free space a write error without an errno (numpy's tofile) means a full disk.
FULL_DISK_BYTES = 1 << 20
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
# The stage of a `staged_outputs(gather=True)` block: `atomic_write` calls inside it join that stage.
_GATHERING: contextvars.ContextVar[Stage | None] = contextvars.ContextVar("talkface_gathering_stage", default=None)


def failure_reason(exc: OSError, folder: Path) -> str:
    """The cause of a failed write in words: the OS's, or "No space left on device" when the disk is full.

    numpy's `tofile` reports a short write as `OSError("N requested and M written")` without an errno.
    """
    if exc.strerror:
        return exc.strerror
    try:
        if shutil.disk_usage(folder).free < FULL_DISK_BYTES:
            return os.strerror(errno.ENOSPC)
    except OSError:
        pass
    return str(exc) or exc.__class__.__name__


def check_output_writable(path: Path) -> None:
    """Raise a TalkingFacesError now, before any work, unless a file can be created at `path`."""
    path = Path(path)
    folder = path.absolute().parent
    if path.is_dir():
        raise TalkingFacesError(f"Output {path} is a folder; give a file name such as {path / 'out.mp4'}.")
    if not folder.is_dir():
        raise TalkingFacesError(f"Output folder {folder} does not exist; create it or choose another output path.")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".talkface-check-"):
            pass
    except OSError as exc:
        raise TalkingFacesError(f"Cannot write to {folder}: {failure_reason(exc, folder)}; choose a writable output folder.") from None


def same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` name one file (links and relative paths included); False if either is absent."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).absolute() == Path(b).absolute()


def check_not_an_input(output: Path, inputs: Iterable[tuple[str, Path | None]], option: str) -> None:
    """Refuse an output that is one of the run's inputs: `inputs` are (option name, path or None)."""
    for name, path in inputs:
        if path is not None and same_file(output, path):
            raise TalkingFacesError(
                f"{option} {output} is the {name} file given as input and would be overwritten; choose another output name."
            )


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
            os.chmod(name, 0o666 & ~_umask())  # the mode a plain open() would give, not mkstemp's 0600
        except OSError as exc:
            raise TalkingFacesError(f"Cannot write {target}: {failure_reason(exc, target.parent)}; choose a writable location.") from None
        self._files.append((Path(name), target))
        return Path(name)

    def target_of(self, filename: str | os.PathLike | None) -> Path:
        """The target a failed write was for: the one whose temporary file is `filename`, else the last staged."""
        for tmp, target in self._files:
            if filename is not None and Path(filename).absolute() == tmp.absolute():
                return target
        if filename is not None:
            return Path(filename)
        return self._files[-1][1] if self._files else Path("the output")

    def commit(self) -> None:
        """Rename every temporary file onto its target; on a failure remove the ones already renamed."""
        # Ctrl-C or SIGTERM between two renames would leave half a run: hold them until all are done.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        done: list[Path] = []
        try:
            for tmp, target in self._files:
                try:
                    os.replace(tmp, target)
                except OSError as exc:
                    for placed in done:
                        placed.unlink(missing_ok=True)
                    raise TalkingFacesError(
                        f"Cannot write {target}: {failure_reason(exc, target.parent)}; choose a writable location."
                    ) from None
                done.append(target)
        finally:
            self._files = []
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def discard(self) -> None:
        for tmp, _ in self._files:
            tmp.unlink(missing_ok=True)
        self._files = []


@contextmanager
def staged_outputs(gather: bool = False) -> Iterator[Stage]:
    """Write several outputs all-or-nothing: `with staged_outputs() as stage: write(stage.path(target))`.

    The targets appear when the block ends without an error. A write that fails with an OSError
    becomes a TalkingFacesError with the real reason (e.g. "No space left on device"). With
    `gather`, every `atomic_write` made in this block (on this thread) joins the stage too, so
    files written deep in a job (exports, say) appear with the run's other outputs or not at all.
    """
    stage = Stage()
    token = _GATHERING.set(stage) if gather else None
    try:
        yield stage
        stage.commit()
    except OSError as exc:
        target = stage.target_of(exc.filename)
        reason = failure_reason(exc, target.absolute().parent)  # before the discard frees the disk
        stage.discard()
        raise TalkingFacesError(f"Cannot write {target}: {reason}; choose a writable location with free space.") from None
    except BaseException:
        stage.discard()
        raise
    finally:
        if token is not None:
            _GATHERING.reset(token)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file in `path`'s folder, then rename it over `path`.

    On any failure, Ctrl-C and SIGTERM included, the temporary file is removed. Inside a
    `staged_outputs(gather=True)` block the rename waits for the end of that block.
    """
    gathering = _GATHERING.get()
    if gathering is not None:
        write(gathering.path(path))
        return
    with staged_outputs() as stage:
        write(stage.path(path))
