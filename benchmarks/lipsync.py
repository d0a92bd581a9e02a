"""Lip-sync of the `viseme` adapter against true phoneme timings of synthetic speech.

Speech comes from libespeak-ng (through ctypes), whose phoneme events give the true timings:
a stop's closure is the silent gap before its burst (espeak starts the stop's event at the burst),
a nasal ends where the following vowel's level rises. Each sentence is spoken at 130 and 190
words a minute, padded with 0.6 s before and 0.8 s after, once with exact digital zeros in every
silence and once with a dither of 2e-4 RMS (-74 dBFS) over the whole clip.

Modes: `text` (the adapter with the transcript), `no-text` (without), `loudness` (a baseline jaw:
opening AUs follow the loudness, the lips press shut as it gets quiet within 150 ms of sound). Each
render is the default character with the procedural rig at 30 fps; figures per mode and corpus
(see `eval/lipsync.py` for their definitions):

    closure   fraction of bilabials whose closure the lips reach
    err_ms    mean |time of smallest lip gap - closure centre|
    open_mm   mean lip gap at the centres of open vowels (>= 60 ms)
    shut_mm   mean smallest lip gap in the bilabial closures
    ratio     open_mm / max(shut_mm, 0.1 mm)
    false     closed runs of frames (gap <= closed) further than 50 ms from every true closure, per true bilabial
    pause_mm  largest lip-vertex distance from rest in pause cores (the worst clip)
    lag_ms    audio-visual offset: median, and the largest |lag| of any clip
    fallback  clips where the aligner fell back (a warning was raised)

Run: `python benchmarks/lipsync.py [--modes text,no-text,loudness] [--sentences benchmark|held-out] [--json out.json]`
(needs the `libespeak-ng1` Debian package).

`--ablation` instead scores the transcript-free sources one against another (each clip decoded
once): the phone loop at one frame rate or pooled over all PHONE_LOOP_FRAME_RATES, with or without
the acoustic closure evidence and the recognised words.

`--cost` instead times transcript-free decoding of `assets/sample_speech.wav` step by step (CPU
seconds, min and median of repeats, and as a real-time factor): the phone loop at each of
PHONE_LOOP_FRAME_RATES, word recognition and the alignment of the words. The single-rate phone loop
plus the words is the decoding before several rates were pooled, measured in the same run.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from talking_faces.adapters.phonemes import (
    PHONE_LOOP_FRAME_RATES,
    Phone,
    PhonemeRecognizer,
    closure_evidence,
    label_labial_gaps,
    pool_bilabials,
    step_rms,
)
from talking_faces.adapters.viseme import LOUDNESS_STEP_S, VisemeAdapter, loudness, speech_weights
from talking_faces.audio import SAMPLE_RATE, load_audio
from talking_faces.aus import AU_INDEX, NUM_AUS
from talking_faces.character import load_default_character
from talking_faces.eval.lipsync import closures, lip_geometry, pause_cores, pause_motion, av_offset, speech_envelope
from talking_faces.rig import build_rig_basis

FPS = 30.0
RATES_WPM = (130, 190)
LEAD_S, TAIL_S = 0.6, 0.8
DITHER_RMS = 2e-4
SILENT_DB = -50.0  # below the clip's peak 10 ms level: a stop closure or a pause
SENTENCES = (
    "Maybe Bob will bring a bag of plums to the picnic.",
    "Peter picked up the map, then both boys paddled home.",
    "My mom baked a big apple pie for the book club.",
    "Please pass the butter, and put the maple syrup back.",
    "Ben made a promise, but he broke it by the pump.",
    "The rubber ball bounced past the bright blue lamp.",
    "Bring me the pepper, and maybe some bread, please.",
    "A band of pipers played by the pub at the top of the map.",
    "Bill's mother bought ample hemp ropes from a shop.",
    "Pam, open the cabin, the storm will pass by morning.",
    "Bubbles popped, and my puppy jumped up to grab them.",
)
# Held out: written before any transcript-free rule was tuned, and never tuned on (`--sentences held-out`).
HELD_OUT_SENTENCES = (
    "Bobby mopped the muddy porch before the big party.",
    "My pal bought a pair of purple boots in Boston.",
    "Put the bottle by the lamp, and keep the map open.",
    "The baby bumped her lip on the metal bench.",
    "A brave bear climbed up the maple tree by the pond.",
    "Mark paid the plumber, but the pipe still drips.",
    "Please bring some milk, a pumpkin, and a bag of beans.",
    "The bishop improved the map of the old harbour.",
    "Maybe Paul will borrow my bike for the trip tomorrow.",
    "Emma stopped by the pub, bought a lemon, and left.",
    "Bright beams from the lamp bounced off the mirror.",
)
SENTENCE_SETS = {"benchmark": SENTENCES, "held-out": HELD_OUT_SENTENCES}
OPEN_VOWELS = frozenset({"a", "aa", "a#", "A:", "A@", "aI", "aU", "V", "0", "O:", "O", "O@", "E", "e@", "eI"})


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT of speak_lib.h
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_PHONEME_EVENT, _SYNCHRONOUS, _PHONEME_EVENTS, _DONT_EXIT, _RATE, _POS_CHARACTER = 7, 2, 0x1, 0x8000, 1, 1


class Espeak:
    """libespeak-ng in synchronous mode with phoneme events."""

    def __init__(self, voice: str = "en-us") -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self.lib = ctypes.CDLL(name)
        self.rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, None, _PHONEME_EVENTS | _DONT_EXIT)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced while the library may call it
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName(voice.encode())

    def _collect(self, wav, count, events) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        k = 0
        while events[k].type != 0:
            if events[k].type == _PHONEME_EVENT:
                self._events.append((events[k].id.string.decode(), events[k].sample))
            k += 1
        return 0

    def speak(self, text: str, wpm: int) -> tuple[np.ndarray, list[tuple[str, float]]]:
        """16 kHz float32 audio and the phoneme events `(espeak phoneme, start_s)`."""
        self._chunks, self._events = [], []
        self.lib.espeak_SetParameter(_RATE, wpm, 0)
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        audio16 = soxr.resample(audio, self.rate, SAMPLE_RATE).astype(np.float32)
        return audio16, [(name, sample / self.rate) for name, sample in self._events]


@dataclass
class Truth:
    """True timings of one clip: bilabial closures, open-vowel centres, silences (s)."""

    closures: list[tuple[float, float]]
    open_vowels: list[float]
    silences: list[tuple[float, float]]


def _levels_db(audio: np.ndarray) -> np.ndarray:
    """10 ms RMS level (dB relative to the loudest step) at t = j * 0.01 .. (j + 1) * 0.01."""
    hop = int(0.01 * SAMPLE_RATE)
    frames = audio[: audio.shape[0] // hop * hop].reshape(-1, hop).astype(np.float64)
    db = 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-14))
    return db - db.max()


def true_timings(audio: np.ndarray, events: list[tuple[str, float]]) -> Truth:
    """Closures, open-vowel centres and silences of clean synthetic `audio` from its phoneme events."""
    level = _levels_db(audio)
    silent = level < SILENT_DB
    step = 0.01
    ends = [t for _, t in events[1:]] + [audio.shape[0] / SAMPLE_RATE]
    shut, vowels = [], []
    for (name, start), end in zip(events, ends):
        if name in ("p", "b"):
            # espeak's stop event starts at the burst; its closure is the silent run just before it
            # (capped at 100 ms after a pause), or for a voiced stop with no silent run, the event itself
            lo, hi = int(round(start / step)) - 4, int(round(start / step)) + 1
            quiet = [i for i in range(max(lo, 0), hi + 1) if silent[i]]
            if quiet:
                gap_end = quiet[-1] + 1
                j = gap_end
                while j > 0 and silent[j - 1] and (gap_end - j) * step < 0.1:
                    j -= 1
                shut.append((j * step, gap_end * step))
            else:
                shut.append((start, min(end, start + 0.1)))
        elif name == "m":
            # the nasal murmur ends where the next vowel's level rises 6 dB above it
            a, b = int(start / step), int(min(end + 0.03, ends[-1]) / step)
            murmur = np.median(level[a : max(a + 2, int(end / step))])
            rise = np.flatnonzero(level[a + 2 : b] > murmur + 6.0)
            shut.append((start, (a + 2 + rise[0]) * step if rise.size else end))
        elif name in OPEN_VOWELS and end - start >= 0.06:
            vowels.append(0.5 * (start + end))
    runs, k = [], 0
    while k < silent.shape[0]:
        if silent[k]:
            j = k
            while j < silent.shape[0] and silent[j]:
                j += 1
            runs.append((k * step, j * step))
            k = j
        else:
            k += 1
    return Truth(shut, vowels, _subtract(runs, shut))


def _subtract(runs: list[tuple[float, float]], cuts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of `runs` outside every interval of `cuts` (a stop's silent closure is speech, not pause)."""
    out = []
    for start, end in runs:
        pieces = [(start, end)]
        for lo, hi in cuts:
            pieces = [p for a, b in pieces for p in ((a, min(b, lo)), (max(a, hi), b)) if p[1] > p[0]]
        out.extend(pieces)
    return out


