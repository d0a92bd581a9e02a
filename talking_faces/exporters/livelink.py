"""ARKit-52 curves in the CSV layout of Epic's Live Link Face app (Unreal Live Link, MetaHuman, ARKit rigs).

Columns: `Timecode` (HH:MM:SS:FF.mmm, frames at the curve rate), `BlendShapeCount` (61), the 52
ARKit shapes in the app's order and capitalisation, then head and eye rotations (written as 0:
the animation has no head motion, and gaze is in the eyeLook curves).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from talking_faces.arkit import ARKIT_NAMES
from talking_faces.atomic import atomic_write

SHAPE_COLUMNS: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft", "EyeWideLeft",
    "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight",
    "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight", "MouthLeft",
    "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight",
    "MouthStretchLeft", "MouthStretchRight", "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
    "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight",
    "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)
POSE_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER = ("Timecode", "BlendShapeCount") + SHAPE_COLUMNS + POSE_COLUMNS


def timecode(frame: int, fps: float) -> str:
    """`HH:MM:SS:FF.mmm` of a frame: whole frames within the second, then the sub-frame fraction."""
    seconds = frame / fps
    whole = int(np.floor(seconds + 1e-9))
    within = (seconds - whole) * fps
    ff = int(np.floor(within + 1e-6))
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}:{ff:02d}.{int(round((within - ff) * 1000)) % 1000:03d}"


def write_live_link_csv(path: str | Path, curves: np.ndarray, fps: float) -> None:
    """Write ARKit curves `(T, 52)` (in `arkit.ARKIT_NAMES` order) as a Live Link Face CSV, atomically."""
    order = [ARKIT_NAMES.index(name[0].lower() + name[1:]) for name in SHAPE_COLUMNS]
    rows = np.asarray(curves, dtype=np.float64)[:, order]

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for t, row in enumerate(rows):
                writer.writerow([timecode(t, fps), len(SHAPE_COLUMNS) + len(POSE_COLUMNS)] + [f"{v:.6f}" for v in row] + ["0"] * len(POSE_COLUMNS))

    atomic_write(path, write)


def read_live_link_csv(path: str | Path) -> dict[str, np.ndarray]:
    """The curves of a Live Link Face CSV: column name -> `(T,)` float64 (Timecode excluded)."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    return {name: np.asarray([float(r[k]) for r in body]) for k, name in enumerate(header) if name != "Timecode"}
