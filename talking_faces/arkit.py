"""ARKit's 52 blendshapes built from an identity's 32 AU bases by a FACS table, and AU -> ARKit curves.

Each ARKit shape is a sum of AU fields (`ARKIT_FACS`), restricted to one side of the face for the
Left/Right shapes by a smooth mask across the symmetry plane (`side_masks`: a smoothstep 0.25 eye
distances wide each side, so the left and right masks sum to exactly 1 and a pair adds up to the
bilateral AU). ARKit's left and right are the subject's, as in the project's AU30L and AU61.

The table follows the FACS descriptions of the AUs and Apple's descriptions of the shapes
(ARFaceAnchor.BlendShapeLocation); where ARKit has a shape no AU describes, the approximation is
noted. AU11, AU23, AU25 and AU27 have no ARKit shape of their own; ARKit curves made from AU weights
express them through the nearest shapes (`AU_WITHOUT_SHAPE`, see `arkit_weights`).
"""

from __future__ import annotations

import numpy as np

from .aus import AU_INDEX
from .head_landmarks import HeadAnalysis
from .identity import Identity
from .rig import TARGET_MAX_MM, smoothstep

# Apple's order (ARFaceAnchor.BlendShapeLocation, alphabetical).
ARKIT_NAMES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight", "tongueOut",
)
NUM_ARKIT = len(ARKIT_NAMES)

