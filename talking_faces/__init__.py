"""talking_faces: speech to emotional 3D facial animation.

Every frame is M = M0 + Offset_spe + Offset_exp, with Offset_exp a weighted sum of the
identity's 32 AU-blendshape bases (AUBlendSet order).

The names below are imported on first use, so `import talking_faces` (and every `talkface`
call) does not pay for torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AU_NAMES": "aus", "EMOTIONS": "aus", "NUM_AUS": "aus",
    "AUBasis": "basis", "blend": "basis", "load_aublendset": "basis",
    "compose": "compose",
    "EmotionTrack": "emotion", "parse_emotion": "emotion",
    "TalkingFacesError": "errors",
    "FLAME_NUM_VERTICES": "identity", "Identity": "identity", "load_identity": "identity",
    "load_default_character": "character",
    "build_rig_basis": "rig", "analyse_identity": "rig",
    "ARKIT_NAMES": "arkit", "arkit_shapes": "arkit",
    "export_animation": "exporters", "export_rig": "exporters",
    "Animation": "animation", "AnimationStream": "animation",
    "animate": "pipeline", "stream_animation": "pipeline",
    "render_mp4": "video",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'talking_faces' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
