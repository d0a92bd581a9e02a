"""The catalogue of the 32 action units in AUBlendSet order, and the EMFACS emotion table.

Index k of every basis, weight vector and AU-indexed array in the project is `AU_NAMES[k]`.
"""

AU_NAMES: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU11", "AU12", "AU14", "AU15",
    "AU16", "AU17", "AU18", "AU20", "AU22", "AU23", "AU24", "AU25", "AU26", "AU27", "AU28", "AU29",
    "AU30L", "AU30R", "AU33", "AU45", "AU61", "AU62", "AU63", "AU64",
)
NUM_AUS = len(AU_NAMES)

AU_DESCRIPTIONS: dict[str, str] = {
    "AU1": "Inner brow raiser", "AU2": "Outer brow raiser", "AU4": "Brow lowerer",
    "AU5": "Upper lid raiser", "AU6": "Cheek raiser", "AU7": "Lid tightener",
    "AU9": "Nose wrinkler", "AU10": "Upper lip raiser", "AU11": "Nasolabial deepener",
    "AU12": "Lip corner puller", "AU14": "Dimpler", "AU15": "Lip corner depressor",
    "AU16": "Lower lip depressor", "AU17": "Chin raiser", "AU18": "Lip pucker",
    "AU20": "Lip stretcher", "AU22": "Lip funneler", "AU23": "Lip tightener",
    "AU24": "Lip pressor", "AU25": "Lips part", "AU26": "Jaw drop", "AU27": "Mouth stretch",
    "AU28": "Lip suck", "AU29": "Jaw thrust", "AU30L": "Jaw sideways, to the subject's left",
    "AU30R": "Jaw sideways, to the subject's right", "AU33": "Cheek blow",
    "AU45": "Blink", "AU61": "Eyes turn left", "AU62": "Eyes turn right",
    "AU63": "Eyes up", "AU64": "Eyes down",
}

# Mirror partners: AU30L <-> AU30R and AU61 <-> AU62. Every other AU is its own mirror.
MIRROR_PAIRS: tuple[tuple[str, str], ...] = (("AU30L", "AU30R"), ("AU61", "AU62"))

# EMFACS (Friesen & Ekman 1983), not the upstream GUI's table, which has mistakes.
# Contempt is R12A+R14A (right side only); the 32 bases have no one-sided AU, so the
# preset approximates it with bilateral AU14 plus AU12 at half weight.
EMOTION_AUS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"AU6": 1.0, "AU12": 1.0},
    "sad": {"AU1": 1.0, "AU4": 1.0, "AU15": 1.0},
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU26": 1.0},
    "fear": {"AU1": 1.0, "AU2": 1.0, "AU4": 1.0, "AU5": 1.0, "AU7": 1.0, "AU20": 1.0, "AU26": 1.0},
    "angry": {"AU4": 1.0, "AU5": 1.0, "AU7": 1.0, "AU23": 1.0},
    "disgust": {"AU9": 1.0, "AU15": 1.0, "AU16": 1.0},
    "contempt": {"AU12": 0.5, "AU14": 1.0},
}
EMOTIONS: tuple[str, ...] = tuple(EMOTION_AUS)
# The seven non-neutral emotions, the conditions of diversity and of MSE_M.
EXPRESSIVE_EMOTIONS: tuple[str, ...] = tuple(e for e in EMOTIONS if e != "neutral")

AU_INDEX: dict[str, int] = {name: k for k, name in enumerate(AU_NAMES)}


def au_index(name: str) -> int:
    """Index of an AU given as `AU12`, `au12` or `12` (`30L`, `AU30R` for the sided ones)."""
    key = name.strip().upper()
    if not key.startswith("AU"):
        key = "AU" + key
    return AU_INDEX[key]


def emotion_weights(emotion: str, intensity: float = 1.0) -> dict[int, float]:
    """AU index -> weight of one preset emotion at an intensity."""
    return {AU_INDEX[au]: w * intensity for au, w in EMOTION_AUS[emotion].items()}
