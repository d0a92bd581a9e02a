"""Identity sources of `talkface augment`: recipes that build a neutral mesh and its 32 AU bases.

A source is a small picklable recipe, so each worker process (or Ray actor) rebuilds the identities
it renders instead of receiving megabytes of bases:

- `CharacterSource`: the bundled character with its shape varied procedurally (`vary_character`),
  rigged by the procedural AU rig on the varied head's landmarks;
- `MeshSource`: a mesh file, with bases from an AUBlendSet file, AUBlendNet, or the rig
  (`talking_faces.basis_sources.resolve_basis`);
- `AUBlendSetSource`: an AUBlendSet identity (template row and 32 targets), drawn with the faces
  of a mesh of the same topology;
- `FlameSource`: a random FLAME head (identity coefficients drawn from the user's FLAME model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from talking_faces.appearance import vertex_albedo
from talking_faces.aus import NUM_AUS
from talking_faces.basis import load_aublendset
from talking_faces.basis_sources import resolve_basis
from talking_faces.character import default_character_landmarks, load_default_character
from talking_faces.errors import TalkingFacesError
from talking_faces.identity import Identity, load_identity
from talking_faces.landmarks import Landmarks, find_landmarks
from talking_faces.rig import rig_offsets, smoothstep

# Landmarks projected by --landmarks: the rig's points on the surface or at the eyeball centres
# (the jaw hinges lie inside the head and are left out).
PROJECTED_LANDMARKS: tuple[str, ...] = (
    "eye_centre_l", "eye_centre_r", "eye_inner_l", "eye_inner_r", "eye_outer_l", "eye_outer_r",
    "brow_inner_l", "brow_inner_r", "brow_mid_l", "brow_mid_r", "brow_outer_l", "brow_outer_r",
    "nose_tip", "ala_l", "ala_r", "mouth_corner_l", "mouth_corner_r", "upper_lip_centre", "lower_lip_centre", "chin",
)
# The mouth's inside (`mouth_interior`, fitted on renders of wide-open mouths at the default poses):
# half-widths at the nose tip (x the mouth's half-width), at its widest (the mouth's half-width + x eye
# distances) and below the chin (x the mouth's); where it is widest (fraction of the way from the
# mouth corners down to the chin); in eye distances, how far below the chin and behind the mouth
# corners it lies.
INTERIOR_WIDTH, INTERIOR_WIDEST, INTERIOR_BELOW_CHIN, INTERIOR_DEPTH = (1.0, 0.45, 1.0), 0.7, 0.2, 0.6
FLAME_SHAPE_COMPONENTS = 50  # identity coefficients drawn for a random FLAME head
FLAME_SHAPE_SIGMA = 1.0  # their spread, in the model's (unit-variance) coefficient units


@dataclass
class FaceIdentity:
    """One identity ready to render.

    Attributes:
        name: folder-safe name (labels.csv `identity`, `identities/<name>/`).
        neutral: `(V, 3)` float32 neutral mesh M0.
        faces: `(F, 3)` int64 triangles.
        offsets: `(32, V, 3)` float32 AU bases, AUBlendSet order.
        albedo: `(V, 3)` float32 linear-RGB base colours (skin, lips, eyes).
        skin: `(V,)` bool, the vertices a skin tone tints (all but the eyeballs).
        frame_box: `(2, 3)` corners of the box the camera frames (the face when landmarks are known).
        pivot: `(3,)` centre of the head rotations.
        anchors: landmark name -> vertex indices whose mean displacement moves it, or None without landmarks.
        anchor_points: `(K, 3)` neutral positions of `PROJECTED_LANDMARKS`, or None.
        interior: `(4, 3)` corners of the dark quad inside the head seen through an open mouth
            (`FaceRenderer.set_interior`), or None without landmarks.
    """

    name: str
    neutral: np.ndarray
    faces: np.ndarray
    offsets: np.ndarray
    albedo: np.ndarray
    skin: np.ndarray
    frame_box: np.ndarray
    pivot: np.ndarray
    anchors: dict[str, np.ndarray] | None
    anchor_points: np.ndarray | None
    interior: np.ndarray | None = None

    def landmark_positions(self, offsets: np.ndarray) -> np.ndarray:
        """`(K, 3)` positions of `PROJECTED_LANDMARKS` for a displacement `(V, 3)` from the neutral (`anchors` set)."""
        moved = np.stack([offsets[self.anchors[name]].mean(axis=0) for name in PROJECTED_LANDMARKS])
        return self.anchor_points + moved


def assemble(name: str, neutral: np.ndarray, faces: np.ndarray | None, offsets: np.ndarray,
             landmarks: Landmarks | None) -> FaceIdentity:
    """A FaceIdentity from its mesh, bases and (if known) landmarks; without landmarks the whole mesh is framed."""
    if faces is None or len(faces) == 0:
        raise TalkingFacesError(f"Identity {name} has no faces to render; give it as OBJ, PLY or NPZ with triangles.")
    neutral = np.asarray(neutral, dtype=np.float32)
    if offsets.shape != (NUM_AUS, *neutral.shape):
        raise TalkingFacesError(f"Identity {name}: bases of shape {offsets.shape} do not fit its {len(neutral)} vertices; "
                                "give bases made for this mesh.")
    skin = np.ones(len(neutral), dtype=bool)
    if landmarks is None:
        low, high = neutral.min(axis=0), neutral.max(axis=0)
        return FaceIdentity(name, neutral, faces, offsets.astype(np.float32), vertex_albedo(neutral, faces, None),
                            skin, np.stack([low, high]), (low + high) / 2, None, None)
    for side in ("l", "r"):
        skin[landmarks.indices[f"eyeball_{side}"]] = False
    points = landmarks.points
    eye = landmarks.eye_distance
    eyes = 0.5 * (points["eye_centre_l"] + points["eye_centre_r"])
    # A face crop, as AU datasets use: forehead to below the chin, cheek to cheek.
    low = np.array([eyes[0] - 1.35 * eye, points["chin"][1] - 0.3 * eye, eyes[2] - 0.2 * eye])
    high = np.array([eyes[0] + 1.35 * eye, eyes[1] + 1.25 * eye, points["nose_tip"][2]])
    pivot = np.array([eyes[0], 0.5 * (low[1] + high[1]), eyes[2] - 1.3 * eye])  # about the head's centre
    anchors, anchor_points = {}, []
    for landmark in PROJECTED_LANDMARKS:
        if landmark.startswith("eye_centre"):
            anchors[landmark] = landmarks.indices[f"eyeball_{landmark[-1]}"]
        else:
            anchors[landmark] = np.array([np.argmin(np.linalg.norm(neutral - points[landmark], axis=1))])
        anchor_points.append(points[landmark])
    return FaceIdentity(name, neutral, np.asarray(faces, dtype=np.int64), offsets.astype(np.float32),
                        vertex_albedo(neutral, faces, landmarks), skin, np.stack([low, high]), pivot, anchors,
                        np.asarray(anchor_points, dtype=np.float64), mouth_interior(points, eye))


def mouth_interior(points: dict[str, np.ndarray], eye: float) -> np.ndarray:
    """`(6, 3)` corners of a flat hexagon across the head behind the mouth, facing forwards, in order
    around it: widest between mouth and chin, to fill the views through a fully open mouth at the
    sampled head poses, and narrower above and below, to stay inside the head everywhere else."""
    centre_x = 0.5 * (points["mouth_corner_l"][0] + points["mouth_corner_r"][0])
    mouth = 0.5 * abs(points["mouth_corner_l"][0] - points["mouth_corner_r"][0])
    mouth_y = 0.5 * (points["mouth_corner_l"][1] + points["mouth_corner_r"][1])
    top, bottom = points["nose_tip"][1], points["chin"][1] - INTERIOR_BELOW_CHIN * eye
    depth = 0.5 * (points["mouth_corner_l"][2] + points["mouth_corner_r"][2]) - INTERIOR_DEPTH * eye
    widest = mouth_y + INTERIOR_WIDEST * (points["chin"][1] - mouth_y)
    rows = [(top, mouth * INTERIOR_WIDTH[0]), (widest, mouth + INTERIOR_WIDTH[1] * eye), (bottom, mouth * INTERIOR_WIDTH[2])]
    side = [(centre_x - half, y) for y, half in rows] + [(centre_x + half, y) for y, half in rows[::-1]]
    return np.array([[x, y, depth] for x, y in side])


def _gauss(points: np.ndarray, centre: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.sum(((points[:, :2] - centre[:2]) / sigma) ** 2, axis=1))


def vary_character(vertices: np.ndarray, landmarks: Landmarks, rng: np.random.Generator) -> tuple[np.ndarray, Landmarks]:
    """A new head `(V, 3)` and its landmarks: the character's shape varied by smooth symmetric warps.

    Proportions (width, height, depth), jaw and forehead width, and the relief of nose, cheeks, chin
    and brows change; the eyeballs only follow the proportions, so they stay round enough to turn.
    Landmark points move with the same warp, so the rig fits the new head exactly.
    """
    lm = landmarks.points
    eye = landmarks.eye_distance
    eyes = 0.5 * (lm["eye_centre_l"] + lm["eye_centre_r"])
    mouth_y = 0.5 * (lm["mouth_corner_l"][1] + lm["mouth_corner_r"][1])
    brow_y = lm["brow_mid_l"][1]
    scale = np.array([rng.uniform(0.9, 1.1), rng.uniform(0.93, 1.07), rng.uniform(0.93, 1.07)])
    jaw, forehead = rng.uniform(-0.12, 0.12), rng.uniform(-0.08, 0.08)
    nose, cheeks, chin, brows = (rng.uniform(lo, hi) * eye for lo, hi in ((-0.06, 0.1), (-0.05, 0.08), (-0.08, 0.08), (-0.03, 0.05)))
    centre = np.array([landmarks.symmetry_x, eyes[1], eyes[2] - 1.3 * eye])

    def warp(points: np.ndarray, relief: np.ndarray) -> np.ndarray:
        """Warped copies of `(n, 3)` points; `relief (n,)` is 1 where the facial relief changes (skin)."""
        x = points[:, 0] - centre[0]
        width = 1.0 + jaw * smoothstep(mouth_y + 0.2 * eye, lm["chin"][1], points[:, 1]) \
            + forehead * smoothstep(brow_y, brow_y + 0.8 * eye, points[:, 1])
        front = smoothstep(eyes[2] - 0.6 * eye, eyes[2], points[:, 2]) * relief
        depth = (nose * _gauss(points, lm["nose_tip"], np.array([0.25, 0.45]) * eye)
                 + chin * _gauss(points, lm["chin"], np.array([0.5, 0.35]) * eye)
                 + brows * sum(_gauss(points, lm[f"brow_mid_{s}"], np.array([0.4, 0.15]) * eye) for s in "lr"))
        for sign in (1.0, -1.0):
            cheek = lm["eye_centre_l"] * np.array([sign, 1.0, 1.0]) - np.array([0.0, 0.55 * eye, 0.0])
            depth = depth + cheeks * _gauss(points, cheek, np.array([0.35, 0.35]) * eye)
        warped = points.copy()
        warped[:, 0] = centre[0] + x * width
        warped[:, 2] += depth * front
        return centre + (warped - centre) * scale

    skin = np.ones(len(vertices))
    for side in ("l", "r"):
        skin[landmarks.indices[f"eyeball_{side}"]] = 0.0
    new_vertices = warp(np.asarray(vertices, dtype=np.float64), skin).astype(np.float32)
    names = list(lm)
    inside = np.array([0.0 if n.startswith(("eye_centre", "jaw_hinge")) else 1.0 for n in names])
    moved = warp(np.stack([lm[n] for n in names]), inside)
    points = dict(zip(names, moved))
    for name in names:  # surface landmarks stay exactly on their vertices
        if inside[names.index(name)]:
            nearest = int(np.argmin(np.linalg.norm(vertices - lm[name], axis=1)))
            if np.linalg.norm(vertices[nearest] - lm[name]) < 1e-7:
                points[name] = new_vertices[nearest].astype(np.float64)
    return new_vertices, Landmarks(points, landmarks.indices)


def safe_name(text: str) -> str:
    """A folder- and CSV-safe identity name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "identity"


