"""The augment job: plan the set, render the missing images in parallel, write labels and manifest.

Layout of the output folder (docs/augment.md):

    manifest.json            prior, options, seed, identities, project version
    labels.csv               image, identity, yaw, pitch, roll, AU1..AU64, AU1_on..AU64_on
    images/<stem>.png        (size, size) RGB
    landmarks.csv            --landmarks: image, <landmark>_x, <landmark>_y (pixels)
    meshes/<stem>.npy        --save-meshes: (V, 3) float32 mesh before the head pose
    identities/<name>/       --save-meshes: neutral.npy (V, 3), bases.npy (32, V, 3), faces.npy (F, 3)

Every file is written atomically. Images are the only per-sample work; labels and landmarks follow
from the plan, so they are written whole at the end and a resumed run only renders what is missing.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from talking_faces import __version__, parallel
from talking_faces.appearance import SKIN
from talking_faces.atomic import atomic_write
from talking_faces.aus import AU_NAMES
from talking_faces.errors import TalkingFacesError
from talking_faces.render import PREFETCH_FRAMES, camera_pose, project_points
from talking_faces.threads import prefetch

from .identities import PROJECTED_LANDMARKS, FaceIdentity, IdentitySource, unique_names
from .png import encode_png
from .plan import Sample, Views, backdrop, plan_sample, rotation
from .prior import AUPrior, occurrence

MANIFEST, LABELS, LANDMARKS = "manifest.json", "labels.csv", "landmarks.csv"
IMAGES, MESHES, IDENTITIES = "images", "meshes", "identities"
LABEL_COLUMNS: tuple[str, ...] = ("image", "identity", "yaw", "pitch", "roll", *AU_NAMES, *(f"{au}_on" for au in AU_NAMES))


@dataclass(frozen=True)
class AugmentOptions:
    """What changes the images; all of it goes into manifest.json (count aside, which may grow)."""

    count: int
    size: int = 224
    seed: int = 0
    views: Views = field(default_factory=Views)
    save_meshes: bool = False
    landmarks: bool = False
    gl: str = "auto"
    chunk: int = 16  # images per task: one identity, sent to one worker


@dataclass
class AugmentResult:
    rendered: int  # images rendered now
    existing: int  # images found from an earlier run
    files: list[Path]


def _source_record(source: IdentitySource, name: str) -> dict:
    return {"name": name, "kind": type(source).__name__, **asdict(source)}


def manifest(options: AugmentOptions, prior: AUPrior, sources: list[IdentitySource], names: list[str]) -> dict:
    settings = asdict(options)
    settings.pop("count")
    return {
        "format": "talking_faces augment 1", "project_version": __version__, "seed": options.seed,
        "count": options.count, "options": settings, "prior": prior.describe(),
        "identities": [_source_record(s, n) for s, n in zip(sources, names)],
        "labels": {"columns": list(LABEL_COLUMNS), "au_order": "AUBlendSet (talking_faces.aus.AU_NAMES)",
                   "occurrence": f"AU<n>_on = 1 when the weight >= {prior.describe()['occurrence_threshold']}",
                   "pose": "degrees; yaw turns the face to its left, pitch up, roll tilts its top to its right",
                   "mesh": "neutral + weights @ bases, before the head pose"},
    }


def _comparable(record: dict) -> str:
    kept = {k: record.get(k) for k in ("seed", "options", "prior", "identities")}
    # The GL backend and the task size change how a set is made, not what it holds.
    kept["options"] = {k: v for k, v in (kept["options"] or {}).items() if k not in ("gl", "chunk")}
    return json.dumps(json.loads(json.dumps(kept, default=_jsonable)), sort_keys=True)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def _check_resumable(out: Path, record: dict) -> None:
    """Raise unless `out` is new, empty, or holds a set made with the same settings (any count)."""
    path = out / MANIFEST
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise TalkingFacesError(f"{path} is unreadable ({exc}); remove it or choose another --out.") from None
        if _comparable(previous) != _comparable(record):
            raise TalkingFacesError(f"{out} holds a set made with other settings (seed, options, prior or identities); "
                                    "rerun with the same ones to resume, or choose another --out.")
    elif out.is_dir() and any(out.iterdir()):
        raise TalkingFacesError(f"{out} is not empty and holds no {MANIFEST}; choose a new or empty --out folder.")


def _write_json(path: Path, record: dict) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=1, default=_jsonable)))


def sample_done(out: Path, sample: Sample, options: AugmentOptions) -> bool:
    if not (out / IMAGES / f"{sample.stem}.png").is_file():
        return False
    return not options.save_meshes or (out / MESHES / f"{sample.stem}.npy").is_file()


def expression_offsets(identity: FaceIdentity, weights: np.ndarray) -> np.ndarray:
    """`weights @ offsets`, `(V, 3)` float32, summing only the active AUs: the others would add exact zeros."""
    active = np.flatnonzero(weights)
    # einsum's own loop: tensordot would call the multi-threaded BLAS, whose idle threads spin on the
    # cores the draw needs (about 0.5 ms of CPU an image).
    return np.einsum("k,kvc->vc", weights[active], identity.offsets[active]).astype(np.float32, copy=False)


def head_pose(identity: FaceIdentity, sample: Sample) -> np.ndarray:
    """`(4, 4)` rigid transform of the sample's head pose: its rotation about the identity's pivot."""
    turn = rotation(sample.yaw, sample.pitch, sample.roll)
    pose = np.eye(4)
    pose[:3, :3] = turn
    pose[:3, 3] = identity.pivot - turn @ identity.pivot
    return pose


@dataclass(frozen=True)
class RenderSpec:
    """The worker spec: renders tasks `(identity index, samples)`; identities are built once per worker."""

    sources: tuple[IdentitySource, ...]
    names: tuple[str, ...]
    out: str
    options: AugmentOptions
    prebuilt: tuple[FaceIdentity, ...] | None = field(default=None, compare=False)  # in-process runs only

    def build(self) -> Callable[[tuple[int, tuple[Sample, ...]]], int]:
        return _Renderer(self)


class _Renderer:
    def __init__(self, spec: RenderSpec) -> None:
        self.spec = spec
        self.identities: dict[int, FaceIdentity] = {}
        self.renderers: dict[tuple, object] = {}

    def identity(self, index: int) -> FaceIdentity:
        if self.spec.prebuilt is not None:
            return self.spec.prebuilt[index]
        if index not in self.identities:
            if len(self.identities) >= 2:  # tasks come grouped by identity: keep few
                self.identities.pop(next(iter(self.identities)))
            built = self.spec.sources[index].build()
            built.name = self.spec.names[index]
            self.identities[index] = built
        return self.identities[index]

    def renderer(self, identity: FaceIdentity):
        from talking_faces.render import FaceRenderer

        key = (len(identity.neutral), hashlib.sha1(np.ascontiguousarray(identity.faces).tobytes()).hexdigest())  # topology
        if key not in self.renderers:
            self.renderers[key] = FaceRenderer(identity.neutral, identity.faces, size=self.spec.options.size,
                                               gl=self.spec.options.gl, albedo=identity.albedo)
        return self.renderers[key]

    def __call__(self, task: tuple[int, tuple[Sample, ...]]) -> int:
        index, samples = task
        identity = self.identity(index)
        renderer = self.renderer(identity)
        renderer.frame(identity.frame_box)
        renderer.set_interior(identity.interior)
        out, save_meshes = Path(self.spec.out), self.spec.options.save_meshes
        skin = identity.albedo * identity.skin[:, None]  # the part a skin tone tints: all but the eyes
        eyes = identity.albedo - skin

        def prepared():
            for sample in samples:
                mesh = expression_offsets(identity, sample.weights)
                mesh += identity.neutral  # the labels' mesh: neutral + weights @ bases
                albedo = skin * (sample.skin / SKIN) + eyes
                pose = head_pose(identity, sample)
                yield sample, mesh, renderer.prepare(mesh, albedo, sample.lighting, pose), pose, backdrop(sample.background)

        # Blending and shading run on one thread, PNG encoding and file writes on another (numpy, zlib
        # and I/O release the GIL), while this one draws; background, mouth interior and head pose are
        # drawn by GL. The task returns once every file is written.
        with closing(prefetch(prepared(), PREFETCH_FRAMES, name="talkface-augment-shading")) as ready, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="talkface-augment-writer") as writer:
            written = []
            for sample, mesh, vertex_data, pose, colours in ready:
                renderer.set_background(colours)
                image = renderer.draw(vertex_data, pose, alpha=True)  # RGBX: GL's layout, the fastest read-back
                written.append(writer.submit(_write_sample, out, sample, image, mesh if save_meshes else None))
            for future in written:
                future.result()
        return len(samples)


def _write_sample(out: Path, sample: Sample, image: np.ndarray, mesh: np.ndarray | None) -> None:
    png = encode_png(image)
    atomic_write(out / IMAGES / f"{sample.stem}.png", lambda tmp: tmp.write_bytes(png))
    if mesh is not None:
        atomic_write(out / MESHES / f"{sample.stem}.npy", lambda tmp: np.save(tmp, mesh))


def label_rows(samples: list[Sample], names: list[str]) -> list[list[str]]:
    """Rows of labels.csv in `LABEL_COLUMNS` order."""
    rows = []
    for sample in samples:
        weights = [f"{float(w):.4f}" for w in sample.weights]
        on = [str(int(v)) for v in occurrence(sample.weights)]
        rows.append([f"{sample.stem}.png", names[sample.identity], f"{sample.yaw:.2f}", f"{sample.pitch:.2f}",
                     f"{sample.roll:.2f}", *weights, *on])
    return rows


def landmark_rows(samples: list[Sample], identities: list[FaceIdentity], size: int) -> list[list[str]]:
    """Rows of landmarks.csv: pixel positions of `PROJECTED_LANDMARKS` (empty for identities without landmarks)."""
    rows = []
    for sample in samples:
        identity = identities[sample.identity]
        if identity.anchors is None:
            rows.append([f"{sample.stem}.png"] + [""] * (2 * len(PROJECTED_LANDMARKS)))
            continue
        positions = identity.landmark_positions(expression_offsets(identity, sample.weights))
        pose = head_pose(identity, sample)
        pixels = project_points(positions @ pose[:3, :3].T + pose[:3, 3], camera_pose(identity.frame_box)[0], size)
        rows.append([f"{sample.stem}.png"] + [f"{value:.2f}" for value in pixels.reshape(-1)])
    return rows


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)

    atomic_write(path, write)


def _save_identity(folder: Path, identity: FaceIdentity) -> None:
    for name, array in (("neutral", identity.neutral), ("bases", identity.offsets), ("faces", identity.faces)):
        if not (folder / f"{name}.npy").is_file():
            atomic_write(folder / f"{name}.npy", lambda tmp, array=array: np.save(tmp, array))


def run_augment(
    out: Path,
    sources: list[IdentitySource],
    options: AugmentOptions,
    prior: AUPrior | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    on_identity: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> AugmentResult:
    """Write (or complete) the augmented set in `out`; see the module docstring for the layout.

    Args:
        sources: identity recipes; samples pick among them uniformly.
        on_identity: called with (built, total) while identities are built and checked.
        on_progress: called with (done, total) images as they are written, earlier ones included.
    """
    if not sources:
        raise TalkingFacesError("No identities to render; use the bundled character (--characters N), --identity, "
                                "--aublendset or --flame-model.")
    if options.count < 1:
        raise TalkingFacesError(f"--count {options.count} makes no images; give a positive count.")
    prior = prior or AUPrior()
    out = Path(out)
    names = unique_names(sources)
    record = manifest(options, prior, sources, names)
    _check_resumable(out, record)
    identities = []
    for k, source in enumerate(sources):  # built here first, so bad inputs fail before any file is written
        identities.append(source.build())
        identities[-1].name = names[k]
        (on_identity or (lambda done, total: None))(k + 1, len(sources))
    if options.save_meshes:
        for identity in identities:
            _save_identity(out / IDENTITIES / identity.name, identity)
    serial = workers == 1 and ray_address is None
    if not (serial or options.landmarks):
        identities = []  # the workers build their own
    _write_json(out / MANIFEST, {**record, "complete": False})

    samples = [plan_sample(i, options.seed, len(sources), prior, options.views) for i in range(options.count)]
    todo = [s for s in samples if not sample_done(out, s, options)]
    tasks = []
    for index in range(len(sources)):
        mine = tuple(s for s in todo if s.identity == index)
        tasks += [(index, mine[i: i + options.chunk]) for i in range(0, len(mine), options.chunk)]
    spec = RenderSpec(tuple(sources), tuple(names), str(out), options, tuple(identities) if serial else None)
    done = len(samples) - len(todo)
    progress = on_progress or (lambda done, total: None)
    progress(done, len(samples))
    for rendered in parallel.run_map(spec, tasks, workers=workers, ray_address=ray_address):
        done += rendered
        progress(done, len(samples))

    files = [out / LABELS]
    _write_csv(out / LABELS, list(LABEL_COLUMNS), label_rows(samples, names))
    if options.landmarks:
        header = ["image"] + [f"{name}_{axis}" for name in PROJECTED_LANDMARKS for axis in "xy"]
        _write_csv(out / LANDMARKS, header, landmark_rows(samples, identities, options.size))
        files.append(out / LANDMARKS)
    _write_json(out / MANIFEST, {**record, "complete": True})
    return AugmentResult(len(todo), len(samples) - len(todo), [*files, out / MANIFEST])
