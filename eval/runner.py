"""The evaluation run: cached per-sequence scores, the parallel map, and pooling into table rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import ResultCache, config_hash
from .executors import run_map
from .scorers import MissingPredictions, ScorerSpec
from .scoring import MethodScores, pool
from talking_faces.data.sequences import Sequence

AGGREGATION = {
    "truncation": "prediction cut to the ground-truth length (P[:T_gt]); ground truth cut too if the prediction is shorter",
    "LVE": "per frame, max over lip vertices of the squared L2 error; mean over the pooled frames of all sequences "
           "and conditions (CodeTalker)",
    "V-LVE": "LVE of frame differences (dX[t] = X[t+1] - X[t]); per frame, max over lip vertices of ||dP - dG||^2; "
             "mean over pooled frames",
    "FDD": "per sequence and condition, D(GT) - D(pred) with D = mean over upper-face vertices of the population std "
           "over time of the squared displacement from the template (signed); unweighted mean over all terms",
    "diversity": "condition diversity: per sequence, mean over condition pairs of the mean over frames and vertices "
                 "of the Euclidean distance; mean over the sequences with two or more conditions; null when none",
    "sample diversity": "the same distance over stochastic samples of one condition (--num-samples >= 2); "
                        "null for deterministic models",
    "MVE": "mean over pooled frames and all vertices of the Euclidean error",
}


@dataclass
class EvalResult:
    """Everything a report needs.

    Attributes:
        rows: one dict per method: method, dataset, LVE, FDD, V-LVE, diversity, sample diversity, MVE, sequences, frames
            (native units, None where a metric does not apply).
        regions: `Regions.describe()` of the regions used.
        config: the configuration the cache is keyed by, plus its hash.
        skipped: sequences left out for lack of predictions (only with `skip_missing`).
        computed, cached: how many sequences were scored now and how many came from the cache.
    """

    rows: list[dict[str, Any]]
    regions: dict[str, Any]
    config: dict[str, Any]
    skipped: list[str] = field(default_factory=list)
    computed: int = 0
    cached: int = 0
    aggregation: dict[str, str] = field(default_factory=lambda: dict(AGGREGATION))


def evaluate(
    dataset: str,
    sequences: list[Sequence],
    spec: ScorerSpec,
    out: Path,
    context: dict[str, Any] | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    skip_missing: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Score `sequences` with `spec` (a `PredictionSpec` or `AdapterSpec`), resuming from `out/cache`.

    Args:
        context: what else identifies the run for the cache (data root, split, ...).
        on_progress: called with (done, total) as sequences finish, cached ones included.
    """
    config = {"dataset": dataset, **(context or {}), **spec.config()}
    key = config_hash(config)
    cache = ResultCache(out / "cache" / key)
    progress = on_progress or (lambda done, total: None)
    results: dict[str, dict[str, MethodScores]] = {}
    fingerprints: dict[str, str] = {}
    skipped: list[str] = []
    todo: list[Sequence] = []
    for sequence in sequences:
        try:
            fingerprints[sequence.name] = spec.fingerprint(sequence)
        except MissingPredictions:
            if not skip_missing:
                raise
            skipped.append(sequence.name)
            continue
        cached = cache.load(sequence.name, fingerprints[sequence.name])
        if cached is None:
            todo.append(sequence)
        else:
            results[sequence.name] = cached
    total = len(results) + len(todo)
    progress(len(results), total)
    for name, scores in run_map(spec, todo, workers=workers, ray_address=ray_address):
        cache.save(name, fingerprints[name], scores)
        results[name] = scores
        progress(len(results), total)
    order = [s.name for s in sequences if s.name in results]
    rows = [
        {"method": method, "dataset": dataset, **pool(results[name][method] for name in order if method in results[name])}
        for method in spec.methods()
    ]
    return EvalResult(rows, spec.regions.describe(), {**config, "hash": key}, skipped, len(todo), total - len(todo))
