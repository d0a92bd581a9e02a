"""The sparse AU prior of `talkface augment`: which AUs a sample shows, and how strongly.

A sample is drawn from one of four components (probabilities in `AUPrior.components`):

- `neutral`: no AU;
- `emotion`: one EMFACS prototype (`talking_faces.aus.EMOTION_AUS`, the seven non-neutral emotions,
  uniformly), its AUs at one shared FACS intensity level with a little jitter per AU;
- `cooccurrence`: one group (two with probability `second_group`) of `COOCCURRENCES`, AUs that FACS
  coders see together, again at one shared level;
- `single`: one to three independent AUs drawn without replacement from all 32, the eight AUs of the
  paper's Table 5 (`TARGET_AUS`) `target_boost` times as likely as the others, each at its own level.

An emotion or co-occurrence sample gets one extra independent AU with probability `extra_single`.
Draws that hold an `EXCLUDED` pair are redrawn whole (rejection), so every sample is physically
possible and the other combinations keep their relative frequencies.

Intensities follow the FACS A-E scale: a level is drawn uniformly from A..E and the weight uniformly
within its band (`LEVELS`); weights are rounded to `DECIMALS` so the labels file holds them exactly.
An AU counts as present (`AU<n>_on = 1`) from level B up, weight >= `OCCURRENCE_THRESHOLD` (as
DISFA codes occurrence from intensity 2 of 5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from talking_faces.aus import AU_INDEX, AU_NAMES, EMOTION_AUS, EXPRESSIVE_EMOTIONS, NUM_AUS

TARGET_AUS: tuple[str, ...] = ("AU1", "AU2", "AU4", "AU6", "AU9", "AU12", "AU25", "AU26")
# FACS intensity levels A (trace) .. E (maximum) as weight bands [low, high).
LEVELS: dict[str, tuple[float, float]] = {"A": (0.05, 0.2), "B": (0.2, 0.4), "C": (0.4, 0.6), "D": (0.6, 0.8), "E": (0.8, 1.0)}
OCCURRENCE_THRESHOLD = 0.2  # the bottom of level B
DECIMALS = 4
# Groups FACS coders see together: brow raise, sadness/fear brows, frowns, the Duchenne smile, the
# disgust and pain groups, smiles and jaw drops with parted lips, chin and lip pressing, surprise.
COOCCURRENCES: tuple[tuple[str, ...], ...] = (
    ("AU1", "AU2"), ("AU1", "AU4"), ("AU4", "AU7"), ("AU4", "AU9"), ("AU6", "AU12"), ("AU6", "AU7"),
    ("AU9", "AU10"), ("AU12", "AU25"), ("AU25", "AU26"), ("AU25", "AU27"), ("AU17", "AU24"),
    ("AU15", "AU17"), ("AU20", "AU25"), ("AU10", "AU25"), ("AU23", "AU24"), ("AU1", "AU2", "AU5"),
    ("AU6", "AU12", "AU25"), ("AU4", "AU6", "AU9"), ("AU6", "AU9"), ("AU9", "AU10", "AU25"), ("AU1", "AU2", "AU25", "AU26"), ("AU12", "AU25", "AU26"),
)
# Combinations that contradict each other physically.
EXCLUDED: tuple[tuple[str, str], ...] = (
    ("AU24", "AU25"), ("AU24", "AU26"), ("AU24", "AU27"),  # lips pressed together vs. parted / jaw dropped
    ("AU26", "AU27"),  # two degrees of one jaw opening: FACS codes one of them
    ("AU30L", "AU30R"), ("AU61", "AU62"), ("AU63", "AU64"),  # opposite directions
    ("AU5", "AU45"),  # upper lid raised vs. eyes closed
    ("AU18", "AU20"),  # lips pushed forward vs. stretched sideways
)


@dataclass(frozen=True)
class AUPrior:
    """The mixture described in the module docstring; `describe()` is what manifest.json records."""

    components: dict[str, float] = field(
        default_factory=lambda: {"neutral": 0.04, "emotion": 0.30, "cooccurrence": 0.36, "single": 0.30})
    emotions: tuple[str, ...] = EXPRESSIVE_EMOTIONS
    groups: tuple[tuple[str, ...], ...] = COOCCURRENCES
    second_group: float = 0.3
    extra_single: float = 0.25
    target_boost: float = 6.0
    level_jitter: float = 0.08  # per-AU spread round a shared level's weight

    @classmethod
    def emotions_only(cls) -> AUPrior:
        """Only the EMFACS prototypes, no extra AUs: the 'annotated' set of the detection benchmark."""
        return cls(components={"emotion": 1.0}, extra_single=0.0)

    def describe(self) -> dict:
        return {**asdict(self), "levels": LEVELS, "occurrence_threshold": OCCURRENCE_THRESHOLD,
                "excluded": EXCLUDED, "target_aus": TARGET_AUS, "decimals": DECIMALS}

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """AU weights `(32,)` float32 in AUBlendSet order, free of `EXCLUDED` pairs."""
        names, probabilities = zip(*self.components.items())
        probabilities = np.asarray(probabilities, dtype=np.float64)
        while True:
            component = names[rng.choice(len(names), p=probabilities / probabilities.sum())]
            weights = getattr(self, f"_draw_{component}")(rng)
            if component in ("emotion", "cooccurrence") and rng.random() < self.extra_single:
                self._add_singles(rng, weights, 1)
            if not any(weights[AU_INDEX[a]] > 0 and weights[AU_INDEX[b]] > 0 for a, b in EXCLUDED):
                return np.round(weights, DECIMALS).astype(np.float32)

    def _level_weight(self, rng: np.random.Generator) -> float:
        low, high = LEVELS["ABCDE"[rng.integers(5)]]
        return float(rng.uniform(low, high))

    def _shared_level(self, rng: np.random.Generator, aus: dict[str, float], weights: np.ndarray) -> None:
        """Set `aus` (AU -> relative weight, e.g. contempt's half AU12) at one shared level, jittered per AU,
        within [0.05, 1]."""
        level = self._level_weight(rng)
        for au, scale in aus.items():
            jitter = rng.uniform(-self.level_jitter, self.level_jitter)
            weights[AU_INDEX[au]] = max(weights[AU_INDEX[au]], float(np.clip(level * scale + jitter, LEVELS["A"][0], 1.0)))

    def _draw_neutral(self, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(NUM_AUS)

    def _draw_emotion(self, rng: np.random.Generator) -> np.ndarray:
        weights = np.zeros(NUM_AUS)
        self._shared_level(rng, EMOTION_AUS[self.emotions[rng.integers(len(self.emotions))]], weights)
        return weights

    def _draw_cooccurrence(self, rng: np.random.Generator) -> np.ndarray:
        weights = np.zeros(NUM_AUS)
        count = 2 if rng.random() < self.second_group else 1
        for group in rng.choice(len(self.groups), size=count, replace=False):
            self._shared_level(rng, dict.fromkeys(self.groups[group], 1.0), weights)
        return weights

    def _draw_single(self, rng: np.random.Generator) -> np.ndarray:
        weights = np.zeros(NUM_AUS)
        self._add_singles(rng, weights, 1 + int(rng.integers(3)))
        return weights

    def _add_singles(self, rng: np.random.Generator, weights: np.ndarray, count: int) -> None:
        preference = np.array([self.target_boost if au in TARGET_AUS else 1.0 for au in AU_NAMES])
        free = weights == 0
        chosen = rng.choice(NUM_AUS, size=min(count, int(free.sum())), replace=False,
                            p=preference * free / (preference * free).sum())
        for k in chosen:
            weights[k] = self._level_weight(rng)


def occurrence(weights: np.ndarray) -> np.ndarray:
    """0/1 occurrence labels `(..., 32)` int of AU weights `(..., 32)`: weight >= OCCURRENCE_THRESHOLD."""
    return (np.asarray(weights) >= OCCURRENCE_THRESHOLD).astype(np.int64)
