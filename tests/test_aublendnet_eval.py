"""MSE_S / MSE_M arithmetic, the AUBlendSet split, and `talkface eval aublendnet`."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from talking_faces.aublendnet.data import AUBlendSetDataset, list_identities, split_identities
from talking_faces.aublendnet.metrics import emotion_weight_matrix, multi_au_errors, single_au_errors
from talking_faces.aus import AU_INDEX
from talking_faces.errors import TalkingFacesError

from test_aublendnet_helpers import tiny_models, write_checkpoints, write_synthetic_aublendset

V = 25


def test_single_and_multi_au_errors_by_hand():
    gt = np.zeros((32, V * 3))
    pred = gt.copy()
    pred[AU_INDEX["AU6"]] += 0.002  # AU6 off by 2 mm in every coordinate
    s = single_au_errors(pred, gt)
    assert s[AU_INDEX["AU6"]] == pytest.approx(4e-6) and s.sum() == pytest.approx(4e-6)
    weights = emotion_weight_matrix()
    assert weights.shape == (7, 32) and weights[0, AU_INDEX["AU12"]] == 1.0  # happy = 6 + 12
    m = multi_au_errors(pred, gt, weights)
    # only happy (6+12) contains AU6
    np.testing.assert_allclose(m, [4e-6, 0, 0, 0, 0, 0, 0], atol=1e-18)


def test_split_is_lexicographic_with_the_held_out_fifty(tmp_path):
    names = sorted(str(i) for i in range(500))
    assert names[:3] == ["0", "1", "10"]
    assert split_identities(names, "test") == names[450:500] and "1" not in split_identities(names, "test")
    assert len(split_identities(names, "train")) == 400 and split_identities(names, "val") == names[400:450]
    write_synthetic_aublendset(tmp_path, 3, V)
    assert list_identities(tmp_path) == ["0", "1", "2"]
    rows, template = AUBlendSetDataset(tmp_path, "all")[1]
    assert rows.shape == (33, 3 * V) and torch.equal(rows[0], template)
    with pytest.raises(TalkingFacesError, match="--split all"):
        AUBlendSetDataset(tmp_path, "test")


def test_eval_command_reports_both_metrics(tmp_path):
    from talking_faces.cli.common import app
    import talking_faces.cli.aublendnet_cmd  # noqa: F401  registers the command

    data = write_synthetic_aublendset(tmp_path / "data", 2, V)
    model = tiny_models(V, heads=8)
    stage2, stage1 = write_checkpoints(model, tmp_path)
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(app, ["eval", "aublendnet", "--data-root", str(data), "--aublendnet", str(stage2),
                                      "--codebook", str(stage1), "--split", "all", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    # recompute MSE_S and MSE_M directly from the model and the files
    dataset = AUBlendSetDataset(data, "all")
    s_values, m_values = [], []
    for rows, template in dataset:
        with torch.no_grad():
            pred = model(template[None]).rows[0].double().numpy()
        gt = rows.double().numpy()
        s_values.append(((pred[1:] - gt[1:]) ** 2).mean())
        m_values.append((((emotion_weight_matrix() @ (pred[1:] - gt[1:])) ** 2).mean(axis=1)).mean())
    assert report["mse_s"] == pytest.approx(np.mean(s_values), rel=1e-5)
    assert report["mse_m"] == pytest.approx(np.mean(m_values), rel=1e-5)
    assert report["identities"] == ["0", "1"] and len(report["per_au"]) == 32 and len(report["per_emotion"]) == 7
