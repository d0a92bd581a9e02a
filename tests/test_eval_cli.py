import csv
import itertools
import json
import pickle

import numpy as np
import pytest
from test_eval_synth import EYES, FOREHEAD, LIPS, V, VOCA_TEST, write_masks, write_predictions, write_vocaset
from typer.testing import CliRunner

from talking_faces.cli import app
from talking_faces.errors import TalkingFacesError


def reference_rows(root, truth60, preds):
    """Loop-by-loop CodeTalker arithmetic, written independently of talking_faces.eval.metrics."""
    templates = pickle.loads((root / "templates.pkl").read_bytes())
    lips, upper = sorted(set(LIPS.tolist())), sorted(set(FOREHEAD.tolist()) | set(EYES.tolist()))
    lve, vlve, fdd, div = [], [], [], []
    for name in sorted(n for n in truth60 if n.rsplit("_", 1)[0] in VOCA_TEST):
        gt_full = truth60[name][::2]
        tpl = templates[name.rsplit("_", 1)[0]]
        animations = [p for (n, _), p in sorted(preds.items()) if n == name]
        for pred_full in animations:
            n = min(len(pred_full), len(gt_full))
            p, g = pred_full[:n], gt_full[:n]
            lve += [max(float(np.sum((p[t, v] - g[t, v]) ** 2)) for v in lips) for t in range(n)]
            vlve += [max(float(np.sum(((p[t + 1, v] - p[t, v]) - (g[t + 1, v] - g[t, v])) ** 2)) for v in lips)
                     for t in range(n - 1)]

            def dynamics(x):
                return np.mean([np.std([np.sum((x[t, v] - tpl[v]) ** 2) for t in range(n)]) for v in upper])

            fdd.append(dynamics(g) - dynamics(p))
        pairs = [np.mean([np.linalg.norm(a[t, v] - b[t, v]) for t in range(min(len(a), len(b))) for v in range(V)])
                 for a, b in itertools.combinations(animations, 2)]
        div.append(np.mean(pairs))
    return {"LVE": np.mean(lve), "V-LVE": np.mean(vlve), "FDD": np.mean(fdd), "diversity": np.mean(div), "frames": len(lve)}


def _run(args):
    result = CliRunner().invoke(app, ["eval", *map(str, args)])
    if isinstance(result.exception, TalkingFacesError):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def test_predictions_mode_end_to_end(tmp_path):
    root = tmp_path / "vocaset"
    truth = write_vocaset(root)
    preds = write_predictions(tmp_path / "preds", truth)
    masks = write_masks(tmp_path / "FLAME_masks.pkl")
    out = tmp_path / "out"
    _run(["--dataset", "vocaset", "--data-root", root, "--predictions", tmp_path / "preds", "--regions", masks, "--out", out])
    report = json.loads((out / "results.json").read_text())
    assert set(report) >= {"rows", "regions", "aggregation"}
    (row,) = report["rows"]
    assert set(row) >= {"method", "dataset", "LVE", "FDD", "V-LVE", "diversity", "sequences", "frames"}
    assert row["method"] == "preds" and row["dataset"] == "vocaset" and row["sequences"] == 4
    expected = reference_rows(root, truth, preds)
    assert row["frames"] == expected["frames"]
    for metric in ("LVE", "V-LVE", "FDD", "diversity"):
        assert row[metric] == pytest.approx(expected[metric], rel=1e-12, abs=0), metric
    assert report["regions"]["lve"]["unique"] == 5 and report["regions"]["fdd"]["unique"] == 7
    assert report["regions"]["source"] == str(masks)
    assert "max over lip vertices" in report["aggregation"]["LVE"]
    with (out / "results.csv").open() as handle:
        (csv_row,) = list(csv.DictReader(handle))
    assert float(csv_row["LVE"]) == row["LVE"] and float(csv_row["FDD"]) == row["FDD"]
    table = (out / "results.md").read_text()
    assert "LVE (×1e-5 m²)" in table and "FDD (×1e-7 m²)" in table
    assert f"| {row['LVE'] / 1e-5:.4f} |" in table


def test_single_condition_has_no_diversity_and_missing_predictions_fail(tmp_path):
    root = tmp_path / "vocaset"
    truth = write_vocaset(root)
    write_predictions(tmp_path / "preds", truth, conditions=("A",))
    masks = write_masks(tmp_path / "m.pkl")
    args = ["--dataset", "vocaset", "--data-root", root, "--predictions", tmp_path / "preds", "--regions", masks]
    _run([*args, "--out", tmp_path / "out"])
    assert json.loads((tmp_path / "out" / "results.json").read_text())["rows"][0]["diversity"] is None
    missing = next((tmp_path / "preds").glob(f"{VOCA_TEST[1]}_sentence22_condition_*.npy"))
    missing.unlink()
    with pytest.raises(TalkingFacesError, match=f"No prediction for {VOCA_TEST[1]}_sentence22"):
        _run([*args, "--out", tmp_path / "out2"])
    _run([*args, "--out", tmp_path / "out3", "--skip-missing"])
    report = json.loads((tmp_path / "out3" / "results.json").read_text())
    assert report["skipped"] == [f"{VOCA_TEST[1]}_sentence22"] and report["rows"][0]["sequences"] == 3


def test_bad_prediction_shape_names_the_file(tmp_path):
    root = tmp_path / "vocaset"
    truth = write_vocaset(root)
    write_predictions(tmp_path / "preds", truth, conditions=("A",))
    bad = tmp_path / "preds" / f"{VOCA_TEST[0]}_sentence21_condition_A.npy"
    np.save(bad, np.zeros((5, V * 3 - 3)))
    with pytest.raises(TalkingFacesError, match=f"Prediction .*{bad.name} has shape \\(5, 87\\)"):
        _run(["--dataset", "vocaset", "--data-root", root, "--predictions", tmp_path / "preds",
              "--regions", write_masks(tmp_path / "m.pkl"), "--out", tmp_path / "out"])


def test_usage_errors(capsys):
    from talking_faces.cli import run

    assert run(["eval"]) == 0 and "Usage: talkface eval" in capsys.readouterr().out  # bare: the help
    assert run(["eval", "--dataset", "vocaset"]) == 2
    assert "Missing --data-root, --regions, --out" in capsys.readouterr().err
    assert run(["eval", "--dataset", "vocaset", "--data-root", ".", "--regions", ".", "--out", "."]) == 2
    assert "exactly one of --predictions" in capsys.readouterr().err
