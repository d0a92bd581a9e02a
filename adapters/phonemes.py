"""Phonemes from speech with pocketsphinx: phone recognition, or forced alignment to a transcript.

Both paths return `Phone` tuples `(ARPAbet phone, start_s, end_s)`, sorted, contiguous from 0 to the
clip's duration, with `SIL` for silence and noise. Nothing is downloaded: the English model ships
inside the pocketsphinx wheel.
"""

from __future__ import annotations

import os
import re
import warnings

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
# The phone loop decodes at several frame rates. Each phone HMM needs at least 3 frames, so the rate
# sets the shortest phone it can hear (30, 24, 20, 17 ms) and where frame edges fall; a short closure
# that one rate swallows, another often keeps. The first rate gives the phones (150/s alone found 71%
# instead of 49% of the bilabials of 190 wpm synthetic speech); the bilabials of the others are
# added (with the words: 88-89% instead of 79-81% of the benchmark's closures; docs/viseme.md).
PHONE_LOOP_FRAME_RATES: tuple[int, ...] = (150, 125, 175, 100)
# Alignment fails on long clips with the default beams; see docs/viseme.md.
ALIGN_BEAM = 1e-80
# The default language-model weight (6.5) makes allphone search swallow whole words into SIL;
# 2.0 found 3x more bilabials on the sample speech, and 1.0 another 15% on synthetic speech (docs/viseme.md).
ALLPHONE_LM_WEIGHT = 1.0
STEP_S = 0.01
UTTERANCE_S = 30.0  # longest piece of speech decoded as one utterance without a transcript
WORD_HELPER_S = 8.0  # from this length on, a render's word search runs in a second process
AUDIBLE_RANGE_DB = 45.0  # steps more than 45 dB below the clip's loud steps are silence
MAX_SNAP_S = 0.15  # speech edges move by at most this much to meet the sound
STOP_CLOSURE_S = 0.08  # a stop after a pause closes this long before its burst
MAX_UNALIGNED_SPEECH = 0.25  # more audible speech outside the aligned words: the transcript does not match
BILABIALS = frozenset({"P", "B", "M"})
BILABIAL_MATCH_S = 0.05  # bilabials of two recognisers this close are the same one
STOP_GAP_S = (0.02, 0.15)  # a silence inside speech this long is a stop's closure
BURST_RISE_DB = 20.0
LABIAL_BURST_HZ = 800.0  # labial bursts: centroid under 800 Hz (alveolar ~3 kHz, velar ~1-2.5 kHz)
VOICELESS_STOP_LIKE = ("T", "K", "TH")  # recognised phones that may hold a voiceless stop's closure and burst
NON_LABIAL_BURST_HZ = 1500.0  # a recognised P whose burst centroid is this high is not labial (espeak-ng's P: 260-670 Hz)
ALVEOLAR_BURST_HZ = 2500.0  # ... but T from here up, else K
# A murmur (nasal or voice bar: voiced with the mouth closed) puts its energy below 400 Hz; with the
# mouth open, F1 and F2 put it in 400-4000 Hz. espeak-ng's /m n ng/ murmurs: low band 5-10 dB over
# the mid band; its /w/ -0.5 dB, /l/ -6 dB, vowels -1 to -15 dB.
MURMUR_LOW_HZ, MURMUR_MID_HZ = (60.0, 400.0), (400.0, 4000.0)
MURMUR_LOW_OVER_MID_DB = 4.0
MURMUR_RANGE_DB = 35.0  # and voiced: within 35 dB of the clip's loud steps
LIP_GLIDES = ("W",)  # recognised phones whose place is the lips; with a murmur they are M
DITHER_LSB = 2.0  # RMS of the dither added to the 16-bit PCM, about -84 dB below the normalised peak

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
    """16-bit PCM bytes of `(N,)` float audio, peak-normalised so that quiet recordings decode as well.

    A fixed dither of DITHER_LSB (seeded, so decoding is repeatable) keeps digital silence from
    reaching the recogniser as exact zeros, whose log energies break its alignment.
    """
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    scale = 0.9 * 32767.0 / peak if peak > 0 else 0.0
    dither = DITHER_LSB * np.random.default_rng(0).standard_normal(audio.shape[0])
    return np.clip(np.round(audio * scale + dither), -32768, 32767).astype("<i2").tobytes()


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


