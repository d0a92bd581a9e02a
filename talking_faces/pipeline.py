"""The `talkface render` pipeline as library calls: speech + emotion + basis -> vertices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .audio import SAMPLE_RATE, load_audio, num_output_frames
from .basis import AUBasis
from .basis_sources import resolve_basis
from .compose import compose
from .devices import resolve_device
from .emotion import parse_emotion
from .identity import Identity, load_identity
from .retime import retime


@dataclass
class Animation:
    """An animated identity, ready to render.

    Attributes:
        vertices: `(T, V, 3)` float32 final positions M = M0 + Offset_spe + Offset_exp.
        faces: `(F, 3)` int64 triangles of the identity.
        fps: frame rate of `vertices`.
        audio_path: the speech the animation was made from (muxed into the video).
        duration: audio duration in seconds.
        neutral: `(V, 3)` the identity's neutral M0 (frames the camera and finds eyes and lips), or
            None to use the first frame.
    """

    vertices: np.ndarray
    faces: np.ndarray | None
    fps: float
    audio_path: Path
    duration: float
    neutral: np.ndarray | None = None


def load_identity_or_default(path: str | Path | None) -> Identity:
    """The identity at `path`, or the project's default character when `path` is None."""
    if path is None:
        from .character import load_default_character

        return load_default_character()
    return load_identity(path)


def animate(
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
) -> Animation:
    """Run speech adapter, emotion track and composition for one audio file.

    `stage(name)` is called as each stage starts, for progress display.
    """
    from talking_faces.adapters import adapter_class

    report = stage or (lambda name: None)
    track = parse_emotion(emotion)  # fail on a bad spec before any heavy work
    adapter_cls = adapter_class(model)
    dev = resolve_device(device)
    report("Reading audio and identity")
    audio = load_audio(audio_path)
    if not isinstance(identity, Identity):
        identity = load_identity_or_default(identity)
    report("Loading speech model")
    # Adapters free of a training frame rate animate at the output rate, so no retiming blurs closures.
    options = {"fps": fps} if adapter_cls.any_fps else {}
    adapter = adapter_cls.from_checkpoint(checkpoint, device=dev, **options)
    adapter.check_identity(identity)
    report("Building AU basis")
    if basis is None:
        basis = resolve_basis(identity, au_basis=au_basis, aublendnet=aublendnet, codebook=codebook, device=dev)
    else:
        basis.check_matches(identity.num_vertices)
    report("Animating speech")
    conditioning = {"basis": basis, "text": text}
    if style is not None:
        conditioning["style"] = style
    speech = adapter.animate(audio, identity, **conditioning).to(dev, torch.float32)
    num_frames = num_output_frames(audio.shape[0], fps)
    speech = retime(speech, adapter.fps, fps, num_frames)
    report("Composing")
    weights = torch.from_numpy(track.weights(num_frames, fps)).to(dev)
    neutral = torch.from_numpy(identity.vertices).to(dev)
    offsets = torch.from_numpy(basis.offsets).to(dev)
    vertices = compose(neutral, speech, weights, offsets)
    return Animation(
        vertices=vertices.cpu().numpy().astype(np.float32, copy=False),
        faces=identity.faces,
        fps=fps,
        audio_path=Path(audio_path),
        duration=audio.shape[0] / SAMPLE_RATE,
        neutral=identity.vertices,
    )
