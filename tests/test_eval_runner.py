import importlib.util

import numpy as np
import pytest
from test_eval_synth import write_masks, write_predictions, write_vocaset

from talking_faces.data import read_dataset
from talking_faces.eval.regions import load_regions
from talking_faces.eval.runner import evaluate
from talking_faces.eval.scorers import PredictionScorer, PredictionSpec


@pytest.fixture
def setup(tmp_path):
    root = tmp_path / "vocaset"
    truth = write_vocaset(root, sentences=(21, 22, 23))
    write_predictions(tmp_path / "preds", truth)
    regions = load_regions(write_masks(tmp_path / "FLAME_masks.pkl"))
    return read_dataset("vocaset", root), PredictionSpec(tmp_path / "preds", regions, "preds"), tmp_path


def _counting(monkeypatch, fail_after=None):
    calls = []
    original = PredictionScorer.score

    def score(self, sequence):
        if fail_after is not None and len(calls) == fail_after:
            raise RuntimeError("simulated crash")
        calls.append(sequence.name)
        return original(self, sequence)

    monkeypatch.setattr(PredictionScorer, "score", score)
    return calls


def test_interrupted_run_resumes_with_only_the_rest(setup, monkeypatch):
    sequences, spec, tmp = setup
    reference = evaluate("vocaset", sequences, spec, tmp / "clean")
    calls = _counting(monkeypatch, fail_after=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        evaluate("vocaset", sequences, spec, tmp / "out")
    assert len(calls) == 2
    monkeypatch.undo()
    calls = _counting(monkeypatch)
    progress = []
    resumed = evaluate("vocaset", sequences, spec, tmp / "out", on_progress=lambda d, t: progress.append((d, t)))
    assert sorted(calls) == sorted(s.name for s in sequences[2:]) and len(calls) == len(sequences) - 2
    assert (resumed.computed, resumed.cached) == (len(sequences) - 2, 2)
    assert progress[0] == (2, len(sequences)) and progress[-1] == (len(sequences), len(sequences))
    assert resumed.rows == reference.rows  # exactly equal: the pooled terms are the same numbers
    calls.clear()
    assert evaluate("vocaset", sequences, spec, tmp / "out").rows == reference.rows and calls == []


def test_changed_inputs_do_not_reuse_the_cache(setup, monkeypatch):
    sequences, spec, tmp = setup
    evaluate("vocaset", sequences, spec, tmp / "out")
    calls = _counting(monkeypatch)
    (tmp / "regions").mkdir()
    (tmp / "regions" / "lve.txt").write_text("3, 4")
    (tmp / "regions" / "fdd.txt").write_text("10, 11")
    other = PredictionSpec(spec.predictions, load_regions(tmp / "regions"), "preds")
    evaluate("vocaset", sequences, other, tmp / "out")
    assert len(calls) == len(sequences)  # new regions: new configuration hash
    calls.clear()
    name = sequences[0].name
    path = next(spec.predictions.glob(f"{name}_condition_A.npy"))
    np.save(path, np.load(path) + 1e-3)  # a rewritten prediction file invalidates its sequence only
    evaluate("vocaset", sequences, other, tmp / "out")
    assert calls == [name]


def test_worker_processes_give_the_same_rows(setup):
    sequences, spec, tmp = setup
    serial = evaluate("vocaset", sequences, spec, tmp / "serial")
    parallel = evaluate("vocaset", sequences, spec, tmp / "parallel", workers=2)
    assert parallel.rows == serial.rows and parallel.computed == len(sequences)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (optional extra 'ray')")
def test_ray_local_gives_the_same_rows(setup):
    sequences, spec, tmp = setup
    serial = evaluate("vocaset", sequences, spec, tmp / "serial")
    on_ray = evaluate("vocaset", sequences, spec, tmp / "ray", workers=2, ray_address="local")
    assert on_ray.rows == serial.rows


def test_ray_missing_gives_install_hint(setup, monkeypatch):
    import sys

    from talking_faces.errors import TalkingFacesError

    sequences, spec, tmp = setup
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(TalkingFacesError, match=r"pip install 'talking_faces\[ray\]'"):
        evaluate("vocaset", sequences, spec, tmp / "out", ray_address="local")
