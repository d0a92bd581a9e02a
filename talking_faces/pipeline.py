"""The `talkface render` pipeline as library calls: speech + emotion + basis -> vertices, chunk by chunk.

`stream_animation` is the streaming API (an `AnimationStream` that composes 64 frames at a time);
`animate` collects one sample of it into an `Animation` `(T, V, 3)` for library users.
`compose_stream` is shared with `talkface eval`, so eval scores exactly what render draws.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .animation import Animation, AnimationStream
from .appearance import vertex_albedo
from .arrays import is_tensor, like, to_numpy
from .audio import load_audio
from .basis import AUBasis
from .basis_sources import resolve_basis
from .compose import compose
from .devices import resolve_device_name
from .emotion import EmotionTrack, parse_emotion
from .identity import Identity, load_identity
from .npy_stream import NpyWriter
from .speech import SpeechTrack, speak, speak_apart

if TYPE_CHECKING:  # the renderer's imports (scipy, pyrender) are for rendering only, not for eval
    import torch

    from .render import FaceRenderer
    from .worker import WorkerProcess

__all__ = ["Animation", "AnimationStream", "animate", "compose_stream", "render_sample", "stream_animation"]


def load_identity_or_default(path: str | Path | None) -> Identity:
    """The identity at `path`, or the project's default character when `path` is None."""
    if path is None:
        from .character import load_default_character

        return load_default_character()
    return load_identity(path)


def view_rotation(identity: Identity) -> np.ndarray | None:
    """The rotation that shows a head upright and facing the camera, or None when it already is
    (or its axes cannot be told: it is then shown as it is)."""
    from .character import is_default_character

    if identity.faces is None or identity.is_flame or is_default_character(identity.vertices):
        return None
    from .head_frame import detect_mesh_frame  # scipy: only for heads that may need turning

    frame = detect_mesh_frame(identity.vertices, identity.faces)
    return None if frame is None or np.array_equal(frame.rotation, np.eye(3)) else frame.rotation


def seeded_generator(seed: int | None) -> torch.Generator | None:
    """The one `torch.Generator` of a run (CPU, so a seed gives the same noise on every machine), or None."""
    if seed is None:
        return None
    import torch

    return torch.Generator("cpu").manual_seed(seed)