def step_rms(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """`(J,)` 20 ms RMS every 10 ms (step j covers j * 10 ms + 20 ms), and the clip's loud level (its 99th percentile)."""
    hop = int(SAMPLE_RATE * STEP_S)
    power = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
    starts = np.arange(audio.shape[0] // hop + 1) * hop
    ends = np.minimum(starts + 2 * hop, audio.shape[0])
    rms = np.sqrt(np.maximum(power[ends] - power[starts], 0.0) / np.maximum(ends - starts, 1))
    return rms, float(np.percentile(rms, 99.0)) if rms.size else 0.0


def utterance_bounds(audio: np.ndarray, longest: float = UTTERANCE_S) -> list[tuple[int, int]]:
    """`(start, stop)` sample ranges covering `audio`, each at most `longest` seconds, cut at the quietest
    10 ms step of the last third of each range (a pause between words, in speech)."""
    rms, _ = step_rms(audio)
    hop, limit = int(SAMPLE_RATE * STEP_S), int(longest * SAMPLE_RATE)
    bounds, start = [], 0
    while audio.shape[0] - start > limit:
        first, last = (start + 2 * limit // 3) // hop, (start + limit) // hop - 2
        cut = (first + int(np.argmin(rms[first:last]))) * hop + hop  # the middle of that 20 ms step
        bounds.append((start, cut))
        start = cut
    bounds.append((start, audio.shape[0]))
    return bounds


def audible_steps(audio: np.ndarray) -> np.ndarray:
    """`(J,)` bool every 10 ms (step j covers j * 10 ms + 20 ms): 20 ms RMS within AUDIBLE_RANGE_DB of the clip's loud steps.

    Relative to the 99th-percentile level, so that the recording level does not matter; dither
    and room noise far below the speech are inaudible.
    """
    rms, reference = step_rms(audio)
    return (rms > reference * 10.0 ** (-AUDIBLE_RANGE_DB / 20.0)) & (rms > 0)


def snap_to_sound(phones: list[Phone], audible: np.ndarray) -> list[Phone]:
    """Move each speech/SIL boundary to where the sound starts or stops, by up to MAX_SNAP_S.

    Aligners give the quiet edges of words to the silence next to them (the murmur of "Maybe"
    after a pause, "Ben | made"); a phone next to SIL takes the audible run that touches it.
    """
    out = list(phones)
    limit = int(round(MAX_SNAP_S / STEP_S))
    for k in range(len(out) - 1):
        (left, start, middle), (right, _, end) = out[k], out[k + 1]
        j = int(round(middle / STEP_S))
        if left == SILENCE and right != SILENCE:  # speech starts: walk back over audible steps
            i = j
            while i - 1 >= 0 and j - (i - 1) <= limit and (i - 1) * STEP_S > start and audible[i - 1]:
                i -= 1
            boundary = i * STEP_S
        elif left != SILENCE and right == SILENCE:  # speech stops: walk on over audible steps
            i = j
            while i < audible.shape[0] and i - j < limit and (i + 1) * STEP_S < end and audible[i]:
                i += 1
            boundary = i * STEP_S
        else:
            continue
        out[k], out[k + 1] = (left, start, boundary), (right, boundary, end)
    return [p for p in out if p[2] > p[1]]


def stretch_last_word(phones: list[Phone], last_word: int, audible: np.ndarray) -> list[Phone]:
    """Stretch the phones of the utterance's last word (from index `last_word`) to the end of the audible speech.

    Aligners squeeze a final word into its first frames when its tail is quiet ("...game": G-EY-M
    in 0.13 s, then silence through the audible "-ame"); the word then ends where the sound does.
    """
    start, end = phones[last_word][1], phones[-1][2]
    tail = np.flatnonzero(audible[int(round(end / STEP_S)) :])
    if not tail.size:
        return phones
    # the audible run that continues from the word's end, bridging gaps shorter than a stop closure
    gaps = np.diff(tail)
    cut = np.flatnonzero(gaps > STOP_GAP_S[1] / STEP_S)
    run = tail[: cut[0] + 1] if cut.size else tail
    if run[0] * STEP_S > STOP_GAP_S[1]:
        return phones
    new_end = end + (run[-1] + 2) * STEP_S  # + the step's 20 ms window
    scale = (new_end - start) / (end - start)
    return phones[:last_word] + [(n, start + (s - start) * scale, start + (e - start) * scale) for n, s, e in phones[last_word:]]


def extend_stop_closures(phones: list[Phone]) -> list[Phone]:
    """Give P the gap before its burst (up to STOP_CLOSURE_S), taken from a preceding SIL.

    The closure of a voiceless stop is silent, so aligners hand it to the pause before it ("pie"
    at the start, "pass" after a comma); the lips must be shut through it. A B's closure carries
    a voice bar, which `snap_to_sound` has already given back to it.
    """
    out = list(phones)
    for k in range(1, len(out)):
        name, start, end = out[k]
        previous = out[k - 1]
        if name != "P" or previous[0] != SILENCE:
            continue
        new_start = max(previous[1], start - STOP_CLOSURE_S)
        if new_start < start:
            out[k - 1] = (SILENCE, previous[1], new_start)
            out[k] = (name, new_start, end)
    return [p for p in out if p[2] > p[1]]


class PhonemeRecognizer:
    """Phones of 16 kHz speech. Each pocketsphinx decoder is built on first use and then reused.

    Without a transcript, words are recognised with pocketsphinx's bundled language model and
    then force-aligned (`recognize`); `ctc` replaces that with a local phoneme-CTC model.
    """

    def __init__(self, ctc=None) -> None:
        self.ctc = ctc
        self._allphone: dict[int, object] = {}
        self._aligner = None
        self._words = None
        self._helper = None  # see _word_helper

    def phonemes(self, audio: np.ndarray, text: str | None = None) -> list[Phone]:
        """Forced alignment when a transcript is given, else recognition.

        Args:
            audio: `(N,)` float32 at 16 kHz.
            text: transcript of the speech, or None.
        Returns:
            Sorted, contiguous `(phone, start_s, end_s)` covering the whole clip.
        """
        return self.recognize(audio) if text is None else self.align(audio, text)

    def recognize(self, audio: np.ndarray) -> list[Phone]:
        """Transcript-free phones of `recognize_utterance`, run on pieces of at most UTTERANCE_S cut at
        the quietest moments (`utterance_bounds`): pocketsphinx's word search keeps a lattice of the whole
        utterance (7 GB for ten minutes of speech in one piece); a short clip is one piece."""
        pieces = []
        for start, stop in utterance_bounds(audio, UTTERANCE_S):
            offset = start / SAMPLE_RATE
            pieces += [(name, begin + offset, end + offset) for name, begin, end in self.recognize_utterance(audio[start:stop])]
        return tidy(pieces, audio.shape[0] / SAMPLE_RATE)

    def recognize_utterance(self, audio: np.ndarray) -> list[Phone]:
        """Transcript-free phones: the CTC model when given; else the phone loop at each of
        PHONE_LOOP_FRAME_RATES with acoustic closure evidence (`label_labial_gaps`,
        `label_labial_murmurs`), pooled, plus the bilabials of the recognised words force-aligned
        (`add_bilabials`).

        On synthetic speech the phone loop at one rate finds about 70% of the bilabials and the
        words 40%; all pooled, the lips close 91-95% of them (docs/viseme.md).
        """
        if self.ctc is not None:
            return extend_stop_closures(snap_to_sound(self.ctc.phonemes(audio), audible_steps(audio)))
        elsewhere = self._word_helper(audio)
        if elsewhere is not None:  # the word search runs in the helper while the phone loops run here
            elsewhere.submit(_aligned_words_in_helper, audio)
        loud = step_rms(audio)[1]
        loops = [closure_evidence(self.recognize_phones(audio, rate), audio, loud) for rate in PHONE_LOOP_FRAME_RATES]
        return pool_bilabials(loops + [self.aligned_words(audio) if elsewhere is None else elsewhere.result()])

    def aligned_words(self, audio: np.ndarray) -> list[Phone] | None:
        """The phones of the words heard in `audio` (`recognize_words`), force-aligned; None when none are heard."""
        words = self.recognize_words(audio)
        return self._align_words(audio, words) if words else None

    def _word_helper(self, audio: np.ndarray):
        """The process that searches the words of long utterances beside this one's phone loops, when
        `allow_word_helper()` was called in this process (the render's speech worker); else None.

        The word search and the four phone loops take about the same time (0.31 and 0.24 times real
        time), so on two cores a long utterance is analysed in about half the time; a short one
        (under WORD_HELPER_S) is not worth starting a process for. The helper's recogniser keeps its
        decoders from one utterance to the next, as this one does, so the phones are the same.
        """
        if not _WORD_HELPER_ALLOWED or audio.shape[0] < WORD_HELPER_S * SAMPLE_RATE:
            return None
        if self._helper is None:
            from talking_faces.worker import WorkerProcess

            self._helper = WorkerProcess("word search", preload=("talking_faces.adapters.phonemes",))
        return self._helper

    def recognize_words(self, audio: np.ndarray) -> list[str]:
        """Words heard with pocketsphinx's bundled US English language model (fillers dropped)."""
        if self._words is None:
            self._words = _decoder(**_words_settings())
        _decode(self._words, to_pcm16(audio))
        hypothesis = self._words.hyp()
        return transcript_words(hypothesis.hypstr) if hypothesis is not None else []

    def recognize_phones(self, audio: np.ndarray, rate: int = PHONE_LOOP_FRAME_RATES[0]) -> list[Phone]:
        """Phone recognition: allphone search with the phone language model, at `rate` frames/s."""
        if rate not in self._allphone:
            self._allphone[rate] = _decoder(**_allphone_settings(rate))
        decoder = self._allphone[rate]
        _decode(decoder, to_pcm16(audio))
        segments = decoder.seg() or []  # None when the clip is too short to decode
        frames = [(seg.word, seg.start_frame, seg.end_frame + 1) for seg in segments]
        phones = _to_seconds(frames, audio, rate)
        return extend_stop_closures(snap_to_sound(phones, audible_steps(audio)))

    def align(self, audio: np.ndarray, text: str) -> list[Phone]:
        """Forced alignment to `text`; when that cannot be made, a warning and the transcript-free phones.

        Words missing from CMUdict are added with letter-to-sound pronunciations (`spell`). The
        alignment is refused when more than MAX_UNALIGNED_SPEECH of the audible speech falls
        outside its words (a transcript of other or fewer words).
        """
        words = transcript_words(text)
        phones = self._align_words(audio, words) if words else None
        if phones is None:
            problem = "it has no words" if not words else "pocketsphinx could not align its words to the speech"
        else:
            audible = audible_steps(audio)
            missed = _unaligned_fraction(phones, audible)
            problem = f"{missed:.0%} of the audible speech lies outside its words" if missed > MAX_UNALIGNED_SPEECH else None
        if problem is None:
            return phones
        warnings.warn(f"The transcript does not match the audio ({problem}); using phonemes recognised without it.", stacklevel=2)
        return self.recognize(audio)

    def _align_words(self, audio: np.ndarray, words: list[str]) -> list[Phone] | None:
        """Phones of `words` force-aligned to the audio, with edge repairs; None when pocketsphinx cannot align them."""
        if self._aligner is None:
            self._aligner = _decoder(**_aligner_settings())
        words = self._known_words(words)
        if not words:
            return None
        pcm = to_pcm16(audio)
        try:
            self._aligner.set_align_text(" ".join(words))
            _decode(self._aligner, pcm)  # first pass: word boundaries
            self._aligner.set_alignment()
            _decode(self._aligner, pcm)  # second pass: phones within the words
            alignment = self._aligner.get_alignment()
        except RuntimeError:  # pocketsphinx raises it when the words cannot be aligned to the audio
            return None
        if alignment is None:
            return None
        frames, last_word = [], 0
        for word in alignment.words():
            if word.name not in ("<s>", "</s>", "<sil>"):
                last_word = len(frames)
            for phone in word:
                frames.append((phone.name, phone.start, phone.start + phone.duration))
        if not frames:
            return None
        phones = [(n, s / FRAMES_PER_SECOND, e / FRAMES_PER_SECOND) for n, s, e in frames]
        audible = audible_steps(audio)
        phones = stretch_last_word(phones[: _last_spoken(phones) + 1], last_word, audible)
        return extend_stop_closures(snap_to_sound(tidy(phones, audio.shape[0] / SAMPLE_RATE), audible))

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


def _last_spoken(phones: list[Phone]) -> int:
    return max((k for k, p in enumerate(phones) if p[0] in ARPABET), default=len(phones) - 1)


def _unaligned_fraction(phones: list[Phone], audible: np.ndarray) -> float:
    """Fraction of audible 10 ms steps that lie in SIL phones."""
    spoken = np.zeros(audible.shape[0], bool)
    for name, start, end in phones:
        if name != SILENCE:
            spoken[int(round(start / STEP_S)) : int(round(end / STEP_S))] = True
    return float((audible & ~spoken).sum() / max(audible.sum(), 1))


def _default_lm() -> str:
    from pocketsphinx import get_model_path

    return get_model_path("en-us/en-us.lm.bin")


# Decoders made ahead of need (`make_decoder_ahead`), each handed out once: a decoder's results depend
# on the utterances it decoded before (its feature normalisation adapts), so none is ever shared.
_SPARE_DECODERS: dict[tuple, list] = {}


def _decoder(**settings):
    """A fresh pocketsphinx decoder with these settings: one made ahead of need, else a new one."""
    spare = _SPARE_DECODERS.get(_decoder_key(settings))
    return spare.pop() if spare else _new_decoder(settings)


def _decoder_key(settings: dict) -> tuple:
    return tuple(sorted(settings.items()))


def _new_decoder(settings: dict):
    from pocketsphinx import Decoder

    # Unless given: no language model and no best-path search (pocketsphinx's defaults have both);
    # logfn keeps its C logging off stdout and stderr.
    return Decoder(**{"lm": None, "bestpath": False, **settings}, logfn=os.devnull)


_WORD_HELPER_ALLOWED = False
_HELPER_RECOGNIZER: PhonemeRecognizer | None = None


def allow_word_helper() -> None:
    """Let recognisers of this process search the words of long utterances in a second process (for a
    process whose caller waits for it: the render's speech worker, with the other core free)."""
    global _WORD_HELPER_ALLOWED
    _WORD_HELPER_ALLOWED = True


def _aligned_words_in_helper(audio: np.ndarray) -> list[Phone] | None:
    """`PhonemeRecognizer.aligned_words`, run in the word helper by its one recogniser."""
    global _HELPER_RECOGNIZER
    if _HELPER_RECOGNIZER is None:
        _HELPER_RECOGNIZER = PhonemeRecognizer()
    return _HELPER_RECOGNIZER.aligned_words(audio)


def _words_settings() -> dict:
    return {"lm": _default_lm(), "bestpath": True}


def _allphone_settings(rate: int) -> dict:
    from pocketsphinx import get_model_path

    # No dictionary: a phone loop needs none, and reading CMUdict costs 0.08 s a decoder.
    return {"allphone": get_model_path("en-us/en-us-phone.lm.bin"), "lw": ALLPHONE_LM_WEIGHT, "frate": rate, "dict": None}


def _aligner_settings() -> dict:
    return {"beam": ALIGN_BEAM, "pbeam": ALIGN_BEAM, "wbeam": ALIGN_BEAM}


def make_decoders_ahead(transcript: bool) -> None:
    """Make now, in this process, the decoders that the next `PhonemeRecognizer.phonemes` call will take:
    with a transcript the aligner, without one the word decoder, the aligner and a phone loop per frame
    rate. Loading the acoustic model (and CMUdict) takes 0.1-0.3 s a decoder, which a worker process
    spends while its parent reads the audio."""
    wanted = [_aligner_settings()] if transcript else [
        _words_settings(), _aligner_settings(), *(_allphone_settings(rate) for rate in PHONE_LOOP_FRAME_RATES)
    ]
    for settings in wanted:
        _SPARE_DECODERS.setdefault(_decoder_key(settings), []).append(_new_decoder(settings))


def _decode(decoder, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _to_seconds(frames: list[tuple[str, int, int]], audio: np.ndarray, rate: float) -> list[Phone]:
    """`(name, start_frame, end_frame)` at `rate` frames/s -> tidy phones in seconds."""
    phones = [(name, start / rate, end / rate) for name, start, end in frames]
    return tidy(phones, audio.shape[0] / SAMPLE_RATE)


def burst_centroid(audio: np.ndarray, start: float, end: float) -> float | None:
    """Spectral centroid (Hz) of the 20 ms after the burst that ends a silent gap `[start, end]` s, or None.

    The burst is the first 5 ms frame, from the gap's quietest frame up to 30 ms past its end,
    that rises BURST_RISE_DB above that quietest frame.
    """
    hop = SAMPLE_RATE // 200
    lo, hi = int(start * SAMPLE_RATE), min(int((end + 0.03) * SAMPLE_RATE), audio.shape[0])
    frames = audio[lo : lo + (hi - lo) // hop * hop].astype(np.float64).reshape(-1, hop)
    if frames.shape[0] < 2:
        return None
    db = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    floor = int(np.argmin(db))
    rise = np.flatnonzero(db[floor:] > db[floor] + BURST_RISE_DB)
    if not rise.size:
        return None
    onset = lo + (floor + int(rise[0])) * hop
    burst = audio[onset : onset + 4 * hop].astype(np.float64)
    if burst.shape[0] < 4 * hop:
        return None
    power = np.abs(np.fft.rfft(burst * np.hanning(burst.shape[0]))) ** 2
    freqs = np.fft.rfftfreq(burst.shape[0], 1.0 / SAMPLE_RATE)
    return float((freqs * power).sum() / max(power.sum(), 1e-20))


def label_labial_gaps(phones: list[Phone], audio: np.ndarray, stop_like: tuple[str, ...] = VOICELESS_STOP_LIKE) -> list[Phone]:
    """Relabel as P each stop closure whose release burst is labial (low and diffuse).

    Closures are short silences between two speech phones (STOP_GAP_S) and the voiceless phones
    `stop_like` (T, K and TH) the recogniser heard (a TH that holds a silent gap and a burst is a stop, not a
    fricative). A labial release has no front cavity to resonate, so its burst carries little
    high-frequency energy (centroid under LABIAL_BURST_HZ), unlike the ~3 kHz burst of T or the
    compact 1-2.5 kHz burst of K. Voiced D, G and DH are left alone: their voicing pulls any
    burst's centroid down. A gap that ends in a voiced onset with no burst (a glottal stop) looks
    labial to this test too.
    """
    out = list(phones)
    for k in range(1, len(out) - 1):
        name, start, end = out[k]
        if name == SILENCE:
            if not (STOP_GAP_S[0] <= end - start <= STOP_GAP_S[1]) or SILENCE in (out[k - 1][0], out[k + 1][0]):
                continue
            centroid = burst_centroid(audio, start, end)
        elif name in stop_like:
            centroid = burst_centroid(audio, max(start - STOP_GAP_S[0], 0.0), end)
        else:
            continue
        if centroid is not None and centroid < LABIAL_BURST_HZ:
            out[k] = ("P", start, end)
    return out


def relabel_non_labial_bursts(phones: list[Phone], audio: np.ndarray) -> list[Phone]:
    """Relabel as T or K each recognised P whose release burst is clearly not labial.

    The converse of `label_labial_gaps`: a burst with its spectral centroid at NON_LABIAL_BURST_HZ
    or above comes from a front cavity, so the stop is T (ALVEOLAR_BURST_HZ and up) or K. A P
    without a burst (a nasal's neighbour, a pause's edge) is left as it is.
    """
    out = list(phones)
    for k, (name, start, end) in enumerate(out):
        if name != "P":
            continue
        centroid = burst_centroid(audio, max(start - STOP_GAP_S[0], 0.0), end)
        if centroid is not None and centroid >= NON_LABIAL_BURST_HZ:
            out[k] = ("T" if centroid >= ALVEOLAR_BURST_HZ else "K", start, end)
    return out


def murmur_fraction(audio: np.ndarray, start: float, end: float, loud: float) -> float:
    """Fraction of the 10 ms frames (5 ms apart) in `[start, end]` s that are a murmur: within
    MURMUR_RANGE_DB of the clip's loud level `loud` (RMS), and with the energy in MURMUR_LOW_HZ
    MURMUR_LOW_OVER_MID_DB or more over MURMUR_MID_HZ."""
    hop, window = SAMPLE_RATE // 200, SAMPLE_RATE // 100
    piece = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)].astype(np.float64)
    count = (piece.shape[0] - window) // hop + 1
    if count < 1 or loud <= 0:
        return 0.0
    frames = piece[np.arange(window)[None, :] + hop * np.arange(count)[:, None]]
    power = np.abs(np.fft.rfft(frames * np.hanning(window), axis=1)) ** 2
    freqs = np.fft.rfftfreq(window, 1.0 / SAMPLE_RATE)
    low = power[:, (freqs >= MURMUR_LOW_HZ[0]) & (freqs < MURMUR_LOW_HZ[1])].sum(axis=1)
    mid = power[:, (freqs >= MURMUR_MID_HZ[0]) & (freqs < MURMUR_MID_HZ[1])].sum(axis=1)
    voiced = np.mean(frames**2, axis=1) > (loud * 10.0 ** (-MURMUR_RANGE_DB / 20.0)) ** 2
    murmur = voiced & (low > mid * 10.0 ** (MURMUR_LOW_OVER_MID_DB / 10.0))
    return float(murmur.mean())


def label_labial_murmurs(phones: list[Phone], audio: np.ndarray, loud: float) -> list[Phone]:
    """Relabel as M each LIP_GLIDES phone (W) that is mostly murmur: lips as its place, a closed mouth as its manner.

    Recognisers hear the murmur of M as W (both have the lips as their place and a low second
    formant), but W is spoken with the mouth open and its first two formants above 400 Hz, while
    a murmur, with the mouth shut, has its energy below (`murmur_fraction`). `loud` is the clip's
    loud level (`step_rms`).
    """
    return [("M", start, end) if name in LIP_GLIDES and murmur_fraction(audio, start, end, loud) >= 0.5 else (name, start, end)
            for name, start, end in phones]


def closure_evidence(phones: list[Phone], audio: np.ndarray, loud: float) -> list[Phone]:
    """Recognised `phones` corrected by the acoustic evidence for or against a lip closure: the place
    of stop bursts (labial or not) and lip-glide murmurs."""
    return label_labial_murmurs(relabel_non_labial_bursts(label_labial_gaps(phones, audio), audio), audio, loud)


def pool_bilabials(sources: list[list[Phone] | None]) -> list[Phone]:
    """The first source's phones, with each bilabial of the later sources that it lacks (`add_bilabials`); None sources are skipped."""
    present = [phones for phones in sources if phones is not None]
    pooled = present[0]
    for phones in present[1:]:
        pooled = add_bilabials(pooled, phones)
    return pooled


def add_bilabials(phones: list[Phone], extra: list[Phone]) -> list[Phone]:
    """`phones` with each bilabial of `extra` that has none of `phones`' within BILABIAL_MATCH_S written over them."""
    out = list(phones)
    for name, start, end in extra:
        if name not in BILABIALS:
            continue
        if any(n in BILABIALS and s < end + BILABIAL_MATCH_S and e > start - BILABIAL_MATCH_S for n, s, e in out):
            continue
        pieces = []
        for n, s, e in out:
            pieces.extend(p for p in ((n, s, min(e, start)), (n, max(s, end), e)) if p[2] > p[1])
        out = sorted(pieces + [(name, start, end)], key=lambda p: p[1])
    return out
