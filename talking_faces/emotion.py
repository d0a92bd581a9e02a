"""Emotion specs: from the `--emotion` string to AU weights `w (T, 32)`.

The grammar is `SPEC_GRAMMAR`, shown by `talkface render --help`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np

from .aus import AU_INDEX, AU_NAMES, EMOTION_AUS, EMOTIONS, NUM_AUS, emotion_weights
from .errors import TalkingFacesError

EMOTION_ALIASES = {"happiness": "happy", "joy": "happy", "sadness": "sad", "surprised": "surprise",
                   "fearful": "fear", "anger": "angry", "disgusted": "disgust"}
SPEC_GRAMMAR = """Grammar (whitespace is ignored):

    spec      := keyframe ("," keyframe)*
    keyframe  := mixture ["@" seconds]
    mixture   := term ("+" term)*
    term      := name [":" intensity]
    name      := neutral | happy | sad | surprise | fear | angry | disgust
                 | contempt | AU<n>

- `happy:0.7`: a preset emotion (EMFACS) at an intensity in [0, 1]
  (default 1).
- `happy:0.5+surprise:0.3`: weights add, AU by AU.
- `AU12:0.8+AU6:0.4`: raw action units, in any mix with presets.
- `neutral@0,happy:0.8@1.5,sad:0.6@4`: keyframes at times in seconds.
  Weights ease between consecutive keyframes with a smoothstep, and hold
  before the first and after the last. A single term without `@` is
  constant over the whole clip.
"""
_NUMBER = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class Keyframe:
    """AU weights `(32,)` that hold at `time` seconds."""

    time: float
    weights: np.ndarray


@dataclass(frozen=True)
class EmotionTrack:
    """A parsed emotion spec: one or more keyframes, sorted by time."""

    keyframes: tuple[Keyframe, ...]
    spec: str = ""

    def weights(self, num_frames: int, fps: float) -> np.ndarray:
        """AU weights of every frame, `(T, 32)` float32; frame t sits at t / fps seconds."""
        times = np.arange(num_frames, dtype=np.float64) / fps
        keys = self.keyframes
        if len(keys) == 1:
            return np.repeat(keys[0].weights[None], num_frames, axis=0).astype(np.float32)
        key_times = np.array([k.time for k in keys])
        key_weights = np.stack([k.weights for k in keys])
        seg = np.clip(np.searchsorted(key_times, times, side="right") - 1, 0, len(keys) - 2)
        span = key_times[seg + 1] - key_times[seg]
        u = np.clip((times - key_times[seg]) / span, 0.0, 1.0)
        u = u * u * (3.0 - 2.0 * u)  # smoothstep: zero velocity at every keyframe
        out = key_weights[seg] + u[:, None] * (key_weights[seg + 1] - key_weights[seg])
        return out.astype(np.float32)


def _suggest(name: str) -> str:
    choices = list(EMOTIONS) + list(AU_NAMES)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.4) or difflib.get_close_matches(
        name.upper(), list(AU_NAMES), n=1, cutoff=0.4
    )
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}Valid names: {', '.join(EMOTIONS)}, or AU1..AU64 from {', '.join(AU_NAMES)}."


def _parse_number(text: str, what: str, spec: str) -> float:
    if not _NUMBER.match(text):
        raise TalkingFacesError(f"Bad {what} {text!r} in emotion spec {spec!r}; write a number such as 0.7.")
    return float(text)


def _parse_term(term: str, spec: str) -> np.ndarray:
    name, sep, value = term.partition(":")
    if not name:
        raise TalkingFacesError(f"Empty name in emotion spec {spec!r}; write terms like happy:0.7 or AU12:0.5.")
    intensity = _parse_number(value, "intensity", spec) if sep else 1.0
    if not 0.0 <= intensity <= 1.0:
        raise TalkingFacesError(f"Intensity {value} in emotion spec {spec!r} is outside [0, 1]; use a value such as 0.7.")
    weights = np.zeros(NUM_AUS, dtype=np.float64)
    key = name.lower()
    key = EMOTION_ALIASES.get(key, key)
    if key in EMOTION_AUS:
        for k, w in emotion_weights(key, intensity).items():
            weights[k] += w
        return weights
    au = name.upper()
    au = au if au.startswith("AU") else "AU" + au
    if au in AU_INDEX and re.fullmatch(r"AU\d+[LR]?", au):
        weights[AU_INDEX[au]] = intensity
        return weights
    raise TalkingFacesError(f"Unknown emotion or AU {name!r} in {spec!r}; {_suggest(name)}")


def parse_emotion(spec: str) -> EmotionTrack:
    """Parse an `--emotion` string into an EmotionTrack (see the module docstring for the grammar)."""
    text = re.sub(r"\s+", "", spec or "")
    if not text:
        raise TalkingFacesError("Empty emotion spec; use e.g. neutral, happy:0.7 or neutral@0,happy:0.8@1.5.")
    parts = text.split(",")
    keyframes = []
    for part in parts:
        mixture, at, time_text = part.partition("@")
        if not mixture:
            raise TalkingFacesError(f"Empty keyframe in emotion spec {spec!r}; write e.g. neutral@0,happy:0.8@1.5.")
        if len(parts) > 1 and not at:
            raise TalkingFacesError(f"Keyframe {part!r} in {spec!r} has no time; give every keyframe one, as in happy:0.8@1.5.")
        time = _parse_number(time_text, "keyframe time", spec) if at else 0.0
        weights = sum((_parse_term(t, spec) for t in mixture.split("+")), np.zeros(NUM_AUS))
        keyframes.append(Keyframe(time, weights.astype(np.float32)))
    times = [k.time for k in keyframes]
    if any(b <= a for a, b in zip(times, times[1:])):
        raise TalkingFacesError(f"Keyframe times in {spec!r} must increase strictly, got {times}.")
    return EmotionTrack(tuple(keyframes), spec)
