"""talking_faces: speech to emotional 3D facial animation.

Every frame is M = M0 + Offset_spe + Offset_exp, with Offset_exp a weighted sum of the
identity's 32 AU-blendshape bases (AUBlendSet order).
"""

from .aus import AU_NAMES, EMOTIONS, NUM_AUS
from .basis import AUBasis, blend, load_aublendset
from .compose import compose
from .emotion import EmotionTrack, parse_emotion
from .errors import TalkingFacesError
from .identity import FLAME_NUM_VERTICES, Identity, load_identity

__version__ = "0.1.0"

__all__ = [
    "AU_NAMES", "EMOTIONS", "NUM_AUS", "AUBasis", "blend", "load_aublendset", "compose",
    "EmotionTrack", "parse_emotion", "TalkingFacesError", "FLAME_NUM_VERTICES", "Identity",
    "load_identity", "__version__",
]