def return_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc keeps them; pocketsphinx frees ~150 MB
    after 10 minutes of speech, which would otherwise stay resident while the frames are rendered)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def compose_stream(
    track: SpeechTrack,
    identity: Identity,
    basis: AUBasis | None,
    emotion: EmotionTrack,
    device: torch.device | str = "cpu",
    audio_path: Path = Path(),
    albedo: np.ndarray | None = None,
    view: np.ndarray | None = None,
) -> AnimationStream:
    """M = M0 + Offset_spe + Offset_exp for every chunk of frames, composed on `device` when asked.

    Held for the whole clip: the adapter's output (once, at its own rate), the `(T, 32)` emotion
    weights and the `(32, V, 3)` basis. `basis` may be None only for offset adapters with a neutral emotion.
    Speech given as numpy (the viseme adapter) is composed with numpy on the CPU, without torch;
    otherwise everything is moved to `device` and composed with torch there.
    """
    if str(device) == "cpu" and not is_tensor(track.output.frames):
        on_device, no_grad = (lambda array: array), contextlib.nullcontext
    else:
        import torch

        dev = torch.device(device)
        on_device, no_grad = (lambda array: torch.as_tensor(array).to(dev)), torch.inference_mode
    neutral = on_device(identity.vertices)
    weights = on_device(emotion.weights(track.num_frames, track.fps))
    if basis is None:  # no basis: only a neutral track can be composed (zero expression offsets)
        if weights.any() or track.is_weights:
            raise ValueError("an emotion or AU-weight speech needs the identity's AU basis")
    basis_offsets = on_device(
        np.zeros((weights.shape[1], identity.num_vertices, 3), identity.vertices.dtype) if basis is None else basis.offsets
    )

    def chunk(start: int, stop: int, sample: int) -> np.ndarray:
        with no_grad():
            speech = like(track.offsets(start, stop, basis_offsets, sample), neutral)
            vertices = compose(neutral, speech, weights[start:stop], basis_offsets)
        return to_numpy(vertices)

    def curves(sample: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The whole clip's AU weights `(T, 32)` (emotion, plus AU-weight speech) and speech offsets `(T, V, 3)`."""
        au_weights = to_numpy(weights).astype(np.float32)
        with no_grad():
            speech = to_numpy(track.frames(0, track.num_frames, sample)).astype(np.float32)
        return (au_weights + speech, None) if track.is_weights else (au_weights, speech)

    return AnimationStream(
        compose=chunk, num_frames=track.num_frames, faces=identity.faces, fps=track.fps, audio_path=Path(audio_path),
        duration=track.duration, neutral=identity.vertices, albedo=albedo, num_samples=track.num_samples,
        view=view, basis=basis, curves=curves,
        moving=np.any(basis.offsets != 0, axis=(0, 2)) if basis is not None and track.is_weights else None,
    )


def stream_animation(
    audio_path: str | Path,
    identity: Identity | str | Path | None = None,
    emotion: str = "neutral",
    model: str = "viseme",
    checkpoint: str | Path | None = None,
    au_basis: str | Path | None = None,
    aublendnet: str | Path | None = None,
    codebook: str | Path | None = None,
    style: str | None = None,
    text: str | None = None,
    fps: float = 30.0,
    device: str | torch.device = "auto",
    stage: Callable[[str], None] | None = None,
    basis: AUBasis | None = None,
    seed: int | None = None,
    num_samples: int = 1,
    model_options: dict[str, Any] | None = None,
    albedo: np.ndarray | None = None,
    landmarks: str | Path | None = None,
    exports: bool = False,
    worker: WorkerProcess | None = None,
) -> AnimationStream:
    """Run the speech adapter once and return every sample's animation as a stream of chunks.

    `model_options` go to the adapter's `from_checkpoint` (e.g. `sampler`, `steps`, `vqvae`);
    `seed` seeds the request's generator. `albedo` `(V, 3)` is the identity's per-vertex colours
    (computed from its landmarks when None). `landmarks` is a JSON file of landmarks for the
    procedural rig; `exports` builds the AU basis even for a neutral offsets model, since exports
    are written on it. `stage(name)` is called as each stage starts. `worker`: a worker process that
    analyses the speech when the adapter holds the GIL for long (`speech.speak_apart`), for callers
    whose other threads have work meanwhile.
    """
    from talking_faces.adapters import SpeechRequest, adapter_class

    report = stage or (lambda name: None)
    track = parse_emotion(emotion)  # fail on a bad spec before any heavy work
    adapter_cls = adapter_class(model)
    dev = resolve_device_name(device)
    report("Reading audio and identity")
    audio = load_audio(audio_path)
    if not isinstance(identity, Identity):
        identity = load_identity_or_default(identity)
    report("Loading speech model")
    adapter = adapter_cls.from_checkpoint(checkpoint, device=dev, **(model_options or {}))
    adapter.check_identity(identity)
    expressive = any(key.weights.any() for key in track.keyframes)
    wanted = (expressive or exports or "basis" in adapter_cls.accepts | adapter_cls.requires
              or au_basis or aublendnet or codebook)
    if basis is None and wanted:  # an offsets model with a neutral face needs no basis (nor a rigged mesh)
        report("Building AU basis")
        basis = resolve_basis(identity, au_basis=au_basis, aublendnet=aublendnet, codebook=codebook, device=dev,
                              landmarks=landmarks)
    elif basis is not None:
        basis.check_matches(identity.num_vertices)
    report("Animating speech")
    request = SpeechRequest(
        audio=audio, identity=identity, basis=basis, text=text, style=style, fps=fps,
        generator=seeded_generator(seed), num_samples=num_samples,
    )
    speech = speak(adapter, request) if worker is None else speak_apart(adapter, request, worker)
    del adapter, request, audio  # the adapter's working memory (e.g. the phone decoder) goes now ...
    return_freed_memory()  # ... and back to the system, not kept for the whole render
    if albedo is None and identity.faces is not None:
        albedo = vertex_albedo(identity.vertices, identity.faces)
    return compose_stream(speech, identity, basis, track, dev, Path(audio_path), albedo, view_rotation(identity))


def animate(audio_path: str | Path, sample: int = 0, **options: Any) -> Animation:
    """Sample `sample` of `stream_animation(audio_path, **options)` as one `Animation` `(T, V, 3)`.

    Holds the whole clip: for long audio, iterate `stream_animation(...).chunks()` instead.
    """
    return stream_animation(audio_path, **options).collect(sample)


def sample_path(path: Path, sample: int) -> Path:
    """The output of sample `sample`: `path` itself for sample 0, `<stem>_sample<k><suffix>` beside it otherwise."""
    path = Path(path)
    return path if sample == 0 else path.with_name(f"{path.stem}_sample{sample}{path.suffix}")


def render_sample(
    animation: AnimationStream | Animation,
    video: Path,
    renderer: FaceRenderer,
    vertices: Path | None = None,
    sample: int = 0,
    on_frame: Callable[[], None] | None = None,
) -> None:
    """Draw sample `sample` of `animation` into the MP4 `video` and, in the same pass, write its
    `(T, V, 3)` float32 vertices into the `.npy` `vertices`; each chunk is composed once, for both.

    The files are written where named: callers stage them (`atomic.staged_outputs`).
    """
    from .video import render_mp4

    with contextlib.ExitStack() as outputs:
        sink = None
        if vertices is not None:
            sink = outputs.enter_context(NpyWriter(vertices, (animation.num_frames, animation.num_vertices, 3)))
        render_mp4(animation, video, on_frame=on_frame, sample=sample, renderer=renderer,
                   on_chunk=None if sink is None else sink.write)
