"""A function run in a separate Python process, for work that holds the GIL for long (pocketsphinx's
decoder) while this process has other work to do (starting the renderer).

    with WorkerProcess(fn, *args) as worker:
        ...                      # this process works meanwhile
        value = worker.result()  # fn(*args), computed in the worker

`fn` and `args` are pickled to the worker over its stdin and the result comes back over a private
pipe (both ends are this program's own, never user data). The worker runs in its own session, so
Ctrl-C reaches only this process, and it is killed when the thread that started it ends (Linux),
or by `close()`, so an interrupted render never leaves it running.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any

from .errors import TalkingFacesError

PR_SET_PDEATHSIG = 1


class WorkerProcess:
    """`fn(*args)` computed in a new Python process; `result()` waits for it."""

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "worker") -> None:
        self.name = name
        payload = pickle.dumps((fn, args, os.getpid()), protocol=pickle.HIGHEST_PROTOCOL)
        read_end, write_end = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "talking_faces.worker", str(write_end)], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_end,), start_new_session=True,
            )
        finally:
            os.close(write_end)
        self._results = os.fdopen(read_end, "rb")
        try:
            with self._process.stdin as stdin:
                stdin.write(payload)
        except BrokenPipeError:
            pass  # the worker died at start; result() says so

    def result(self) -> Any:
        """`fn(*args)`; its exception is raised here, and its warnings are issued here."""
        try:
            status, value, notes = pickle.load(self._results)
        except (EOFError, pickle.UnpicklingError):
            code = self._process.wait()
            raise TalkingFacesError(
                f"The {self.name} process ended without a result (exit status {code}); run again, and report it if it recurs."
            ) from None
        for message, category in notes:
            warnings.warn(message, category, stacklevel=2)
        self._process.wait()
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        """Stop the worker if it still runs."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._results.close()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when the parent's starting thread ends (Linux only)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent was already gone before prctl
        os._exit(1)


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return TalkingFacesError(f"{error.__class__.__name__}: {error}")


def _serve(result_fd: int) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            fn, args, parent = pickle.load(sys.stdin.buffer)
            _die_with_parent(parent)
            outcome: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:  # handed to the parent, which raises it
            outcome = ("error", _picklable(exc))
    notes = [(str(note.message), note.category) for note in caught]
    with os.fdopen(result_fd, "wb") as results:
        pickle.dump((*outcome, notes), results, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