@dataclass(frozen=True)
class CharacterSource:
    """Variant `variant` of the bundled character, its shape drawn from `seed`."""

    seed: int
    variant: int

    @property
    def name(self) -> str:
        return f"character_{self.variant:03d}"

    def build(self) -> FaceIdentity:
        head = load_default_character()
        vertices, landmarks = vary_character(head.vertices, default_character_landmarks(),
                                             np.random.default_rng([self.seed, 1, self.variant]))
        return assemble(self.name, vertices, head.faces, rig_offsets(vertices, head.faces, landmarks), landmarks)


def _landmarks_or_none(vertices: np.ndarray, faces: np.ndarray | None) -> Landmarks | None:
    try:
        return find_landmarks(vertices, faces)
    except TalkingFacesError:
        return None


@dataclass(frozen=True)
class MeshSource:
    """A mesh file; bases from `au_basis` (AUBlendSet file), AUBlendNet (`aublendnet` + `codebook`) or the rig."""

    path: str
    au_basis: str | None = None
    aublendnet: str | None = None
    codebook: str | None = None

    @property
    def name(self) -> str:
        return safe_name(Path(self.path).stem)

    def build(self) -> FaceIdentity:
        identity = load_identity(self.path)
        basis = resolve_basis(identity, self.au_basis, self.aublendnet, self.codebook)
        basis.check_matches(identity.num_vertices)
        return assemble(self.name, identity.vertices, identity.faces, basis.offsets,
                        _landmarks_or_none(identity.vertices, identity.faces))


