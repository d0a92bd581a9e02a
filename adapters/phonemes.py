"""Phonemes from speech with pocketsphinx: phone recognition, or forced alignment to a transcript.

Both paths return `Phone` tuples `(ARPAbet phone, start_s, end_s)`, sorted, contiguous from 0 to the
clip's duration, with `SIL` for silence and noise. Nothing is downloaded: the English model ships
inside the pocketsphinx wheel.
"""

from __future__ import annotations

import os
import re

import numpy as np

from talking_faces.audio import SAMPLE_RATE

Phone = tuple[str, float, float]

# The 39 phones of CMUdict and of the pocketsphinx US English model (stress marks dropped).
ARPABET: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH",
    "UH", "UW", "V", "W", "Y", "Z", "ZH",
)
SILENCE = "SIL"
FRAMES_PER_SECOND = 100.0  # pocketsphinx's frame rate
# Alignment fails on long clips with the default beams; see docs/viseme.md.
ALIGN_BEAM = 1e-80
# The default language-model weight (6.5) makes allphone search swallow whole words into SIL;
# 2.0 found 3x more bilabials on the sample speech at the same speed (docs/viseme.md).
ALLPHONE_LM_WEIGHT = 2.0

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Letter-to-sound rules for words the dictionary lacks, longest grapheme first. They are crude,
# but they keep the letters that matter most for the lips (b, m, p, f, v, w, o, u) where they are.
_GRAPHEMES: dict[str, tuple[str, ...]] = {
    "tch": ("CH",), "sch": ("S", "K"), "igh": ("AY",),
    "ch": ("CH",), "sh": ("SH",), "th": ("TH",), "ph": ("F",), "wh": ("W",), "ck": ("K",),
    "ng": ("NG",), "qu": ("K", "W"), "kn": ("N",), "wr": ("R",), "gh": ("G",),
    "ee": ("IY",), "ea": ("IY",), "ie": ("IY",), "oo": ("UW",), "ue": ("UW",), "ew": ("UW",),
    "ou": ("AW",), "ow": ("OW",), "oa": ("OW",), "ai": ("EY",), "ay": ("EY",), "ei": ("EY",),
    "ey": ("EY",), "oi": ("OY",), "oy": ("OY",), "au": ("AO",), "aw": ("AO",),
    "ar": ("AA", "R"), "or": ("AO", "R"), "er": ("ER",), "ir": ("ER",), "ur": ("ER",),
    "a": ("AE",), "b": ("B",), "c": ("K",), "d": ("D",), "e": ("EH",), "f": ("F",), "g": ("G",),
    "h": ("HH",), "i": ("IH",), "j": ("JH",), "k": ("K",), "l": ("L",), "m": ("M",), "n": ("N",),
    "o": ("AA",), "p": ("P",), "q": ("K",), "r": ("R",), "s": ("S",), "t": ("T",), "u": ("AH",),
    "v": ("V",), "w": ("W",), "x": ("K", "S"), "y": ("IY",), "z": ("Z",),
}
_LONGEST_GRAPHEME = max(map(len, _GRAPHEMES))


def spell(word: str) -> list[str]:
    """ARPAbet phones for a lowercase word by letter-to-sound rules (for words not in CMUdict)."""
    letters = re.sub(r"[^a-z]", "", word)
    letters = re.sub(r"([b-df-hj-np-tv-z])\1", r"\1", letters)  # double consonants sound once
    if len(letters) > 2 and letters.endswith("e") and letters[-2] not in "aeiou":
        letters = letters[:-1]  # silent final e
    i = 1 if letters.startswith("y") and len(letters) > 1 else 0  # initial y is a consonant
    phones = ["Y"] * i
    while i < len(letters):
        size = next(n for n in range(_LONGEST_GRAPHEME, 0, -1) if letters[i : i + n] in _GRAPHEMES)
        phones.extend(_GRAPHEMES[letters[i : i + size]])
        i += size
    return [p for k, p in enumerate(phones) if k == 0 or p != phones[k - 1]]


def transcript_words(text: str) -> list[str]:
    """Lowercase words of a transcript, punctuation dropped, each digit spelled as a word."""
    words = []
    for token in re.findall(r"[a-z']+|[0-9]", text.lower()):
        token = _DIGITS[int(token)] if token.isdigit() else token.strip("'")
        if token:
            words.append(token)
    return words


