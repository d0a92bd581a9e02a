"""AU-labelled data augmentation (the paper's section 5.4): many identities showing sparse AU
combinations with exact labels, rendered under varied poses, lights, skin tones and backgrounds.

`run_augment` is the job behind `talkface augment`; see docs/augment.md for the layout and labels.
"""

from .identities import AUBlendSetSource, CharacterSource, FaceIdentity, FlameSource, MeshSource, aublendset_paths
from .job import LABEL_COLUMNS, AugmentOptions, AugmentResult, run_augment
from .plan import Views
from .prior import OCCURRENCE_THRESHOLD, TARGET_AUS, AUPrior, occurrence

__all__ = [
    "AUBlendSetSource", "AUPrior", "AugmentOptions", "AugmentResult", "CharacterSource", "FaceIdentity", "FlameSource",
    "LABEL_COLUMNS", "MeshSource", "OCCURRENCE_THRESHOLD", "TARGET_AUS", "Views", "aublendset_paths", "occurrence",
    "run_augment",
]
