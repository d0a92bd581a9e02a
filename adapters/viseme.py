"""The default speech adapter: phonemes -> visemes -> lip AU weights on the identity's own basis.

Per frame t (at `fps`), with the phones from `phonemes.py`:

    w_speech[t] = coarticulate(visemes)[t]            # dominance-weighted blend of viseme AU targets
    w_speech[t, opening] *= loudness[t] * (1 - closure[t])
    w_speech[t, AU24]     = max(w_speech[t, AU24], closure[t] * pressor)
    w_speech[t]          *= activity[t]                # exactly 0 before the first phone and after the last
    Offset_spe = blend(w_speech, basis.offsets)

See docs/viseme.md for the tables and the reasons behind the constants.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from talking_faces.audio import SAMPLE_RATE
from talking_faces.aus import AU_INDEX, AU_NAMES, NUM_AUS
from talking_faces.errors import TalkingFacesError
from talking_faces.audio import num_output_frames

from .base import SpeechAdapter, SpeechOutput, SpeechRequest
from .phonemes import BILABIALS, SILENCE, STOP_GAP_S, Phone, PhonemeRecognizer, allow_word_helper, make_decoders_ahead

if TYPE_CHECKING:
    import torch

# The 15 visemes of the MPEG-4 / Oculus set, as lip AU weights in [0, 1].
VISEME_AUS: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"AU24": 1.0, "AU17": 0.2},  # lips pressed shut: AU24 at full weight is the closed, pressed mouth
    "FF": {"AU28": 0.35, "AU10": 0.25, "AU25": 0.2, "AU26": 0.05},  # lower lip under the upper teeth
    "TH": {"AU25": 0.4, "AU26": 0.15},
    "DD": {"AU25": 0.35, "AU26": 0.2},
    "kk": {"AU25": 0.4, "AU26": 0.3},
    "CH": {"AU22": 0.6, "AU25": 0.35, "AU26": 0.1, "AU10": 0.15},
    "SS": {"AU20": 0.35, "AU25": 0.3, "AU26": 0.05},
    "nn": {"AU25": 0.3, "AU26": 0.2},
    "RR": {"AU22": 0.3, "AU18": 0.2, "AU25": 0.3, "AU26": 0.15},
    "aa": {"AU26": 0.8, "AU25": 0.8, "AU16": 0.2},
    "E": {"AU25": 0.6, "AU26": 0.45, "AU20": 0.3},
    "ih": {"AU25": 0.45, "AU26": 0.25, "AU20": 0.35},
    "oh": {"AU25": 0.6, "AU26": 0.55, "AU22": 0.4, "AU18": 0.15},
    "ou": {"AU18": 0.6, "AU22": 0.3, "AU25": 0.3, "AU26": 0.15},
}

# ARPAbet -> visemes. Diphthongs move between two visemes over their two halves.
PHONE_VISEMES: dict[str, tuple[str, ...]] = {
    SILENCE: ("sil",),
    "P": ("PP",), "B": ("PP",), "M": ("PP",),
    "F": ("FF",), "V": ("FF",),
    "TH": ("TH",), "DH": ("TH",),
    "T": ("DD",), "D": ("DD",),
    "K": ("kk",), "G": ("kk",), "NG": ("kk",), "HH": ("kk",),
    "CH": ("CH",), "JH": ("CH",), "SH": ("CH",), "ZH": ("CH",),
    "S": ("SS",), "Z": ("SS",),
    "N": ("nn",), "L": ("nn",),
    "R": ("RR",), "ER": ("RR",),
    "AA": ("aa",), "AE": ("aa",), "AH": ("aa",),
    "EH": ("E",),
    "IH": ("ih",), "IY": ("ih",), "Y": ("ih",),
    "AO": ("oh",),
    "UH": ("ou",), "UW": ("ou",), "W": ("ou",),
    "AW": ("aa", "ou"), "AY": ("aa", "ih"), "EY": ("E", "ih"), "OW": ("oh", "ou"), "OY": ("oh", "ih"),
}

# Dominance (Cohen & Massaro 1993, measured from the segment's edges): strength, and the time
# constants in seconds before the segment (anticipation) and after it (carry-over).
_VOWEL, _CONSONANT = (1.0, 0.05, 0.04), (0.5, 0.04, 0.03)
DOMINANCE: dict[str, tuple[float, float, float]] = {
    "sil": (1.0, 0.04, 0.04),
    "PP": (2.0, 0.025, 0.02),  # short reach, strong: the lips must meet
    "FF": (1.5, 0.03, 0.025),
    "CH": (1.0, 0.06, 0.04),
    "SS": (0.8, 0.04, 0.03),
    "ou": (1.2, 0.12, 0.05),  # lip rounding is anticipated across consonants
    "oh": (1.0, 0.09, 0.05),
    **dict.fromkeys(("TH", "DD", "kk", "nn", "RR"), _CONSONANT),
    **dict.fromkeys(("aa", "E", "ih"), _VOWEL),
}
DOMINANCE_REACH = 6.0  # time constants after which a dominance (exp(-6) = 0.25%) is dropped

OPENING_AUS: tuple[str, ...] = ("AU16", "AU25", "AU26")  # scaled by loudness, zeroed at bilabials
CLOSURE_RAMP_S = 0.04  # raised-cosine ramp around a bilabial's closed stretch
ONSET_S = 0.08  # weights fade in over the 80 ms before a stretch of speech (natural anticipation) ...
RELEASE_S = 0.08  # ... and out over the 80 ms after it
PAUSE_S = STOP_GAP_S[1]  # silences longer than a stop closure are pauses: the lips go back to rest

LOUDNESS_WINDOW_S = 0.06  # RMS box window, centred on each 10 ms step
LOUDNESS_RANGE_DB = 30.0  # opening goes from 0 at ref - 30 dB to 1 at the clip's reference level
LOUDNESS_FLOOR = 1e-3  # RMS below -60 dBFS is silence whatever the clip's level
LOUDNESS_REFERENCE_PERCENTILE = 95.0
LOUDNESS_STEP_S = 0.01

_TARGETS = {
    name: np.array([aus.get(au, 0.0) for au in AU_NAMES], dtype=np.float64)
    for name, aus in VISEME_AUS.items()
}
_OPENING = [AU_INDEX[au] for au in OPENING_AUS]
_PRESSOR = AU_INDEX["AU24"]


def frame_times(num_samples: int, fps: float) -> np.ndarray:
    """`(T,)` times k / fps of the frames that cover `num_samples` at 16 kHz: T = round(duration * fps), >= 1."""
    return np.arange(num_output_frames(num_samples, fps)) / fps


def loudness(audio: np.ndarray) -> np.ndarray:
    """Gated, clip-normalised loudness in [0, 1] every 10 ms (at t = j * 0.01 s).

    RMS over a 60 ms box window, in dB relative to the clip's 95th-percentile level; 0 at 30 dB
    below that level and under -60 dBFS, so silence gives exactly 0.

    Args:
        audio: `(N,)` float32 at 16 kHz.
    Returns:
        `(J,)` float64, J = floor(N / 160) + 1.
    """
    hop = int(SAMPLE_RATE * LOUDNESS_STEP_S)
    half = int(SAMPLE_RATE * LOUDNESS_WINDOW_S / 2)  # 3 hops: window edges fall on hop boundaries
    n = audio.shape[0]
    power = np.concatenate([[0.0], np.cumsum(_hop_energy(audio, hop))])  # power[j] = energy of audio[:min(j * hop, n)]
    centres = np.arange(n // hop + 1) * hop
    lo, hi = np.clip(centres - half, 0, n), np.clip(centres + half, 0, n)
    rms = np.sqrt(np.maximum(power[-(-hi // hop)] - power[-(-lo // hop)], 0.0) / np.maximum(hi - lo, 1))
    audible = rms > LOUDNESS_FLOOR
    if not audible.any():
        return np.zeros_like(rms)
    level_db = 20.0 * np.log10(np.maximum(rms, LOUDNESS_FLOOR))
    reference_db = np.percentile(level_db[audible], LOUDNESS_REFERENCE_PERCENTILE)
    gain = np.clip((level_db - reference_db) / LOUDNESS_RANGE_DB + 1.0, 0.0, 1.0)
    return np.where(audible, gain, 0.0)


def _hop_energy(audio: np.ndarray, hop: int, block: int = 4096) -> np.ndarray:
    """`(ceil(N / hop),)` float64 sums of squares of each hop of samples (the last may be short).

    Computed a block of hops at a time, so a long clip needs no float64 copy of its samples.
    """
    n = audio.shape[0]
    energy = np.empty(-(-n // hop))
    for start in range(0, n, block * hop):
        piece = audio[start : start + block * hop].astype(np.float64)
        full = piece.shape[0] // hop
        first = start // hop
        energy[first : first + full] = np.square(piece[: full * hop].reshape(full, hop)).sum(axis=1)
        if piece.shape[0] % hop:
            energy[first + full] = np.square(piece[full * hop :]).sum()
    return energy


def silence_inaudible(phones: list[Phone], level: np.ndarray) -> list[Phone]:
    """Relabel as SIL every phone with no step above the noise gate: recognisers hear phones in noise.

    Bilabials next to an audible phone are kept: a stop's closure is silent by nature.
    """
    steps = level.shape[0]

    def audible(start: float, end: float) -> bool:
        span = level[min(int(start / LOUDNESS_STEP_S), steps - 1) : max(int(np.ceil(end / LOUDNESS_STEP_S)), 1)]
        return bool(span.max(initial=0.0) > 0.0)

    heard = [name != SILENCE and audible(start, end) for name, start, end in phones]
    out = []
    for k, (name, start, end) in enumerate(phones):
        next_to_speech = (k > 0 and heard[k - 1]) or (k + 1 < len(phones) and heard[k + 1])
        keep = heard[k] or (name in BILABIALS and next_to_speech)
        out.append((name if keep else SILENCE, start, end))
    return out


def viseme_segments(phones: list[Phone]) -> list[tuple[str, float, float]]:
    """Phones -> `(viseme, start_s, end_s)`, splitting diphthongs into two equal halves."""
    segments = []
    for name, start, end in phones:
        visemes = PHONE_VISEMES[name]
        step = (end - start) / len(visemes)
        segments.extend((v, start + k * step, start + (k + 1) * step) for k, v in enumerate(visemes))
    return segments


def coarticulate(segments: list[tuple[str, float, float]], times: np.ndarray) -> np.ndarray:
    """Dominance-weighted blend of viseme targets: w(t) = sum_i D_i(t) T_i / sum_i D_i(t).

    D_i(t) = strength * exp(-d / tau), with d the distance from t to segment i (0 inside it) and
    tau the anticipation constant before the segment, the carry-over constant after it.

    Returns:
        `(T, 32)` AU weights at `times`.
    """
    numerator = np.zeros((times.shape[0], NUM_AUS))
    denominator = np.zeros(times.shape[0])
    for viseme, start, end in segments:
        strength, anticipation, carry = DOMINANCE[viseme]
        lo = np.searchsorted(times, start - DOMINANCE_REACH * anticipation)
        hi = np.searchsorted(times, end + DOMINANCE_REACH * carry, side="right")
        t = times[lo:hi]
        distance = np.where(t < start, (start - t) / anticipation, np.maximum(t - end, 0.0) / carry)
        dominance = strength * np.exp(-distance)
        numerator[lo:hi] += dominance[:, None] * _TARGETS[viseme]
        denominator[lo:hi] += dominance
    return numerator / np.maximum(denominator, 1e-12)[:, None]


def bilabial_closure(segments: list[tuple[str, float, float]], times: np.ndarray, fps: float) -> np.ndarray:
    """`(T,)` in [0, 1]: 1 over each bilabial (at least one frame wide), raised-cosine ramps around it."""
    closure = np.zeros(times.shape[0])
    for viseme, start, end in segments:
        if viseme != "PP":
            continue
        centre, half = (start + end) / 2, max((end - start) / 2, 0.5 / fps)  # >= 1 frame period: a frame always lands in it
        ramp = np.clip((np.abs(times - centre) - half) / CLOSURE_RAMP_S, 0.0, 1.0)
        closure = np.maximum(closure, 0.5 * (1.0 + np.cos(np.pi * ramp)))
    return closure


def speech_regions(phones: list[Phone]) -> list[tuple[float, float]]:
    """`(start, end)` of the stretches of speech: non-SIL phones, joined across silences shorter than PAUSE_S."""
    regions: list[tuple[float, float]] = []
    for name, start, end in phones:
        if name == SILENCE:
            continue
        if regions and start - regions[-1][1] <= PAUSE_S:
            regions[-1] = (regions[-1][0], end)
        else:
            regions.append((start, end))
    return regions


def activity(phones: list[Phone], times: np.ndarray) -> np.ndarray:
    """`(T,)` in [0, 1]: 1 in speech, fading in over the ONSET_S before each stretch and out over RELEASE_S after it.

    Exactly 0 in pauses of at least ONSET_S + RELEASE_S, so the lips rest there; the fade-in ends
    as the first phone starts, so a bilabial that opens a stretch is fully closed.
    """
    out = np.zeros(times.shape[0])
    for start, end in speech_regions(phones):
        onset = np.clip((times - (start - ONSET_S)) / ONSET_S, 0.0, 1.0)
        release = np.clip(1.0 - (times - end) / RELEASE_S, 0.0, 1.0)
        out = np.maximum(out, np.sin(0.5 * np.pi * np.minimum(onset, release)) ** 2)
    return out


def speech_weights(phones: list[Phone], audio: np.ndarray, fps: float) -> np.ndarray:
    """Per-frame lip AU weights w_speech from phones and the loudness of the audio.

    Args:
        phones: contiguous `(ARPAbet, start_s, end_s)` covering the audio.
        audio: `(N,)` float32 at 16 kHz.
        fps: frame rate of the result.
    Returns:
        `(T, 32)` float32, T = round(N / 16000 * fps) (at least 1).
    """
    times = frame_times(audio.shape[0], fps)
    level = loudness(audio)
    phones = silence_inaudible(phones, level)
    segments = viseme_segments(phones)
    closure = bilabial_closure(segments, times, fps)
    weights = coarticulate(segments, times)
    gain = np.interp(times, np.arange(level.shape[0]) * LOUDNESS_STEP_S, level)
    weights[:, _OPENING] *= (gain * (1.0 - closure))[:, None]
    weights[:, _PRESSOR] = np.maximum(weights[:, _PRESSOR], closure * VISEME_AUS["PP"]["AU24"])
    return (weights * activity(phones, times)[:, None]).astype(np.float32)


class VisemeAdapter(SpeechAdapter):
    """Phonemes (pocketsphinx) -> visemes -> lip AU weights on the identity's basis. Needs no weights.

    It animates at the request's frame rate, so no retiming blurs a bilabial closure between frames.
    """

    name = "viseme"
    accepts = frozenset({"basis", "text", "fps"})
    requires = frozenset({"basis"})
    topology = None
    speaks_apart = True

    def __init__(self, device: torch.device | str = "cpu", phonemes: str | Path | None = None) -> None:
        super().__init__(device)
        ctc = None
        if phonemes is not None:
            from .phoneme_ctc import load_ctc

            ctc = load_ctc(phonemes)
        self.recognizer = PhonemeRecognizer(ctc=ctc)
        self.speaks_apart = ctc is None  # pocketsphinx holds the GIL; a phoneme-CTC model (torch) does not, and is large

    @classmethod
    def from_checkpoint(
        cls, path: str | Path | None, device: torch.device | str = "cpu", phonemes: str | Path | None = None, **options: Any
    ) -> "VisemeAdapter":
        """`phonemes`: a local phoneme-CTC model folder for transcript-free timing (default: pocketsphinx)."""
        if path is not None:
            raise TalkingFacesError(f"The viseme model needs no checkpoint, but got {path}; drop --checkpoint or pick a learned --model.")
        if options:
            raise TalkingFacesError(f"The viseme model takes only the option phonemes, but got {', '.join(sorted(options))}; remove them.")
        return cls(device, phonemes)

    @classmethod
    def warm_up(cls, transcript: bool) -> None:
        """Load pocketsphinx's decoders for the coming request (0.5 s of model loading without a transcript),
        and let long utterances search their words in a second process (`allow_word_helper`): this
        process is a worker whose caller waits, so the other core is free."""
        make_decoders_ahead(transcript)
        allow_word_helper()

    def weights(self, audio: np.ndarray, fps: float, text: str | None = None) -> np.ndarray:
        """`(T, 32)` lip AU weights w_speech at `fps` for `(N,)` 16 kHz audio and an optional transcript."""
        if not loudness(audio).any():  # nothing above the noise gate: a still face, no decoding
            return np.zeros((num_output_frames(audio.shape[0], fps), NUM_AUS), dtype=np.float32)
        return speech_weights(self.recognizer.phonemes(audio, text), audio, fps)

    def speak(self, request: SpeechRequest) -> SpeechOutput:
        """`(1, T, 32)` lip AU weights on the request's basis, at `request.fps`, as numpy (no torch needed)."""
        request.basis.check_matches(request.identity.num_vertices)
        weights = self.weights(request.audio, request.fps, request.text)
        return SpeechOutput(fps=float(request.fps), weights=weights[None])