JAW_OPEN_GAIN = TARGET_MAX_MM["AU27"] / TARGET_MAX_MM["AU26"]  # 3.02
# ARKit shape -> (AU terms {AU: gain}, region). Regions: "l"/"r" one side of the face, "upper"/"lower"
# one lip, "lips" the lower lip round the mouth, None the whole field.
ARKIT_FACS: dict[str, tuple[dict[str, float], str | None]] = {
    "browDownLeft": ({"AU4": 1.0}, "l"), "browDownRight": ({"AU4": 1.0}, "r"),
    "browInnerUp": ({"AU1": 1.0}, None),
    "browOuterUpLeft": ({"AU2": 1.0}, "l"), "browOuterUpRight": ({"AU2": 1.0}, "r"),
    "cheekPuff": ({"AU33": 1.0}, None),
    "cheekSquintLeft": ({"AU6": 1.0}, "l"), "cheekSquintRight": ({"AU6": 1.0}, "r"),
    "eyeBlinkLeft": ({"AU45": 1.0}, "l"), "eyeBlinkRight": ({"AU45": 1.0}, "r"),
    "eyeLookDownLeft": ({"AU64": 1.0}, "l"), "eyeLookDownRight": ({"AU64": 1.0}, "r"),
    # In = towards the nose: the left eye turns to the subject's right (AU62), the right eye to the left (AU61).
    "eyeLookInLeft": ({"AU62": 1.0}, "l"), "eyeLookInRight": ({"AU61": 1.0}, "r"),
    "eyeLookOutLeft": ({"AU61": 1.0}, "l"), "eyeLookOutRight": ({"AU62": 1.0}, "r"),
    "eyeLookUpLeft": ({"AU63": 1.0}, "l"), "eyeLookUpRight": ({"AU63": 1.0}, "r"),
    "eyeSquintLeft": ({"AU7": 1.0}, "l"), "eyeSquintRight": ({"AU7": 1.0}, "r"),
    "eyeWideLeft": ({"AU5": 1.0}, "l"), "eyeWideRight": ({"AU5": 1.0}, "r"),
    "jawForward": ({"AU29": 1.0}, None),
    "jawLeft": ({"AU30L": 1.0}, None), "jawRight": ({"AU30R": 1.0}, None),
    # ARKit's jawOpen at 1 is the jaw fully open: the jaw drop (AU26) scaled to AU27's travel (35 mm at the
    # chin), so speech's jaw drops map onto jawOpen alone (a rotation to 35 mm would need jawForward to fit them).
    "jawOpen": ({"AU26": JAW_OPEN_GAIN}, None),
    # Lips closed over an open jaw: the lower lip carried back up by the jaw's travel (ARKit pairs it with jawOpen).
    "mouthClose": ({"AU26": -JAW_OPEN_GAIN}, "lips"),
    "mouthDimpleLeft": ({"AU14": 1.0}, "l"), "mouthDimpleRight": ({"AU14": 1.0}, "r"),
    "mouthFrownLeft": ({"AU15": 1.0}, "l"), "mouthFrownRight": ({"AU15": 1.0}, "r"),
    "mouthFunnel": ({"AU22": 1.0}, None),
    # Both lips to one side has no AU: approximated by the jaw's sideways shift, round the mouth only.
    "mouthLeft": ({"AU30L": 1.0}, "lips"), "mouthRight": ({"AU30R": 1.0}, "lips"),
    "mouthLowerDownLeft": ({"AU16": 1.0}, "l"), "mouthLowerDownRight": ({"AU16": 1.0}, "r"),
    "mouthPressLeft": ({"AU24": 1.0}, "l"), "mouthPressRight": ({"AU24": 1.0}, "r"),
    "mouthPucker": ({"AU18": 1.0}, None),
    "mouthRollLower": ({"AU28": 1.0}, "lower"), "mouthRollUpper": ({"AU28": 1.0}, "upper"),
    "mouthShrugLower": ({"AU17": 1.0}, None),
    # The upper lip pushed up and out (its share of a chin raise): AU10 at half strength with a pout.
    "mouthShrugUpper": ({"AU10": 0.5, "AU22": 0.3}, "upper"),
    "mouthSmileLeft": ({"AU12": 1.0}, "l"), "mouthSmileRight": ({"AU12": 1.0}, "r"),
    "mouthStretchLeft": ({"AU20": 1.0}, "l"), "mouthStretchRight": ({"AU20": 1.0}, "r"),
    "mouthUpperUpLeft": ({"AU10": 1.0}, "l"), "mouthUpperUpRight": ({"AU10": 1.0}, "r"),
    "noseSneerLeft": ({"AU9": 1.0}, "l"), "noseSneerRight": ({"AU9": 1.0}, "r"),
    "tongueOut": ({}, "tongue"),  # AU19 is not among the 32: parts named "tongue" slide forward
}
# AUs no ARKit shape is made of, expressed through the nearest shapes (FACS: what the muscle does to the lips).
AU_WITHOUT_SHAPE: dict[str, dict[str, float]] = {
    "AU11": {"mouthUpperUpLeft": 0.3, "mouthUpperUpRight": 0.3},  # skin beside the upper lip pulled up
    "AU23": {"mouthRollLower": 0.4, "mouthRollUpper": 0.4, "mouthPucker": 0.3},  # red lips thinned and narrowed
    "AU25": {"mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3, "mouthUpperUpLeft": 0.15, "mouthUpperUpRight": 0.15},
    "AU27": {"jawOpen": 1.0},  # the jaw fully open
}
SIDE_MASK_WIDTH = 0.25  # eye distances either side of the symmetry plane
TONGUE_OUT = 0.3  # eye distances the tongue slides forward


def side_masks(canonical: np.ndarray, analysis: HeadAnalysis) -> dict[str, np.ndarray]:
    """Region weights `(V,)` of canonical points `(V, 3)`: "l"/"r" sides (summing to 1), "upper"/"lower" lips, "lips"."""
    lm = analysis.landmarks
    distance = lm.eye_distance
    left = smoothstep(-SIDE_MASK_WIDTH * distance, SIDE_MASK_WIDTH * distance, canonical[:, 0] - lm.symmetry_x)
    mouth = 0.5 * (lm.points["upper_lip_centre"] + lm.points["lower_lip_centre"])
    upper = smoothstep(-0.03 * distance, 0.03 * distance, canonical[:, 1] - mouth[1])
    near = np.clip(1.0 - (np.linalg.norm(canonical - mouth, axis=1) / (0.7 * distance)) ** 2, 0.0, None) ** 2
    return {"l": left, "r": 1.0 - left, "upper": upper, "lower": 1.0 - upper, "lips": near * (1.0 - upper)}


def arkit_shapes(identity: Identity, au_offsets: np.ndarray, analysis: HeadAnalysis) -> np.ndarray:
    """The 52 ARKit blendshape offsets `(52, V, 3)` float32, in the identity's units and axes.

    Args:
        identity: the neutral head.
        au_offsets: `(32, V, 3)` its AU basis, in the same frame.
        analysis: its frame and landmarks (`rig.analyse_identity`).
    """
    canonical = analysis.frame.to_canonical(identity.vertices)
    masks = side_masks(canonical, analysis)
    tongue = np.zeros(identity.num_vertices)
    for name, idx in identity.parts.items():
        if "tongue" in name.lower():
            tongue[idx] = 1.0
    forward = analysis.frame.to_user(np.array([0.0, 0.0, TONGUE_OUT * analysis.landmarks.eye_distance]))
    shapes = np.zeros((NUM_ARKIT,) + au_offsets.shape[1:], dtype=np.float64)
    for j, name in enumerate(ARKIT_NAMES):
        terms, region = ARKIT_FACS[name]
        for au, gain in terms.items():
            shapes[j] += gain * au_offsets[AU_INDEX[au]]
        if region == "tongue":
            shapes[j] = tongue[:, None] * forward
        elif region is not None:
            shapes[j] *= masks[region][:, None]
    return shapes.astype(np.float32)


def au_to_arkit_matrix() -> np.ndarray:
    """The linear map `(32, 52)` from AU weights to ARKit weights (before clipping to [0, 1]).

    AUs that make up ARKit shapes alone invert the table exactly: a shape `{AU: g}` over a region
    that partitions the face with its partners (left/right, upper/lower lip, or the whole face)
    gets weight 1/g per unit of the AU, so `mouthSmileLeft = mouthSmileRight = w[AU12]` and
    `jawOpen = w[AU26] / 3.02`. AUs without such a shape use `AU_WITHOUT_SHAPE`.
    """
    matrix = np.zeros((len(AU_INDEX), NUM_ARKIT))
    for j, name in enumerate(ARKIT_NAMES):
        terms, region = ARKIT_FACS[name]
        if len(terms) == 1 and region in (None, "l", "r", "upper", "lower"):
            (au, gain), = terms.items()
            matrix[AU_INDEX[au], j] = 1.0 / gain
    for au, row in AU_WITHOUT_SHAPE.items():
        for name, weight in row.items():
            matrix[AU_INDEX[au], ARKIT_NAMES.index(name)] = weight
    return matrix


def arkit_weights(au_weights: np.ndarray, au_offsets: np.ndarray, shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ARKit curves `(T, 52)` in [0, 1] from AU weights `(T, 32)`, and how far they are from the AU animation.

    The curves are `clip(au_weights @ au_to_arkit_matrix(), 0, 1)`: linear, so an ARKit rig follows
    the AU curves frame by frame. The residual `(T,)` is the RMS per-vertex distance, in mesh units,
    between the ARKit `shapes (52, V, 3)` driven by the curves and the AU basis `(32, V, 3)` driven by
    the weights (zero but for AU11, AU23, AU25 and AU27, and for weights clipped at 1).
    """
    weights = np.asarray(au_weights, dtype=np.float64)
    curves = np.clip(weights @ au_to_arkit_matrix(), 0.0, 1.0)
    flat_shapes = shapes.reshape(len(shapes), -1).astype(np.float64)
    flat_aus = au_offsets.reshape(len(au_offsets), -1).astype(np.float64)
    gram = np.block([[flat_shapes @ flat_shapes.T, -flat_shapes @ flat_aus.T], [-flat_aus @ flat_shapes.T, flat_aus @ flat_aus.T]])
    both = np.concatenate([curves, weights], axis=1)
    squared = np.einsum("ti,ij,tj->t", both, gram, both)
    return curves.astype(np.float32), np.sqrt(np.clip(squared, 0.0, None) / au_offsets.shape[1])
