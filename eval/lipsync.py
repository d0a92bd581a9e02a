"""Lip-sync metrics of one render against its audio, needing no dataset.

All figures come from the lips of the mesh sequence and from the audio's phones (the forced
alignment of a transcript, or of the recognised words) or, in the benchmark, from true timings:

- `offset_ms`: the lag that best correlates lip aperture with the speech envelope, positive when
  the lips move before the sound (a lip track that leads the audio by d seconds peaks at +d).
- `closure_rate`: the fraction of bilabials (P, B, M) during which the lips meet: the lip-centre
  gap on some frame inside the bilabial's closure (widened by half a frame) is at most
  `CLOSED_GAP_M` (on FLAME meshes: at most the neutral's gap + `CLOSED_GAP_M`; see `lip_geometry`).
- `closure_error_ms`: mean absolute time from each closed bilabial's closure centre to the centre
  of the run of frames at the smallest lip gap (to 0.1 mm) within `CLOSURE_SEARCH_S` of it.
- `pause_motion_mm`: the largest distance of any inner-lip vertex from its resting position over the
  frames of pause cores (silences of at least `PAUSE_MIN_S`, trimmed by `PAUSE_TRIM_S` at each end
  for natural release and anticipation). The resting position is each vertex's median over those
  frames: the neutral's lips in a neutral render, the expression's when an emotion is held (a
  held smile is not motion).
- `jitter_mm`: RMS over frames and inner-lip vertices of the second difference
  `|v[t+1] - 2 v[t] + v[t-1]|` (frame-to-frame shake; smooth motion at any speed gives little).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talking_faces.adapters.phonemes import BILABIALS, SILENCE
from talking_faces.audio import SAMPLE_RATE
from talking_faces.errors import TalkingFacesError
from talking_faces.identity import Identity

Interval = tuple[float, float]

CLOSED_GAP_M = 0.5e-3  # lips meet: centre gap at most 0.5 mm (the default character rests at 1.8 mm)
CLOSURE_SEARCH_S = 0.1  # the closing frames are looked for within 100 ms of a closure's centre
CLOSING_TOLERANCE_M = 0.1e-3  # frames within 0.1 mm of the smallest gap are all "closed"
PAUSE_MIN_S = 0.25  # silences shorter than this are part of the speech rhythm, not pauses
PAUSE_TRIM_S = 0.1  # natural release after and anticipation before speech
ENVELOPE_STEP_S = 0.01
ENVELOPE_WINDOW_S = 0.04
ENVELOPE_RANGE_DB = 40.0  # envelope floor, below the clip's loudest 40 ms
MAX_OFFSET_S = 0.5


@dataclass(frozen=True)
class LipGeometry:
    """The lip vertices of one identity.

    Attributes:
        upper_centre, lower_centre: vertex indices of the inner-lip centres (the lip gap is their y difference).
        lips: `(L,)` inner-lip loop vertex indices.
        rest: `(L, 3)` their neutral positions.
        closed_gap: the largest lip-centre gap (m) at which the lips count as closed.
    """

    upper_centre: int
    lower_centre: int
    lips: np.ndarray
    rest: np.ndarray
    closed_gap: float = CLOSED_GAP_M


def lip_geometry(identity: Identity) -> LipGeometry:
    """Lip vertices of the default character or of a FLAME mesh with faces (from `talking_faces.landmarks`).

    The default character rests with its lips 1.8 mm apart, so closed is a gap of at most
    CLOSED_GAP_M. A FLAME neutral has its mouth shut, with the inner-lip boundary vertices tucked
    into the lip roll about 17 mm apart, so there closed is at most the neutral gap + CLOSED_GAP_M.
    """
    from talking_faces.character import is_default_character
    from talking_faces.landmarks import find_landmarks

    marks = find_landmarks(identity.vertices, identity.faces)
    mid_x = 0.5 * (marks.points["mouth_corner_l"][0] + marks.points["mouth_corner_r"][0])

    def centre(arc: np.ndarray) -> int:
        return int(arc[np.argmin(np.abs(identity.vertices[arc, 0] - mid_x))])

    lips = np.asarray(marks.indices["inner_lip_loop"], dtype=np.int64)
    upper, lower = centre(marks.indices["upper_lip"]), centre(marks.indices["lower_lip"])
    rest_gap = float(identity.vertices[upper, 1] - identity.vertices[lower, 1])
    closed = CLOSED_GAP_M if is_default_character(identity.vertices) else rest_gap + CLOSED_GAP_M
    return LipGeometry(upper, lower, lips, identity.vertices[lips].astype(np.float64), closed)


def lip_tracks(vertices: np.ndarray, geometry: LipGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Lip gap `(T,)` and inner-lip positions `(T, L, 3)` (metres) of a `(T, V, 3)` sequence (may be memory-mapped)."""
    gap = vertices[:, geometry.upper_centre, 1] - vertices[:, geometry.lower_centre, 1]
    return np.asarray(gap, dtype=np.float64), np.asarray(vertices[:, geometry.lips], dtype=np.float64)