def corpus(espeak: Espeak, sentences: tuple[str, ...] = SENTENCES, seed: int = 0):
    """Yield (sentence, wpm, padding, audio, truth, espeak phoneme events) for every clip of the corpus."""
    rng = np.random.default_rng(seed)
    for wpm in RATES_WPM:
        for sentence in sentences:
            speech, events = espeak.speak(sentence, wpm)
            audio = np.concatenate([np.zeros(int(LEAD_S * SAMPLE_RATE)), speech, np.zeros(int(TAIL_S * SAMPLE_RATE))])
            events = [(name, t + LEAD_S) for name, t in events]
            truth = true_timings(audio.astype(np.float32), events)
            for padding in ("silent", "dithered"):
                clip = audio if padding == "silent" else audio + DITHER_RMS * rng.standard_normal(audio.shape[0])
                yield sentence, wpm, padding, clip.astype(np.float32), truth, events


def loudness_weights(audio: np.ndarray, fps: float) -> np.ndarray:
    """Baseline `(T, 32)`: opening AUs follow loudness; within 150 ms of sound, quiet presses the lips shut."""
    level = loudness(audio)
    times = np.arange(int(round(audio.shape[0] / SAMPLE_RATE * fps))) / fps
    gain = np.interp(times, np.arange(level.shape[0]) * LOUDNESS_STEP_S, level)
    audible = np.flatnonzero(level > 0) * LOUDNESS_STEP_S
    near = np.abs(times[:, None] - audible[None, :]).min(axis=1) <= 0.15 if audible.size else np.zeros_like(times, bool)
    weights = np.zeros((times.shape[0], NUM_AUS))
    weights[:, AU_INDEX["AU25"]] = weights[:, AU_INDEX["AU26"]] = 0.8 * gain
    weights[:, AU_INDEX["AU24"]] = np.where(near, 1.0 - gain, 0.0)
    return weights