@dataclass(frozen=True)
class AUBlendSetSource:
    """An AUBlendSet identity (folder or (33, V*3) .npy) drawn with the faces of the mesh `faces_from`."""

    path: str
    faces_from: str | None

    @property
    def name(self) -> str:
        path = Path(self.path)
        return safe_name(path.name if path.is_dir() else path.stem)

    def build(self) -> FaceIdentity:
        basis = load_aublendset(self.path)
        if self.faces_from is None:
            raise TalkingFacesError(f"AUBlendSet identity {self.path} has no faces; pass a mesh of the same topology "
                                    "with --faces (for AUBlendSet, any FLAME .ply or .obj).")
        faces = _faces_of(self.faces_from)
        if faces.max() >= basis.num_vertices:
            raise TalkingFacesError(f"--faces {self.faces_from} indexes {faces.max() + 1} vertices but {self.path} has "
                                    f"{basis.num_vertices}; give a mesh of the AUBlendSet's topology.")
        return assemble(self.name, basis.template, faces, basis.offsets, _landmarks_or_none(basis.template, faces))


@lru_cache(maxsize=4)
def _faces_of(path: str) -> np.ndarray:
    faces = load_identity(path).faces
    if faces is None:
        raise TalkingFacesError(f"--faces {path} holds no triangles; give an OBJ, PLY or NPZ mesh with faces.")
    return faces