def to_pcm16(audio: np.ndarray) -> bytes:
    """16-bit PCM bytes of `(N,)` float audio, peak-normalised so that quiet recordings decode as well."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    scale = 0.9 / peak if peak > 0 else 0.0
    return np.clip(audio * scale * 32767.0, -32768, 32767).astype("<i2").tobytes()


def tidy(phones: list[Phone], duration: float) -> list[Phone]:
    """Map noise and unknown units to SIL, clip to `[0, duration]`, fill gaps with SIL, merge SIL runs."""
    out: list[Phone] = []
    cursor = 0.0
    for name, start, end in sorted(phones, key=lambda p: p[1]):
        name = name if name in ARPABET else SILENCE
        start, end = max(start, cursor), min(end, duration)
        if end <= start:
            continue
        if start > cursor:
            out.append((SILENCE, cursor, start))
        out.append((name, start, end))
        cursor = end
    if cursor < duration:
        out.append((SILENCE, cursor, duration))
    merged: list[Phone] = []
    for phone in out:
        if merged and phone[0] == SILENCE and merged[-1][0] == SILENCE:
            merged[-1] = (SILENCE, merged[-1][1], phone[2])
        else:
            merged.append(phone)
    return merged or [(SILENCE, 0.0, duration)]


class PhonemeRecognizer:
    """Phones of 16 kHz speech. Each pocketsphinx decoder is built on first use and then reused."""

    def __init__(self) -> None:
        self._allphone = None
        self._aligner = None

    def phonemes(self, audio: np.ndarray, text: str | None = None) -> list[Phone]:
        """Forced alignment when a transcript is given, else phone recognition.

        Args:
            audio: `(N,)` float32 at 16 kHz.
            text: transcript of the speech, or None.
        Returns:
            Sorted, contiguous `(phone, start_s, end_s)` covering the whole clip.
        """
        return self.recognize(audio) if text is None else self.align(audio, text)

    def recognize(self, audio: np.ndarray) -> list[Phone]:
        """Phone recognition: allphone search with the phone language model."""
        from pocketsphinx import get_model_path

        if self._allphone is None:
            self._allphone = _decoder(allphone=get_model_path("en-us/en-us-phone.lm.bin"), lw=ALLPHONE_LM_WEIGHT)
        _decode(self._allphone, to_pcm16(audio))
        segments = self._allphone.seg() or []  # None when the clip is too short to decode
        frames = [(seg.word, seg.start_frame, seg.end_frame + 1) for seg in segments]
        return _to_seconds(frames, audio)

    def align(self, audio: np.ndarray, text: str) -> list[Phone]:
        """Forced alignment to `text`, falling back to recognition when it fails or the text is empty.

        Words missing from CMUdict are added with letter-to-sound pronunciations (`spell`).
        """
        if self._aligner is None:
            self._aligner = _decoder(beam=ALIGN_BEAM, pbeam=ALIGN_BEAM, wbeam=ALIGN_BEAM)
        words = self._known_words(transcript_words(text))
        if not words:
            return self.recognize(audio)
        pcm = to_pcm16(audio)
        try:
            self._aligner.set_align_text(" ".join(words))
            _decode(self._aligner, pcm)  # first pass: word boundaries
            self._aligner.set_alignment()
            _decode(self._aligner, pcm)  # second pass: phones within the words
            alignment = self._aligner.get_alignment()
        except RuntimeError:  # pocketsphinx raises it when the words cannot be aligned to the audio
            return self.recognize(audio)
        frames = [] if alignment is None else [(p.name, p.start, p.start + p.duration) for p in alignment.phones()]
        return _to_seconds(frames, audio) if frames else self.recognize(audio)

    def _known_words(self, words: list[str]) -> list[str]:
        """The words, after adding each one missing from the aligner's dictionary with a spelled pronunciation."""
        known = []
        for word in words:
            if self._aligner.lookup_word(word) is None:
                phones = spell(word)
                if not phones:
                    continue
                self._aligner.add_word(word, " ".join(phones), True)
            known.append(word)
        return known


def _decoder(**settings):
    from pocketsphinx import Decoder

    # logfn keeps pocketsphinx's C logging off stdout and stderr.
    return Decoder(lm=None, bestpath=False, logfn=os.devnull, **settings)


def _decode(decoder, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _to_seconds(frames: list[tuple[str, int, int]], audio: np.ndarray) -> list[Phone]:
    """`(name, start_frame, end_frame)` at 100 frames/s -> tidy phones in seconds."""
    phones = [(name, start / FRAMES_PER_SECOND, end / FRAMES_PER_SECOND) for name, start, end in frames]
    return tidy(phones, audio.shape[0] / SAMPLE_RATE)