def speech_envelope(audio: np.ndarray) -> np.ndarray:
    """`(J,)` envelope every 10 ms: 40 ms RMS in dB, from 0 at 40 dB below the clip's loudest step to 1 there."""
    hop, half = int(SAMPLE_RATE * ENVELOPE_STEP_S), int(SAMPLE_RATE * ENVELOPE_WINDOW_S / 2)
    power = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
    centres = np.arange(audio.shape[0] // hop + 1) * hop
    lo, hi = np.clip(centres - half, 0, audio.shape[0]), np.clip(centres + half, 0, audio.shape[0])
    db = 10.0 * np.log10(np.maximum((power[hi] - power[lo]) / np.maximum(hi - lo, 1), 1e-12))
    return np.clip((db - db.max()) / ENVELOPE_RANGE_DB + 1.0, 0.0, 1.0)


def av_offset(gap: np.ndarray, fps: float, envelope: np.ndarray) -> float:
    """Seconds by which the lip gap leads the envelope (positive: lips first), by peak cross-correlation.

    The gap is resampled to the envelope's 10 ms steps; lags up to `MAX_OFFSET_S` either way; the
    peak is refined by a parabola through its neighbours.
    """
    times = np.arange(envelope.shape[0]) * ENVELOPE_STEP_S
    lips = np.interp(times, np.arange(gap.shape[0]) / fps, gap)
    max_lag = int(MAX_OFFSET_S / ENVELOPE_STEP_S)
    lags = np.arange(-max_lag, max_lag + 1)
    scores = np.array([_correlation(lips, envelope, lag) for lag in lags])
    k = int(np.nanargmax(scores))
    shift = 0.0
    if 0 < k < len(lags) - 1 and np.isfinite(scores[k - 1 : k + 2]).all():
        a, b, c = scores[k - 1 : k + 2]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
    return float((lags[k] + shift) * ENVELOPE_STEP_S)


def _correlation(lips: np.ndarray, envelope: np.ndarray, lag: int) -> float:
    """Pearson r of lips[t] with envelope[t + lag] over their overlap."""
    if lag >= 0:
        a, b = lips[: lips.shape[0] - lag], envelope[lag:]
    else:
        a, b = lips[-lag:], envelope[: envelope.shape[0] + lag]
    if a.shape[0] < 3 or a.std() == 0 or b.std() == 0:
        return np.nan
    return float(np.corrcoef(a, b)[0, 1])


def closures(
    gap: np.ndarray, fps: float, intervals: list[Interval], closed_gap: float = CLOSED_GAP_M
) -> tuple[np.ndarray, np.ndarray]:
    """Per bilabial closure `[start, end]` s: whether the lips meet in it (gap <= `closed_gap`), and the timing error (s).

    Returns:
        `closed` `(K,)` bool and `error` `(K,)` float64: |time of the smallest gap within
        CLOSURE_SEARCH_S of the closure's centre - that centre|.
    """
    times = np.arange(gap.shape[0]) / fps
    closed, error = np.zeros(len(intervals), bool), np.zeros(len(intervals))
    for k, (start, end) in enumerate(intervals):
        inside = (times >= start - 0.5 / fps) & (times <= end + 0.5 / fps)
        closed[k] = bool(inside.any() and gap[inside].min() <= closed_gap)
        centre = 0.5 * (start + end)
        near = np.flatnonzero(np.abs(times - centre) <= CLOSURE_SEARCH_S + 0.5 / fps)
        error[k] = abs(_closing_time(gap, times, near) - centre) if near.size else np.nan
    return closed, error


def _closing_time(gap: np.ndarray, times: np.ndarray, near: np.ndarray) -> float:
    """Centre time of the run of frames (within `near`) at the smallest gap, to CLOSING_TOLERANCE_M."""
    k = int(near[np.argmin(gap[near])])
    lo, hi = k, k
    while lo - 1 >= near[0] and gap[lo - 1] <= gap[k] + CLOSING_TOLERANCE_M:
        lo -= 1
    while hi + 1 <= near[-1] and gap[hi + 1] <= gap[k] + CLOSING_TOLERANCE_M:
        hi += 1
    return 0.5 * (times[lo] + times[hi])


def pause_cores(silences: list[Interval], duration: float) -> list[Interval]:
    """Cores of the silences at least PAUSE_MIN_S long: trimmed by PAUSE_TRIM_S where they meet speech."""
    cores = []
    for start, end in silences:
        if end - start < PAUSE_MIN_S:
            continue
        lo = start + (PAUSE_TRIM_S if start > 0 else 0.0)
        hi = end - (PAUSE_TRIM_S if end < duration else 0.0)
        if hi > lo:
            cores.append((lo, hi))
    return cores


def pause_motion(lips: np.ndarray, rest: np.ndarray | None, fps: float, cores: list[Interval]) -> float:
    """Largest inner-lip distance (m) from rest `(L, 3)` (None: the lips' median over the frames of
    `cores`) over the frames of `cores`; 0 when no frame is in one."""
    times = np.arange(lips.shape[0]) / fps
    inside = np.zeros(lips.shape[0], bool)
    for start, end in cores:
        inside |= (times >= start) & (times <= end)
    if not inside.any():
        return 0.0
    rest = np.median(lips[inside], axis=0) if rest is None else rest
    return float(np.linalg.norm(lips[inside] - rest, axis=-1).max())


def jitter(lips: np.ndarray) -> float:
    """RMS (m) over frames and vertices of the second difference of `(T, L, 3)` lip positions."""
    if lips.shape[0] < 3:
        return 0.0
    accel = lips[2:] - 2.0 * lips[1:-1] + lips[:-2]
    return float(np.sqrt(np.mean(np.sum(accel**2, axis=-1))))


def lipsync_scores(
    gap: np.ndarray, lips: np.ndarray, geometry: LipGeometry, fps: float, audio: np.ndarray,
    bilabials: list[Interval], silences: list[Interval],
) -> dict[str, float | int]:
    """The report's figures (milliseconds, millimetres) from lip tracks, audio and the timing of bilabials and silences."""
    closed, error = closures(gap, fps, bilabials, geometry.closed_gap)
    duration = audio.shape[0] / SAMPLE_RATE
    return {
        "offset_ms": 1e3 * av_offset(gap, fps, speech_envelope(audio)),
        "closure_rate": float(closed.mean()) if len(bilabials) else float("nan"),
        "closure_error_ms": 1e3 * float(np.nanmean(error[closed])) if closed.any() else float("nan"),
        "pause_motion_mm": 1e3 * pause_motion(lips, None, fps, pause_cores(silences, duration)),
        "jitter_mm": 1e3 * jitter(lips),
        "bilabials": len(bilabials),
        "frames": int(gap.shape[0]),
    }


def phone_timings(phones: list[tuple[str, float, float]]) -> tuple[list[Interval], list[Interval]]:
    """Bilabial intervals and silence intervals of contiguous `(phone, start, end)` phones."""
    bilabials = [(s, e) for name, s, e in phones if name in BILABIALS]
    silences = [(s, e) for name, s, e in phones if name == SILENCE]
    return bilabials, silences


def load_vertex_sequence(path: str | Path, num_vertices: int) -> np.ndarray:
    """`(T, V, 3)` vertices from a .npy, memory-mapped; a one-line error for a missing, corrupt or mismatched file."""
    try:
        vertices = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TalkingFacesError(f"Cannot read the vertex sequence {path} ({exc}); pass a (T, V, 3) .npy such as render --save-vertices writes.") from None
    if vertices.ndim == 2 and vertices.shape[1] == 3 * num_vertices:
        vertices = vertices.reshape(vertices.shape[0], num_vertices, 3)
    if vertices.ndim != 3 or vertices.shape[1:] != (num_vertices, 3) or vertices.shape[0] < 1:
        raise TalkingFacesError(
            f"{path} has shape {vertices.shape}, but the identity has {num_vertices} vertices; pass a (T, {num_vertices}, 3) "
            "sequence, or the identity it was rendered on with --identity."
        )
    return vertices


def evaluate_render(
    audio: np.ndarray, vertices: np.ndarray, identity: Identity, fps: float, phones: list[tuple[str, float, float]],
) -> dict[str, float | int]:
    """Lip-sync figures of a `(T, V, 3)` render of `identity` at `fps` against `(N,)` 16 kHz audio and its phones."""
    geometry = lip_geometry(identity)
    gap, lips = lip_tracks(vertices, geometry)
    bilabials, silences = phone_timings(phones)
    return lipsync_scores(gap, lips, geometry, fps, audio, bilabials, silences)