@dataclass(frozen=True)
class FlameSource:
    """Head `variant` of FLAME with random identity coefficients; bases from AUBlendNet or the rig."""

    model: str
    seed: int
    variant: int
    aublendnet: str | None = None
    codebook: str | None = None

    @property
    def name(self) -> str:
        return f"flame_{self.variant:03d}"

    def build(self) -> FaceIdentity:
        from talking_faces.data.flame import flame_pose, flame_vertices

        model = _flame_model(self.model)
        rng = np.random.default_rng([self.seed, 2, self.variant])
        shape = rng.normal(0.0, FLAME_SHAPE_SIGMA, FLAME_SHAPE_COMPONENTS)
        vertices = flame_vertices(model, shape, np.zeros((1, 0)), flame_pose(np.zeros((1, 3))))[0].astype(np.float32)
        identity = Identity(vertices, model.faces.astype(np.int64), self.name)
        basis = resolve_basis(identity, None, self.aublendnet, self.codebook)
        return assemble(self.name, vertices, identity.faces, basis.offsets, _landmarks_or_none(vertices, identity.faces))


@lru_cache(maxsize=2)
def _flame_model(path: str):
    from talking_faces.data.flame import load_flame_model

    return load_flame_model(path)


IdentitySource = CharacterSource | MeshSource | AUBlendSetSource | FlameSource


def aublendset_paths(root: str | Path) -> list[Path]:
    """The AUBlendSet identities under `root`: the folder itself, its identity subfolders, or its .npy files."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise TalkingFacesError(f"--aublendset {root} does not exist; pass an AUBlendSet folder or a (33, V*3) .npy file.")
    if (root / "new_AU_vertice32.npy").is_file():
        return [root]
    found = sorted(p for p in root.iterdir() if (p.is_dir() and (p / "new_AU_vertice32.npy").is_file()) or p.suffix == ".npy")
    if not found:
        raise TalkingFacesError(f"--aublendset {root} holds no identity folders (template.npy + new_AU_vertice32.npy) "
                                "and no (33, V*3) .npy files.")
    return found


def unique_names(sources: list) -> list[str]:
    """Identity names, made unique with a numeric suffix where two sources share one."""
    names, seen = [], {}
    for source in sources:
        name = source.name
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names
