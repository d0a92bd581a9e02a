"""VOCASET in the processed layout FaceFormer and its successors read.

    root/wav/{subject}_sentenceNN.wav
    root/vertices_npy/{subject}_sentenceNN.npy    (T60, 15069) at 60 fps, metres
    root/templates.pkl                            latin1 pickle: subject -> (5023, 3)

Ground truth is used at 30 fps (every second frame). Splits are FaceFormer's.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from talking_faces.errors import TalkingFacesError

from .sequences import Sequence
from .common import (
    ensure_nonempty, load_templates, load_vertex_file, parse_int, require_dir, split_hint, template_for, vertex_array_shape,
)

FPS = 30.0
CAPTURE_STEP = 2  # 60 fps capture -> 30 fps
TRAIN_SUBJECTS = (
    "FaceTalk_170728_03272_TA", "FaceTalk_170904_00128_TA", "FaceTalk_170725_00137_TA", "FaceTalk_170915_00223_TA",
    "FaceTalk_170811_03274_TA", "FaceTalk_170913_03279_TA", "FaceTalk_170904_03276_TA", "FaceTalk_170912_03278_TA",
)
VAL_SUBJECTS = ("FaceTalk_170811_03275_TA", "FaceTalk_170908_03277_TA")
TEST_SUBJECTS = ("FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA")
# split -> (subjects, first sentence, last sentence)
SPLITS: dict[str, tuple[tuple[str, ...], int, int]] = {
    "train": (TRAIN_SUBJECTS, 1, 40),
    "val": (VAL_SUBJECTS, 21, 40),
    "test": (TEST_SUBJECTS, 21, 40),
}
SPLIT_NAMES = (*SPLITS, "all")
LAYOUT = "a processed VOCASET root holds wav/, vertices_npy/ and templates.pkl"


def in_split(subject: str, sentence: int, split: str) -> bool:
    if split == "all":
        return True
    subjects, first, last = SPLITS[split]
    return subject in subjects and first <= sentence <= last


def read_vocaset(root: Path, split: str = "test") -> list[Sequence]:
    """The sequences of one split (`train`, `val`, `test` or `all`), sorted by name."""
    wav_dir = require_dir(root / "wav", LAYOUT)
    vert_dir = require_dir(root / "vertices_npy", LAYOUT)
    templates_path = root / "templates.pkl"
    if not templates_path.is_file():
        raise TalkingFacesError(f"{templates_path} is missing; {LAYOUT}.")
    templates = load_templates(templates_path)
    wavs = {p.stem: p for p in wav_dir.glob("*.wav")}
    ensure_nonempty(list(wavs), wav_dir, ".wav files")
    for vert in sorted(vert_dir.glob("*.npy")):
        if vert.stem not in wavs:
            raise TalkingFacesError(f"{vert} has no audio; expected {wav_dir / (vert.stem + '.wav')}.")
    sequences = []
    for name in sorted(wavs):
        if "_" not in name:
            raise TalkingFacesError(f"{wavs[name]}: expected a name like <subject>_sentenceNN.wav.")
        subject = name.rsplit("_", 1)[0]
        sentence = parse_int(name[-2:], wavs[name], "sentence number")
        if not in_split(subject, sentence, split):
            continue
        vert = vert_dir / f"{name}.npy"
        if not vert.is_file():
            raise TalkingFacesError(f"{wavs[name]} has no vertices; expected {vert}.")
        template = template_for(templates, subject, templates_path, vert)
        vertex_array_shape(vert, template.shape[0])
        sequences.append(Sequence(
            name=name, subject=subject, audio_path=wavs[name], template=template, fps=FPS,
            load_vertices=partial(load_vertex_file, vert, template.shape[0], CAPTURE_STEP),
            emotion=None, intensity=None, sentence=f"{sentence:02d}",
        ))
    subjects, first, last = SPLITS.get(split, (("any subject",), 1, 40))
    hint = split_hint(split, f"{', '.join(subjects)} x sentences {first}-{last}")
    return ensure_nonempty(sequences, root, f"sequences of the {split} split", hint)