FALSE_CLOSURE_MARGIN_S = 0.05


def false_closures(gap: np.ndarray, fps: float, truth: list[tuple[float, float]], closed_gap: float) -> int:
    """Runs of frames with the lips closed (`gap` (T,) <= `closed_gap`) that come no closer than
    FALSE_CLOSURE_MARGIN_S to any true closure: the lips shut where nothing bilabial is said."""
    closed = np.concatenate([[False], gap <= closed_gap, [False]])
    edges = np.flatnonzero(np.diff(closed.astype(np.int8)))
    times = np.arange(gap.shape[0]) / fps
    count = 0
    for first, stop in zip(edges[::2], edges[1::2]):
        start, end = times[first], times[stop - 1]
        count += not any(start < e + FALSE_CLOSURE_MARGIN_S and end > s - FALSE_CLOSURE_MARGIN_S for s, e in truth)
    return count


def clip_scores(weights: np.ndarray, lip_offsets: np.ndarray, geometry, audio: np.ndarray, truth: Truth) -> dict:
    """Figures of one render, from `(T, 32)` weights and the basis restricted to the lips `(32, L, 3)`."""
    lips = geometry.rest + np.einsum("tk,klc->tlc", weights, lip_offsets)
    upper, lower = (int(np.flatnonzero(geometry.lips == v)[0]) for v in (geometry.upper_centre, geometry.lower_centre))
    gap = lips[:, upper, 1] - lips[:, lower, 1]
    closed, error = closures(gap, FPS, truth.closures, geometry.closed_gap)
    times = np.arange(gap.shape[0]) / FPS
    shut = [gap[(times >= s - 0.5 / FPS) & (times <= e + 0.5 / FPS)].min() for s, e in truth.closures]
    opened = [np.interp(t, times, gap) for t in truth.open_vowels]
    duration = audio.shape[0] / SAMPLE_RATE
    return {
        "closed": int(closed.sum()), "bilabials": len(truth.closures), "errors": error[closed].tolist(),
        "open": opened, "shut": shut, "false": false_closures(gap, FPS, truth.closures, geometry.closed_gap),
        "pause": pause_motion(lips, geometry.rest, FPS, pause_cores(truth.silences, duration)),
        "lag": av_offset(gap, FPS, speech_envelope(audio)),
    }


