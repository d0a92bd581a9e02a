"""A parallel map for jobs: in-process, on a pool of local processes, or on a Ray cluster.

A job gives a picklable `spec` whose `build()` makes the per-worker function (models and GL contexts
are made once per worker), and a list of picklable items; results are yielded as they arrive, so
the caller can record each one at once (eval's cache, augment's progress).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Protocol

from .errors import TalkingFacesError


class WorkerSpec(Protocol):
    def build(self) -> Callable[[Any], Any]:
        """The function a worker applies to each item."""


_worker: Callable[[Any], Any] | None = None


def _init_worker(spec: WorkerSpec) -> None:
    global _worker
    _worker = spec.build()


def _call_worker(item: Any) -> Any:
    return _worker(item)


def run_serial(spec: WorkerSpec, items: list) -> Iterator[Any]:
    if not items:
        return
    work = spec.build()
    for item in items:
        yield work(item)


def run_processes(spec: WorkerSpec, items: list, workers: int) -> Iterator[Any]:
    """`workers` spawned processes (spawn, not fork: torch, GL contexts and fork do not mix)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(spec,)) as pool:
        pending = {pool.submit(_call_worker, item) for item in items}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()


def run_ray(spec: WorkerSpec, items: list, address: str, workers: int) -> Iterator[Any]:
    """One Ray actor per worker, each holding the built function; `address` "local" starts a local Ray.

    Input and output files must be reachable at the same paths on every Ray node.
    """
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise TalkingFacesError("--ray needs Ray; install it with: pip install 'talking_faces[ray]'.") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=None if address == "local" else address, ignore_reinit_error=True, log_to_driver=False)
    try:
        actor_class = ray.remote(_RayWorker)
        pool = ActorPool([actor_class.remote(spec) for _ in range(max(1, workers))])
        yield from pool.map_unordered(lambda actor, item: actor.call.remote(item), items)
    finally:
        if started:
            ray.shutdown()


class _RayWorker:
    def __init__(self, spec: WorkerSpec) -> None:
        self.work = spec.build()

    def call(self, item: Any) -> Any:
        return self.work(item)


def run_map(spec: WorkerSpec, items: list, workers: int = 1, ray_address: str | None = None) -> Iterator[Any]:
    """`spec.build()(item)` for every item, with the backend the options choose, in completion order."""
    if ray_address is not None:
        return run_ray(spec, items, ray_address, workers)
    if workers > 1 and len(items) > 1:
        return run_processes(spec, items, min(workers, len(items)))
    return run_serial(spec, items)
