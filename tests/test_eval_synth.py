"""Builders of tiny synthetic datasets, region files and predictions for the eval tests (no tests here)."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import soundfile
import torch

V = 30  # vertices of the synthetic meshes
LIPS = np.array([3, 4, 5, 6, 6, 7])  # duplicated entry, as FLAME's lips list has
FOREHEAD = np.array([10, 11, 12, 13])
EYES = np.array([12, 13, 14, 15, 16])  # overlaps the forehead
VOCA_TEST = ("FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA")
VOCA_TRAIN = "FaceTalk_170728_03272_TA"


def write_masks(path: Path) -> Path:
    masks = {"lips": LIPS, "forehead": FOREHEAD, "eye_region": EYES, "nose": np.array([1, 2])}
    path.write_bytes(pickle.dumps(masks, protocol=2))
    return path


def write_wav(path: Path, seconds: float, rate: int = 16_000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * rate))
    soundfile.write(str(path), samples.astype(np.float32), rate)
    return path


def template(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=0.1, size=(V, 3))


def motion(frames: int, seed: int, base: np.ndarray) -> np.ndarray:
    """`(T, V, 3)` float64 smooth-ish motion around `base`."""
    rng = np.random.default_rng(seed)
    return base + np.cumsum(rng.normal(scale=1e-3, size=(frames, V, 3)), axis=0)


def write_vocaset(root: Path, sentences=(21, 22), frames60: int = 24, extra_train: bool = True) -> dict[str, np.ndarray]:
    """Processed VOCASET layout; returns name -> 60 fps `(T60, V, 3)` ground truth."""
    (root / "vertices_npy").mkdir(parents=True)
    subjects = list(VOCA_TEST) + ([VOCA_TRAIN] if extra_train else [])
    templates = {s: template(i) for i, s in enumerate(subjects)}
    truth = {}
    for i, subject in enumerate(subjects):
        for j, sentence in enumerate(sentences):
            name = f"{subject}_sentence{sentence:02d}"
            gt = motion(frames60 + 2 * j + i, 100 * i + j, templates[subject])
            np.save(root / "vertices_npy" / f"{name}.npy", gt.reshape(gt.shape[0], -1))
            write_wav(root / "wav" / f"{name}.wav", gt.shape[0] / 60, seed=j)
            truth[name] = gt
    (root / "templates.pkl").write_bytes(pickle.dumps(templates, protocol=2))
    return truth


def write_predictions(folder: Path, truth60: dict[str, np.ndarray], conditions=("A", "B"), seed: int = 7) -> dict:
    """Predictions near the 30 fps ground truth, some longer and some shorter; returns (name, cond) -> array."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    preds = {}
    for k, (name, gt60) in enumerate(sorted(truth60.items())):
        gt = gt60[::2]
        for c, condition in enumerate(conditions):
            length = gt.shape[0] + (3 if (k + c) % 2 else -2)  # longer or shorter than the truth
            pred = np.concatenate([gt, gt[-1:].repeat(5, axis=0)])[:length] + rng.normal(scale=2e-3, size=(length, V, 3))
            flat = (k + c) % 3 == 0  # both (T, V*3) and (T, V, 3) files
            np.save(folder / f"{name}_condition_{condition}.npy", pred.reshape(length, -1) if flat else pred)
            preds[(name, condition)] = pred
    return preds


def write_mead_emote(root: Path, vertex_dir: str = "vertex") -> list[str]:
    """ProbTalk3D-style: root/vertex, root/wav, templates in the parent folder."""
    names = ["M003_037_0_0", "M003_028_6_2", "M003_001_1_0", "M037_005_3_1"]
    templates = {"M003": template(0), "M037": template(1)}
    for k, name in enumerate(names):
        gt = motion(10 + k, k, templates[name[:4]])
        (root / vertex_dir).mkdir(parents=True, exist_ok=True)
        np.save(root / vertex_dir / f"{name}.npy", gt.reshape(gt.shape[0], -1).astype(np.float32))
        write_wav(root / "wav" / f"{name}.wav", gt.shape[0] / 25)
    as_tensors = {k: torch.from_numpy(v) for k, v in templates.items()}  # ProbTalk3D pickles torch tensors
    (root.parent / "templates_mead_vert.pkl").write_bytes(pickle.dumps(as_tensors))
    return names


def write_mead_lgldm(root: Path, with_csv: bool = False) -> list[tuple[str, str, str]]:
    root.mkdir(parents=True)
    np.save(root / "FLAME_template.npy", template(5).reshape(-1))
    entries = [("M037", "surprised", "001"), ("M040", "angry", "002"), ("M003", "happy", "001")]
    for k, (pid, emotion, nnn) in enumerate(entries):
        folder = root / "FLAME_ALL" / pid
        folder.mkdir(parents=True, exist_ok=True)
        gt = motion(8 + k, k, template(5))
        np.savez(folder / f"{pid}-{emotion}-level_3-{nnn}.npz", vertices=gt.reshape(gt.shape[0], -1),
                 expression=np.zeros((gt.shape[0], 50)), pose=np.zeros((gt.shape[0], 6)))
        write_wav(root / "AUDIO" / pid / emotion / "level_3" / f"{nnn}.wav", gt.shape[0] / 25)
    if with_csv:
        with (root / "mead_v2.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["pid", "emotion", "intensity", "flame_id", "audio_id"])
            for pid, emotion, nnn in entries:
                writer.writerow([pid, emotion, "level_3", nnn, f"{nnn}.wav"])
    return entries
