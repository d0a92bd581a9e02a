"""Functions run in a separate Python process, for work that holds the GIL for long (pocketsphinx's
decoder) while this process has other work to do (starting the renderer).

    with WorkerProcess() as worker:      # started now: the worker imports while this process works
        worker.run(prepare, ...)         # optional warm-up, no result
        ...                              # this process works meanwhile
        value = worker.call(fn, *args)   # fn(*args), computed in the worker

Jobs are pickled to the worker over its stdin and results come back over a private pipe (both ends
are this program's own, never user data). The worker runs in its own session, so Ctrl-C reaches only
this process, and it is killed when the thread that started it ends (Linux), or by `close()`, so an
interrupted render never leaves it running.
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


class UnsendableJob(Exception):
    """A function or arguments that cannot be pickled to the worker; the caller may run them itself."""


class WorkerProcess:
    """A Python process that runs the functions it is sent, one after the other."""

    def __init__(self, name: str = "worker", preload: tuple[str, ...] = ()) -> None:
        """Start the worker; it imports the modules of `preload` while it waits for its first job."""
        self.name = name
        read_end, write_end = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "talking_faces.worker", str(write_end), str(os.getpid()), *preload],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_end,),
                start_new_session=True,
            )
        finally:
            os.close(write_end)
        self._results = os.fdopen(read_end, "rb")
        self._unread = 0  # replies to `run` jobs, read and dropped by the next `call`

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Have the worker call `fn(*args)` next, for its side effects (a warm-up): its result and errors are dropped."""
        self._send(fn, args)
        self._unread += 1

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` computed by the worker, after the jobs sent before; its exception is raised here, and
        its warnings are issued here. Raises UnsendableJob when `fn` or `args` cannot be pickled."""
        self.submit(fn, *args)
        return self.result()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Send `fn(*args)` to the worker and return at once; `result()` waits for its value."""
        self._send(fn, args)

    def result(self) -> Any:
        """The value of the oldest `submit`ted job not yet collected (see `call`)."""
        try:
            for _ in range(self._unread):
                pickle.load(self._results)
            self._unread = 0
            status, value, notes = pickle.load(self._results)
        except (EOFError, pickle.UnpicklingError):
            code = self._process.wait()
            raise TalkingFacesError(
                f"The {self.name} process ended without a result (exit status {code}); run again, and report it if it recurs."
            ) from None
        for message, category in notes:
            warnings.warn(message, category, stacklevel=2)
        if status == "error":
            raise value
        return value

    def _send(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            job = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise UnsendableJob(f"{exc.__class__.__name__}: {exc}") from None
        try:
            self._process.stdin.write(job)
            self._process.stdin.flush()
        except BrokenPipeError:
            pass  # the worker has died; call() says so

    def close(self) -> None:
        """Stop the worker (at once if it still works)."""
        try:
            self._process.stdin.close()
        except BrokenPipeError:
            pass
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


def _run_job(job: tuple[Callable[..., Any], tuple[Any, ...]]) -> tuple[str, Any, list[tuple[str, type[Warning]]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            fn, args = job
            outcome: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:  # handed to the parent, which raises it
            outcome = ("error", _picklable(exc))
    return (*outcome, [(str(note.message), note.category) for note in caught])


def _serve(results_fd: int, parent: int, preload: list[str]) -> None:
    import importlib

    _die_with_parent(parent)
    for module in preload:
        importlib.import_module(module)
    with os.fdopen(results_fd, "wb") as results:
        while True:
            try:
                job = pickle.load(sys.stdin.buffer)
            except EOFError:
                return
            except Exception as exc:  # a job that cannot be unpickled here (its module is missing): say so
                job = (_raise, (exc,))
            pickle.dump(_run_job(job), results, protocol=pickle.HIGHEST_PROTOCOL)
            results.flush()


def _raise(error: BaseException) -> None:
    raise error


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
