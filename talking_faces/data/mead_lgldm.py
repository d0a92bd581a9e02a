"""3D MEAD in the LG-LDM layout (EMOCA fits with identity removed; one FLAME template for everyone).

    root/FLAME_ALL/<pid>/<pid>-<emotion>-level_<n>-<nnn>.npz   `vertices` (T, 15069) or (T, 5023, 3) (or
                                                              another array of that shape), or
                                                              FLAME `expression` (T, 50) + `pose` (T, 6)
    root/AUDIO/<pid>/<emotion>/level_<n>/<nnn>.wav (or .m4a)
    root/mead_v2.csv (optional)   columns pid, emotion, intensity, flame_id, audio_id
    root/FLAME_template.npy       (5023, 3) template shared by all subjects (or FLAME_template.ply / .obj);
                                  without it, FLAME at zero parameters when a FLAME model is given

Emotion labels are MEAD folder names (angry, contempt, disgusted, fear, happy, neutral, sad,
surprised), mapped by name. The frame rate is not stated upstream; 25 fps is assumed (the model
pairs two 50 Hz audio frames per motion frame). Splits: test M037 M040, val M035 M039, train the
other 21 male IDs.
"""

from __future__ import annotations

import csv
import zipfile
from functools import partial
from pathlib import Path

import numpy as np

from talking_faces.errors import TalkingFacesError
from talking_faces.identity import load_identity

from .sequences import Sequence
from .common import (
    as_float, canonical_emotion, check_template, ensure_nonempty, fits_vertices, parse_int, require_dir, split_hint,
)
from .flame_params import flame_template, flame_vertices_loader

FPS = 25.0
TEMPLATE_FILES = ("FLAME_template.npy", "FLAME_template.ply", "FLAME_template.obj")
CSV_FILE = "mead_v2.csv"
CSV_COLUMNS = ("pid", "emotion", "intensity", "flame_id", "audio_id")
VERTEX_KEYS = ("vertices", "verts", "vertice", "vertex")
FLAME_KEYS = ("expression", "pose")
AUDIO_SUFFIXES = (".wav", ".m4a")
SPLITS = {
    "train": tuple("M003 M005 M007 M009 M011 M012 M013 M019 M022 M023 M024 M025 M026 M027 M028 M029 M030 M031 "
                   "M032 M033 M034".split()),
    "val": ("M035", "M039"),
    "test": ("M037", "M040"),
}
SPLIT_NAMES = (*SPLITS, "all")


def is_lgldm_layout(root: Path) -> bool:
    return (root / "FLAME_ALL").is_dir()