def summarise(rows: list[dict]) -> dict:
    errors = [e for r in rows for e in r["errors"]]
    open_mm, shut_mm = 1e3 * np.mean([o for r in rows for o in r["open"]]), 1e3 * np.mean([s for r in rows for s in r["shut"]])
    lags = np.array([r["lag"] for r in rows]) * 1e3
    return {
        "closure": sum(r["closed"] for r in rows) / max(sum(r["bilabials"] for r in rows), 1),
        "err_ms": 1e3 * float(np.mean(errors)) if errors else float("nan"),
        "open_mm": float(open_mm), "shut_mm": float(shut_mm), "ratio": float(open_mm / max(shut_mm, 0.1)),
        "false": sum(r["false"] for r in rows) / max(sum(r["bilabials"] for r in rows), 1),
        "pause_mm": 1e3 * max(r["pause"] for r in rows), "lag_median_ms": float(np.median(lags)),
        "lag_worst_ms": float(lags[np.argmax(np.abs(lags))]), "fallback": sum(r.get("fallback", 0) for r in rows),
        "clips": len(rows), "seconds": float(sum(r["seconds"] for r in rows)),
    }


def ablation_phones(recognizer: PhonemeRecognizer, audio: np.ndarray) -> dict[str, list[Phone]]:
    """Transcript-free phones of `audio` from each combination of sources, all from one decoding."""
    loud = step_rms(audio)[1]
    loops = [recognizer.recognize_phones(audio, rate) for rate in PHONE_LOOP_FRAME_RATES]
    words = recognizer.recognize_words(audio)
    aligned = recognizer._align_words(audio, words) if words else None
    evidence = [closure_evidence(phones, audio, loud) for phones in loops]
    return {
        "1 rate+T/K bursts+words (before)": pool_bilabials([label_labial_gaps(loops[0], audio, ("T", "K")), aligned]),
        "1 rate+evidence+words": pool_bilabials([evidence[0], aligned]),
        "4 rates+bursts+words": pool_bilabials([label_labial_gaps(phones, audio) for phones in loops] + [aligned]),
        "4 rates+evidence": pool_bilabials(evidence),
        "4 rates+evidence+words (now)": pool_bilabials(evidence + [aligned]),
    }


def decode_costs(audio: np.ndarray, repeats: int) -> dict[str, list[float]]:
    """CPU seconds of each transcript-free decoding step, `repeats` warm runs each (decoders built first)."""
    recognizer = PhonemeRecognizer()
    steps = {f"phone loop {rate}/s": (lambda rate=rate: recognizer.recognize_phones(audio, rate)) for rate in PHONE_LOOP_FRAME_RATES}
    words = recognizer.recognize_words(audio)
    steps["words"] = lambda: recognizer.recognize_words(audio)
    steps["align words"] = lambda: recognizer._align_words(audio, words)
    costs: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()  # builds the decoder
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.process_time()
            step()
            costs[name].append(time.process_time() - start)
    return costs


