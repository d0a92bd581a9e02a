"""Running the per-sequence map: in-process, on a pool of local processes, or on a Ray cluster.

Every backend builds the scorer once per worker (models load once) and yields
`(sequence name, scores)` as results arrive, so the caller can cache each one immediately.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from talking_faces.errors import TalkingFacesError

from .scorers import Scorer, ScorerSpec
from .scoring import MethodScores
from talking_faces.data.sequences import Sequence

Result = tuple[str, dict[str, MethodScores]]
_worker_scorer: Scorer | None = None


def _init_worker(spec: ScorerSpec) -> None:
    global _worker_scorer
    _worker_scorer = spec.build()


def _score_in_worker(sequence: Sequence) -> Result:
    return sequence.name, _worker_scorer.score(sequence)


def run_serial(spec: ScorerSpec, sequences: list[Sequence]) -> Iterator[Result]:
    if not sequences:
        return
    scorer = spec.build()
    for sequence in sequences:
        yield sequence.name, scorer.score(sequence)


def run_processes(spec: ScorerSpec, sequences: list[Sequence], workers: int) -> Iterator[Result]:
    """`workers` spawned processes (spawn, not fork: torch and fork do not mix)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(spec,)) as pool:
        pending = {pool.submit(_score_in_worker, s) for s in sequences}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()


def run_ray(spec: ScorerSpec, sequences: list[Sequence], address: str, workers: int) -> Iterator[Result]:
    """One Ray actor per worker, each holding a scorer; `address` "local" starts a local Ray instance.

    Dataset files must be readable at the same paths on every Ray node; results come back to the caller.
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
        actor_class = ray.remote(_RayScorer)
        pool = ActorPool([actor_class.remote(spec) for _ in range(max(1, workers))])
        yield from pool.map_unordered(lambda actor, sequence: actor.score.remote(sequence), sequences)
    finally:
        if started:
            ray.shutdown()


class _RayScorer:
    def __init__(self, spec: ScorerSpec) -> None:
        self.scorer = spec.build()

    def score(self, sequence: Sequence) -> Result:
        return sequence.name, self.scorer.score(sequence)


def run_map(spec: ScorerSpec, sequences: list[Sequence], workers: int = 1, ray_address: str | None = None) -> Iterator[Result]:
    """Score every sequence with the backend the options choose."""
    if ray_address is not None:
        return run_ray(spec, sequences, ray_address, workers)
    if workers > 1 and len(sequences) > 1:
        return run_processes(spec, sequences, min(workers, len(sequences)))
    return run_serial(spec, sequences)
