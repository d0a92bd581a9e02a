"""Checkpoints that hold Python objects are refused with a message that says why."""

from dataclasses import dataclass

import pytest
import torch

from talking_faces.adapters.faceformer import FaceFormerAdapter
from talking_faces.aublendnet.checkpoints import read_state_dict
from talking_faces.checkpoints import load_weights_only, read_checkpoint
from talking_faces.errors import TalkingFacesError
from talking_faces.training import load_resume_state


@dataclass
class Settings:  # any class: unpickling it means running this module's code
    lr: float = 1e-4


@pytest.fixture
def pickled_object(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "settings": Settings()}, path)
    return path


@pytest.mark.parametrize(
    "read",
    [
        lambda p: load_weights_only(p, "FaceFormer"),
        lambda p: read_checkpoint(p, "FaceDiffuser", container="state_dict"),
        lambda p: read_state_dict(p, "AUBlendNet"),
        lambda p: FaceFormerAdapter.from_checkpoint(p),
    ],
)
def test_a_checkpoint_holding_code_is_refused_as_such(pickled_object, read):
    with pytest.raises(TalkingFacesError, match=r"holds Python objects besides tensors \(test_checkpoints.Settings\), which could run code") as err:
        read(pickled_object)
    assert "\n" not in str(err.value) and "corrupt" not in str(err.value)


def test_resume_state_holding_code_is_refused_as_such(tmp_path):
    torch.save({"epoch": 3, "settings": Settings()}, tmp_path / "train_state.pt")
    with pytest.raises(TalkingFacesError, match=r"could run code.*delete .*train_state.pt to start over"):
        load_resume_state(tmp_path)


def test_corrupt_and_missing_files_say_so(tmp_path):
    (tmp_path / "bad.pth").write_bytes(b"not a zip")
    with pytest.raises(TalkingFacesError, match="corrupt or not a torch"):
        load_weights_only(tmp_path / "bad.pth", "FaceFormer")
    with pytest.raises(TalkingFacesError, match="not found"):
        load_weights_only(tmp_path / "absent.pth", "FaceFormer")
    with pytest.raises(TalkingFacesError, match="is a folder"):
        load_weights_only(tmp_path, "FaceFormer")
