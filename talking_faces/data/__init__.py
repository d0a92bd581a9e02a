"""Dataset readers: VOCASET and 3D MEAD as they exist on users' disks, as `Sequence` records."""

from __future__ import annotations

from pathlib import Path

from talking_faces.errors import TalkingFacesError

from .sequences import Sequence
from . import mead_emote, mead_lgldm, vocaset

DATASETS = ("vocaset", "mead", "mead-emote", "mead-lgldm")
SPLITS = {
    "vocaset": vocaset.SPLIT_NAMES,
    "mead-emote": mead_emote.SPLIT_NAMES,
    "mead-lgldm": mead_lgldm.SPLIT_NAMES,
}


def mead_layout(root: Path) -> str:
    """`mead-lgldm` or `mead-emote`, from what the root folder holds."""
    if mead_lgldm.is_lgldm_layout(root):
        return "mead-lgldm"
    if mead_emote.is_emote_layout(root):
        return "mead-emote"
    raise TalkingFacesError(
        f"{root} is not a 3D MEAD root; expected FLAME_ALL/ and AUDIO/ (LG-LDM) "
        "or wav/ with vertex/ or param/ (EMOTE/ProbTalk3D)."
    )


def read_dataset(name: str, root: Path, split: str = "test", flame_model: Path | None = None) -> list[Sequence]:
    """The sequences of one split of a dataset, sorted by name.

    Args:
        name: `vocaset`, `mead` (layout detected), `mead-emote` or `mead-lgldm`.
        root: the dataset folder.
        split: `test` (default), `val`, `train`, `all`; EMOTE-style MEAD also has ProbTalk3D's
            `pred-train`, `pred-val`, `pred-test`.
        flame_model: FLAME `generic_model.pkl`, for layouts that store FLAME parameters.
    """
    root = Path(root)
    if name not in DATASETS:
        raise TalkingFacesError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    if not root.is_dir():
        raise TalkingFacesError(f"Dataset folder not found: {root}; pass --data-root.")
    layout = mead_layout(root) if name == "mead" else name
    if split not in SPLITS[layout]:
        raise TalkingFacesError(f"Unknown split {split!r} for {layout}; choose one of {', '.join(SPLITS[layout])}.")
    if layout == "vocaset":
        return vocaset.read_vocaset(root, split)
    if layout == "mead-emote":
        return mead_emote.read_mead_emote(root, split, flame_model)
    return mead_lgldm.read_mead_lgldm(root, split, flame_model)


__all__ = ["DATASETS", "Sequence", "mead_layout", "read_dataset"]
