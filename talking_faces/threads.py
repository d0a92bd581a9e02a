"""Two small concurrency tools for the render loop: a value computed on a background thread, and prefetching.

Both use daemon threads, so an interrupted run never waits for them to finish.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_POLL_S = 0.1  # how often a blocked producer checks whether its consumer has gone


class Background(Generic[T]):
    """`fn()` run on a daemon thread; `result()` waits for it and re-raises its error in the caller's thread."""

    def __init__(self, fn: Callable[[], T], name: str = "talkface-background") -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], T]) -> None:
        try:
            self._value = fn()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


class _End:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetch(items: Iterable[T], depth: int, name: str = "talkface-prefetch") -> Iterator[T]:
    """The items of `items` in order, produced on a thread up to `depth` ahead of the consumer.

    The work of producing item i + 1 (numpy and torch release the GIL) overlaps the consumer's
    work on item i. An error in the producer is raised in the consumer; a consumer that stops
    early (or is interrupted) stops the producer at its next item.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_End())
        except BaseException as exc:  # handed to the consumer
            put(_End(exc))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join()