def print_costs(repeats: int) -> None:
    audio = load_audio(Path(__file__).resolve().parents[1] / "assets" / "sample_speech.wav")
    duration = audio.shape[0] / SAMPLE_RATE
    costs = decode_costs(audio, repeats)
    single = [sum(run) for run in zip(costs[f"phone loop {PHONE_LOOP_FRAME_RATES[0]}/s"], costs["words"], costs["align words"])]
    pooled = [sum(run) for run in zip(*costs.values())]
    rows = {**costs, "before: one rate + words": single, "now: all rates + words": pooled}
    print(f"{'step':28} {'min s':>6} {'median s':>8} {'RTF':>6}   ({duration:.1f} s of speech, {repeats} runs)")
    for name, seconds in rows.items():
        print(f"{name:28} {min(seconds):6.2f} {np.median(seconds):8.2f} {np.median(seconds) / duration:6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="text,no-text,loudness")
    parser.add_argument("--json", default=None)
    parser.add_argument("--sentences", choices=tuple(SENTENCE_SETS), default="benchmark",
                        help="The benchmark's sentences, or the held-out set that no rule was tuned on.")
    parser.add_argument("--limit", type=int, default=None, help="Use only the first N sentences.")
    parser.add_argument("--ablation", action="store_true", help="Instead of --modes, score the transcript-free sources.")
    parser.add_argument("--cost", type=int, default=0, metavar="REPEATS",
                        help="Instead, time transcript-free decoding of the sample speech, REPEATS runs.")
    args = parser.parse_args()
    if args.cost:
        print_costs(args.cost)
        return
    modes = args.modes.split(",")
    espeak = Espeak()
    identity = load_default_character()
    geometry = lip_geometry(identity)
    lip_offsets = build_rig_basis(identity).offsets[:, geometry.lips].astype(np.float64)
    adapter = VisemeAdapter.from_checkpoint(None)
    results: dict[str, dict[str, list]] = {}
    sentences = SENTENCE_SETS[args.sentences][: args.limit]
    for sentence, wpm, padding, audio, truth, _ in corpus(espeak, sentences):
        if args.ablation:
            start = time.process_time()
            for variant, phones in ablation_phones(adapter.recognizer, audio).items():
                row = clip_scores(speech_weights(phones, audio, FPS), lip_offsets, geometry, audio, truth)
                row.update(seconds=time.process_time() - start, sentence=sentence)
                results.setdefault(variant, {}).setdefault(f"{wpm} wpm {padding}", []).append(row)
            continue
        for mode in modes:
            start = time.process_time()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if mode == "loudness":
                    weights = loudness_weights(audio, FPS)
                else:
                    weights = adapter.weights(audio, FPS, sentence if mode == "text" else None).astype(np.float64)
            row = clip_scores(weights, lip_offsets, geometry, audio, truth)
            row.update(seconds=time.process_time() - start, fallback=len(caught), sentence=sentence)
            results.setdefault(mode, {}).setdefault(f"{wpm} wpm {padding}", []).append(row)
            if caught:
                print(f"  {mode} {wpm} {padding}: {sentence!r}: {caught[0].message}", file=sys.stderr)
    table = {mode: {name: summarise(rows) for name, rows in corpora.items()} for mode, corpora in results.items()}
    header = f"{'mode':32} {'corpus':20} {'closure':>7} {'err_ms':>6} {'open_mm':>7} {'shut_mm':>7} {'ratio':>6} {'false':>6} {'pause_mm':>8} {'lag_med':>7} {'lag_max':>7} {'fallbk':>6} {'cpu_s':>6}"
    print(header)
    for mode, corpora in table.items():
        for name, s in corpora.items():
            print(f"{mode:32} {name:20} {s['closure']:7.1%} {s['err_ms']:6.1f} {s['open_mm']:7.2f} {s['shut_mm']:7.2f} "
                  f"{s['ratio']:6.1f} {s['false']:6.1%} {s['pause_mm']:8.2f} {s['lag_median_ms']:7.0f} {s['lag_worst_ms']:7.0f} {s['fallback']:6d} {s['seconds']:6.1f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"table": table, "clips": results}, handle, indent=1, default=float)


if __name__ == "__main__":
    main()