def _npz_vertex_key(path: Path, num_vertices: int) -> str | None:
    """The vertex array's key in an npz, checked from headers only; None when it holds only FLAME parameters.

    A key named in VERTEX_KEYS must have a vertex shape; otherwise any array of vertex shape is taken.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            shapes = {}
            for member_name in archive.namelist():
                with archive.open(member_name) as member:
                    version = np.lib.format.read_magic(member)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shapes[member_name.removesuffix(".npy")] = read(member)[0]
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise TalkingFacesError(f"Cannot read {path}: {exc}; the file is corrupt or not an .npz archive.") from None
    named = next((k for k in VERTEX_KEYS if k in shapes), None)
    if named is not None:
        if not fits_vertices(shapes[named], num_vertices):
            raise TalkingFacesError(
                f"{path}['{named}']: expected (T, {num_vertices * 3}) or (T, {num_vertices}, 3) vertices, got {shapes[named]}."
            )
        return named
    return next((k for k, shape in shapes.items() if k not in FLAME_KEYS and fits_vertices(shape, num_vertices)), None)


def _load_npz_vertices(path: Path, key: str, num_vertices: int) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            array = data[key]
    except Exception as exc:  # numpy and zipfile raise many types for damaged archives
        raise TalkingFacesError(f"Cannot read {path}['{key}']: {exc}; the file is truncated or corrupt.") from None
    return as_float(array.reshape(-1, num_vertices, 3))


def _shared_template(root: Path, flame_model: Path | None) -> np.ndarray:
    """The `(V, 3)` template of every subject: an .npy in its own precision, a PLY/OBJ mesh, or else FLAME at
    zero parameters (what LG-LDM's template is) when a FLAME model is given."""
    path = next((root / f for f in TEMPLATE_FILES if (root / f).is_file()), None)
    if path is None and flame_model is not None:
        return flame_template(flame_model)
    if path is None:
        raise TalkingFacesError(
            f"{root / TEMPLATE_FILES[0]} is missing; the LG-LDM layout needs the shared FLAME template (5023, 3) "
            f"as {', '.join(TEMPLATE_FILES)}, or --flame-model generic_model.pkl to use FLAME at zero parameters."
        )
    if path.suffix != ".npy":
        return load_identity(path).vertices
    try:
        template = as_float(np.load(path, allow_pickle=False))
    except Exception as exc:  # numpy raises many types for a corrupt file
        raise TalkingFacesError(f"Cannot read {path}: {exc}; the file is corrupt.") from None
    return check_template(template.reshape(-1, 3) if template.ndim == 1 else template, str(path))


def _entries(root: Path) -> list[tuple[str, str, str, str, str, Path]]:
    """(pid, emotion label, intensity, flame file name, audio id, where listed) for every sequence."""
    table = root / CSV_FILE
    if table.is_file():
        with table.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise TalkingFacesError(f"{table} lacks the columns {', '.join(missing)}; expected {', '.join(CSV_COLUMNS)}.")
            rows = []
            for row in reader:
                pid, emotion, level = row["pid"].strip(), row["emotion"].strip(), row["intensity"].strip()
                flame = row["flame_id"].strip()
                flame = flame if flame.endswith(".npz") else f"{pid}-{emotion}-{level}-{flame}.npz"
                rows.append((pid, emotion, level, flame, row["audio_id"].strip(), table))
            return rows
    rows = []
    for path in sorted(require_dir(root / "FLAME_ALL", "an LG-LDM 3D MEAD root holds FLAME_ALL/ and AUDIO/").glob("*/*.npz")):
        parts = path.stem.split("-")
        if len(parts) != 4 or parts[0] != path.parent.name:
            raise TalkingFacesError(f"{path}: expected a name like <pid>-<emotion>-level_<n>-<nnn>.npz inside FLAME_ALL/<pid>/.")
        rows.append((parts[0], parts[1], parts[2], path.name, parts[3], path))
    return rows


def _audio_path(root: Path, pid: str, emotion: str, level: str, audio_id: str, motion: Path) -> Path:
    folder = root / "AUDIO" / pid / emotion / level
    candidates = [folder / audio_id] if Path(audio_id).suffix else [folder / f"{audio_id}{s}" for s in AUDIO_SUFFIXES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise TalkingFacesError(f"{motion} has no audio; expected {' or '.join(str(c) for c in candidates)}.")


def read_mead_lgldm(root: Path, split: str = "test", flame_model: Path | None = None) -> list[Sequence]:
    """The sequences of one split (`train`, `val`, `test`, `all`), sorted by name."""
    require_dir(root / "FLAME_ALL", "an LG-LDM 3D MEAD root holds FLAME_ALL/ and AUDIO/")
    template = _shared_template(root, flame_model)
    sequences = []
    for pid, label, level, flame_name, audio_id, listed_in in ensure_nonempty(_entries(root), root, "FLAME_ALL sequences"):
        motion = root / "FLAME_ALL" / pid / flame_name
        if split != "all" and pid not in SPLITS[split]:
            continue
        if not motion.is_file():
            raise TalkingFacesError(f"{listed_in} lists {motion}, which is missing.")
        if not level.startswith("level_"):
            raise TalkingFacesError(f"{motion}: intensity {level!r} should read level_1, level_2 or level_3.")
        intensity = parse_int(level[len("level_"):], motion, "intensity level")
        emotion = canonical_emotion(label, motion)
        audio = _audio_path(root, pid, label, level, audio_id, motion)
        key = _npz_vertex_key(motion, template.shape[0])
        if key is None:
            load = flame_vertices_loader(motion, flame_model)
        else:
            load = partial(_load_npz_vertices, motion, key, template.shape[0])
        sequences.append(Sequence(
            name=motion.stem, subject=pid, audio_path=audio, template=template, fps=FPS, load_vertices=load,
            emotion=emotion, intensity=intensity, sentence=flame_name.rsplit("-", 1)[-1].removesuffix(".npz"),
        ))
    sequences.sort(key=lambda s: s.name)
    hint = split_hint(split, f"IDs {' '.join(SPLITS.get(split, ()))}")
    return ensure_nonempty(sequences, root, f"sequences of the {split} split", hint)
