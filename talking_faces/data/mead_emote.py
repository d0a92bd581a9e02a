"""3D MEAD in the EMOTE / ProbTalk3D layout (EMICA reconstructions re-packed per sequence, 25 fps).

    root/vertex/<ID>_<sent>_<emo>_<int>.npy     (T, 15069) vertices, metres (also vertices_npy/, vertices/,
                                                or any other one folder of such files)
    root/param/<ID>_<sent>_<emo>_<int>.npy      (1, T, 403) FLAME shape 300 + expression 100 + jaw 3
    root/wav/<ID>_<sent>_<emo>_<int>.wav
    root/templates_mead_vert.pkl (or templates.pkl, or one *template*.pkl; here or in the parent folder):
        ID -> (5023, 3)

`<emo>` is the AffectNet index (0 neutral, 1 happy, 2 sad, 3 surprised, 4 fear, 5 disgusted, 6 angry,
7 contempt) or an emotion name; `<int>` is 0/1/2 for MEAD level_1/2/3.
Splits: `train`/`val`/`test` are EMOTE's identity split (32 / 7 / 8 IDs, every sentence), whose test
IDs include LG-LDM's; `pred-train`/`pred-val`/`pred-test` are ProbTalk3D's prediction split, its 32
training IDs divided by sentence (neutral 1-32 / 33-36 / 37-40, emotional 1-24 / 25-27 / 28-30).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from talking_faces.errors import TalkingFacesError

from .sequences import Sequence
from .common import (
    canonical_emotion, ensure_nonempty, first_existing, load_templates, load_vertex_file, parse_int, require_dir,
    split_hint, template_for, vertex_array_shape,
)
from .flame_params import flame_vertices_loader

FPS = 25.0
AFFECTNET_ORDER = ("neutral", "happy", "sad", "surprised", "fear", "disgusted", "angry", "contempt")
VERTEX_DIRS = ("vertex", "vertices_npy", "vertices")
TEMPLATE_FILES = ("templates_mead_vert.pkl", "templates.pkl")
IDENTITY_SPLITS = {
    "train": tuple(
        "M003 M005 M007 M009 M011 M012 M013 M019 M022 M023 M024 M025 M026 M027 M028 M029 M030 M031 "
        "W009 W011 W014 W015 W016 W018 W019 W021 W023 W024 W025 W026 W028 W029".split()
    ),
    "val": tuple("M032 M033 M034 M035 W033 W035 W036".split()),
    "test": tuple("M037 M039 M040 M041 M042 W037 W038 W040".split()),
}
# ProbTalk3D's split -> sentence ranges (neutral, emotional) within the identity split's training IDs
SENTENCE_SPLITS = {"pred-train": ((1, 32), (1, 24)), "pred-val": ((33, 36), (25, 27)), "pred-test": ((37, 40), (28, 30))}
SPLIT_NAMES = (*IDENTITY_SPLITS, *SENTENCE_SPLITS, "all")


def in_split(subject: str, sentence: int, emotion: str, split: str) -> bool:
    if split == "all":
        return True
    if split in IDENTITY_SPLITS:
        return subject in IDENTITY_SPLITS[split]
    neutral, emotional = SENTENCE_SPLITS[split]
    first, last = neutral if emotion == "neutral" else emotional
    return subject in IDENTITY_SPLITS["train"] and first <= sentence <= last


def _members(split: str) -> str:
    if split in SENTENCE_SPLITS:
        neutral, emotional = SENTENCE_SPLITS[split]
        return f"ProbTalk3D's 32 IDs x sentences {neutral} (neutral) / {emotional} (emotional)"
    return f"IDs {' '.join(IDENTITY_SPLITS[split])}" if split in IDENTITY_SPLITS else "every sequence"


def _motion_dir(root: Path) -> Path:
    """`vertex/` (or a known alias), else the one other folder of `.npy` files, else `param/`."""
    for name in VERTEX_DIRS:
        if (root / name).is_dir():
            return root / name
    others = sorted(d for d in root.iterdir() if d.is_dir() and d.name not in ("wav", "param") and any(d.glob("*.npy")))
    if len(others) == 1:
        return others[0]
    return first_existing([root / "param"], f"motion folder ({', '.join(VERTEX_DIRS)} or param/) in {root}")


def _templates_file(root: Path) -> Path:
    bases = (root, root.parent)
    named = [base / f for base in bases for f in TEMPLATE_FILES]
    found = [p for p in named if p.is_file()] or [p for base in bases for p in sorted(base.glob("*template*.pkl"))]
    return found[0] if found else first_existing(named, "templates pickle")


def _emotion(label: str, source: Path) -> str:
    if label.isdigit():
        if int(label) >= len(AFFECTNET_ORDER):
            raise TalkingFacesError(f"{source}: emotion index {label} is out of range; expected 0..7 (AffectNet order).")
        label = AFFECTNET_ORDER[int(label)]
    return canonical_emotion(label, source)


def is_emote_layout(root: Path) -> bool:
    return (root / "wav").is_dir()


def read_mead_emote(root: Path, split: str = "test", flame_model: Path | None = None) -> list[Sequence]:
    """The sequences of one split, sorted by name; vertex files are preferred over parameter files."""
    wav_dir = require_dir(root / "wav", "an EMOTE-style 3D MEAD root holds wav/ and vertex/ (or param/)")
    motion_dir = _motion_dir(root)
    is_param = motion_dir.name == "param"
    templates_path = _templates_file(root)
    templates = load_templates(templates_path)
    motions = sorted(motion_dir.glob("*.npy"))
    ensure_nonempty(motions, motion_dir, ".npy motion files")
    motion_stems = {m.stem for m in motions}
    for wav in sorted(wav_dir.glob("*.wav")):
        if wav.stem not in motion_stems:
            raise TalkingFacesError(f"{wav} has no motion; expected {motion_dir / (wav.stem + '.npy')}.")
    sequences = []
    for motion in motions:
        parts = motion.stem.split("_")
        if len(parts) != 4:
            raise TalkingFacesError(f"{motion}: expected a name like <ID>_<sentence>_<emotion>_<intensity>.npy.")
        subject, sentence_text, emo, level = parts
        emotion = _emotion(emo, motion)
        sentence = parse_int(sentence_text, motion, "sentence number")
        intensity = parse_int(level, motion, "intensity") + 1
        if not 1 <= intensity <= 3:
            raise TalkingFacesError(f"{motion}: intensity {level} is out of range; expected 0, 1 or 2 (level_1..3).")
        if not in_split(subject, sentence, emotion, split):
            continue
        wav = wav_dir / f"{motion.stem}.wav"
        if not wav.is_file():
            raise TalkingFacesError(f"{motion} has no audio; expected {wav}.")
        template = template_for(templates, subject, templates_path, motion)
        if is_param:
            load = flame_vertices_loader(motion, flame_model)
        else:
            vertex_array_shape(motion, template.shape[0])
            load = partial(load_vertex_file, motion, template.shape[0])
        sequences.append(Sequence(
            name=motion.stem, subject=subject, audio_path=wav, template=template, fps=FPS, load_vertices=load,
            emotion=emotion, intensity=intensity, sentence=sentence_text,
        ))
    return ensure_nonempty(sequences, root, f"sequences of the {split} split", split_hint(split, _members(split)))
