"""One-off conversion of the raw VOCASET release into the processed layout `vocaset.py` reads.

Raw release (voca.is.tue.mpg.de):
    data_verts.npy        (N, 5023, 3) float32, all frames of all sequences, 60 fps, metres
    raw_audio_fixed.pkl   subject -> sequence -> {'audio': int16 (S,), 'sample_rate': int}
    subj_seq_to_idx.pkl   subject -> sequence -> frame -> row of data_verts
    templates.pkl         subject -> (5023, 3)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from talking_faces.atomic import atomic_write
from talking_faces.errors import TalkingFacesError

from .safe_pickle import load_pickle

RAW_FILES = ("data_verts.npy", "raw_audio_fixed.pkl", "subj_seq_to_idx.pkl", "templates.pkl")


def _audio(raw_audio: dict, subject: str, sequence: str, source: Path) -> tuple[np.ndarray, int] | None:
    entry = raw_audio.get(subject, {}).get(sequence)
    if entry is None:
        return None
    if not isinstance(entry, dict) or "audio" not in entry or "sample_rate" not in entry:
        raise TalkingFacesError(f"{source}[{subject!r}][{sequence!r}] must be a dict with 'audio' and 'sample_rate'.")
    return np.asarray(entry["audio"]), int(entry["sample_rate"])


def convert_raw_vocaset(raw: Path, out: Path, on_sequence: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Write `out/wav`, `out/vertices_npy` and `out/templates.pkl` from the raw release in `raw`.

    Sequences present in only one of the audio and the frame index are skipped and counted.
    `on_sequence(name, total)` is called after each written sequence, for progress display.

    Returns:
        {"written": n, "skipped": m}
    """
    import soundfile

    missing = [name for name in RAW_FILES if not (raw / name).is_file()]
    if missing:
        raise TalkingFacesError(f"{raw} lacks {', '.join(missing)}; pass the folder of the raw VOCASET download.")
    verts = np.load(raw / "data_verts.npy", mmap_mode="r", allow_pickle=False)
    if verts.ndim != 3 or verts.shape[2] != 3:
        raise TalkingFacesError(f"{raw / 'data_verts.npy'}: expected (N, V, 3) frames, got {verts.shape}.")
    raw_audio = load_pickle(raw / "raw_audio_fixed.pkl")
    index = load_pickle(raw / "subj_seq_to_idx.pkl")
    (out / "wav").mkdir(parents=True, exist_ok=True)
    (out / "vertices_npy").mkdir(parents=True, exist_ok=True)
    pairs = [(s, q) for s in sorted(index) for q in sorted(index[s])]
    written = skipped = 0
    for subject, sequence in pairs:
        audio = _audio(raw_audio, subject, sequence, raw / "raw_audio_fixed.pkl")
        frames = index[subject][sequence]
        if audio is None or not frames:
            skipped += 1
            continue
        rows = np.asarray([frames[f] for f in sorted(frames)], dtype=np.int64)
        if rows.max() >= verts.shape[0] or rows.min() < 0:
            raise TalkingFacesError(
                f"{raw / 'subj_seq_to_idx.pkl'}[{subject!r}][{sequence!r}] points at frame {int(rows.max())}, "
                f"but data_verts.npy holds {verts.shape[0]}; the download is incomplete."
            )
        name = f"{subject}_{sequence}"
        motion = np.asarray(verts[rows]).reshape(len(rows), -1)
        atomic_write(out / "vertices_npy" / f"{name}.npy", lambda p: np.save(p, motion))
        samples, rate = audio
        atomic_write(out / "wav" / f"{name}.wav", lambda p: soundfile.write(str(p), samples, rate, format="WAV"))
        written += 1
        if on_sequence is not None:
            on_sequence(name, len(pairs))
    skipped += sum(1 for s in raw_audio for q in raw_audio[s] if q not in index.get(s, {}))
    atomic_write(out / "templates.pkl", lambda p: shutil.copyfile(raw / "templates.pkl", p))
    return {"written": written, "skipped": skipped}
