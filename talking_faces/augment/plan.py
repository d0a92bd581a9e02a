"""The sample plan: everything about image i (identity, AU weights, pose, light, skin, background),
drawn from its own generator seeded by (seed, i), so the set is the same for any worker count or
order, an interrupted run resumes exactly, and a larger --count only appends samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from talking_faces.render import LIGHTS, Lighting

from .prior import AUPrior

# Skin albedos (linear RGB) run from light to dark, interpolated per channel in log space (melanin
# absorbs multiplicatively): albedo = LIGHT^(1-t) * DARK^t, t uniform in [0, 1], then a 5% jitter per channel.
SKIN_LIGHT = np.array([0.80, 0.50, 0.38], dtype=np.float32)
SKIN_DARK = np.array([0.09, 0.045, 0.03], dtype=np.float32)
BACKGROUNDS = ("solid", "gradient", "blobs")
BACKDROP_GRID = 9  # colours a side of a gradient or blobs background; GL blends linearly between them
# Lights, relative to the renderer's default rig: key light azimuth/elevation ranges (degrees) and
# intensity; fill and rim intensities; ambient.
KEY_AZIMUTH, KEY_ELEVATION, KEY_INTENSITY = (-60.0, 60.0), (-15.0, 60.0), (1.6, 3.4)
FILL_INTENSITY, RIM_INTENSITY, AMBIENT_RANGE = (0.15, 0.8), (0.6, 1.8), (0.04, 0.16)


@dataclass(frozen=True)
class Views:
    """Ranges of the sampled views: head rotations uniform in [-max, max] degrees."""

    yaw: float = 30.0
    pitch: float = 15.0
    roll: float = 10.0


@dataclass(frozen=True)
class Sample:
    """One planned image.

    Attributes:
        index: position in the set; `stem` is its file name without suffix.
        identity: index into the run's identity list.
        weights: `(32,)` float32 AU weights (AUBlendSet order), rounded as written to labels.csv.
        yaw, pitch, roll: head rotation in degrees (rounded to 0.01, as written).
        lighting: the lights of this image.
        skin: `(3,)` linear-RGB skin albedo.
        background: `(kind, (2, 3) colours in [0, 1], seed)`.
    """

    index: int
    identity: int
    weights: np.ndarray
    yaw: float
    pitch: float
    roll: float
    lighting: Lighting
    skin: np.ndarray
    background: tuple[str, np.ndarray, int]

    @property
    def stem(self) -> str:
        return f"{self.index:07d}"


def plan_sample(index: int, seed: int, num_identities: int, prior: AUPrior, views: Views) -> Sample:
    """Sample `index` of the set drawn with `seed`; the draws are made in a fixed order."""
    rng = np.random.default_rng([seed, 0, index])
    identity = int(rng.integers(num_identities))
    weights = prior.sample(rng)
    yaw, pitch, roll = (round(float(rng.uniform(-limit, limit)), 2) for limit in (views.yaw, views.pitch, views.roll))
    lighting = _lighting(rng)
    darkness = rng.uniform(0.0, 1.0)
    tone = SKIN_LIGHT ** (1 - darkness) * SKIN_DARK ** darkness * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    colours = rng.uniform(0.05, 0.95, (2, 3))
    return Sample(index, identity, weights, yaw, pitch, roll, lighting, np.clip(tone, 0.0, 1.0),
                  (kind, colours, int(rng.integers(2**31))))


def _direction(azimuth: float, elevation: float) -> tuple[float, float, float]:
    a, e = math.radians(azimuth), math.radians(elevation)
    return (math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e))


def _lighting(rng: np.random.Generator) -> Lighting:
    """A key light anywhere in front, a fill from the other side, the default rim light, and ambient."""
    azimuth = rng.uniform(*KEY_AZIMUTH)
    key = (_direction(azimuth, rng.uniform(*KEY_ELEVATION)), rng.uniform(*KEY_INTENSITY))
    fill = (_direction(-0.8 * azimuth, rng.uniform(-10.0, 20.0)), rng.uniform(*FILL_INTENSITY))
    rim = (LIGHTS[2][0], rng.uniform(*RIM_INTENSITY))
    return Lighting.from_pairs((key, fill, rim), ambient=rng.uniform(*AMBIENT_RANGE))


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """`(3, 3)` head rotation, degrees: yaw about y (positive turns the face to its left, +x), then
    pitch about x (positive lifts the face upwards), then roll about z (positive tilts the top to its right)."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    about_y = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    about_x = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    about_z = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return about_z @ about_x @ about_y


def backdrop(background: tuple[str, np.ndarray, int]) -> np.ndarray:
    """What `FaceRenderer.set_background` takes: the `(3,)` colour of a solid background, else `(n, n, 3)`
    colours on a `BACKDROP_GRID` grid, which GL blends linearly across the frame: `gradient`, a
    bilinear blend of random corner colours, or `blobs`, a bicubic blend of a random 4 x 4 grid."""
    from PIL import Image

    kind, colours, seed = background
    if kind == "solid":
        return colours[0]
    cells, resample = (2, Image.BILINEAR) if kind == "gradient" else (4, Image.BICUBIC)
    mix = np.random.default_rng(seed).uniform(0.0, 1.0, (cells, cells, 1))
    grid = np.round((colours[0] * (1 - mix) + colours[1] * mix) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(grid).resize((BACKDROP_GRID, BACKDROP_GRID), resample), dtype=np.float32) / 255
