"""Running the per-sequence map with `talking_faces.parallel`: in-process, local processes or Ray.

Every backend builds the scorer once per worker (models load once) and yields
`(sequence name, scores)` as results arrive, so the caller can cache each one immediately.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from talking_faces import parallel
from talking_faces.data.sequences import Sequence

from .scorers import ScorerSpec
from .scoring import MethodScores

Result = tuple[str, dict[str, MethodScores]]


@dataclass(frozen=True)
class _Scoring:
    """The worker spec: a scorer built once per worker, applied to each sequence."""

    spec: ScorerSpec

    def build(self) -> Callable[[Sequence], Result]:
        scorer = self.spec.build()
        return lambda sequence: (sequence.name, scorer.score(sequence))


def run_map(spec: ScorerSpec, sequences: list[Sequence], workers: int = 1, ray_address: str | None = None) -> Iterator[Result]:
    """Score every sequence with the backend the options choose."""
    return parallel.run_map(_Scoring(spec), sequences, workers=workers, ray_address=ray_address)
