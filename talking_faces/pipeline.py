"""The `talkface render` pipeline as library calls: speech + emotion + basis -> vertices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio import SAMPLE_RATE, load_audio
from .basis import AUBasis
from .basis_sources import resolve_basis
from .compose import compose
from .devices import resolve_device
from .emotion import parse_emotion
from .identity import Identity, load_identity
from .speech import speak


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


def seeded_generator(seed: int | None) -> torch.Generator | None:
    """The one `torch.Generator` of a run (CPU, so a seed gives the same noise on every machine), or None."""
    return None if seed is None else torch.Generator("cpu").manual_seed(seed)


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
    seed: int | None = None,
    num_samples: int = 1,
    sample: int = 0,
    model_options: dict[str, Any] | None = None,
) -> Animation:
    """Run speech adapter, emotion track and composition for one audio file.

    `model_options` go to the adapter's `from_checkpoint` (e.g. `sampler`, `steps`, `vqvae`);
    `seed` seeds the request's generator; of `num_samples` samples, `sample` is animated.
    `stage(name)` is called as each stage starts, for progress display.
    """
    from talking_faces.adapters import SpeechRequest, adapter_class

    report = stage or (lambda name: None)
    track = parse_emotion(emotion)  # fail on a bad spec before any heavy work
    adapter_cls = adapter_class(model)
    dev = resolve_device(device)
    report("Reading audio and identity")
    audio = load_audio(audio_path)
    if not isinstance(identity, Identity):
        identity = load_identity_or_default(identity)
    report("Loading speech model")
    adapter = adapter_cls.from_checkpoint(checkpoint, device=dev, **(model_options or {}))
    adapter.check_identity(identity)
    report("Building AU basis")
    if basis is None:
        basis = resolve_basis(identity, au_basis=au_basis, aublendnet=aublendnet, codebook=codebook, device=dev)
    else:
        basis.check_matches(identity.num_vertices)
    report("Animating speech")
    request = SpeechRequest(
        audio=audio, identity=identity, basis=basis, text=text, style=style, fps=fps,
        generator=seeded_generator(seed), num_samples=num_samples,
    )
    speech = speak(adapter, request)
    report("Composing")
    offsets = torch.from_numpy(basis.offsets).to(dev)
    weights = torch.from_numpy(track.weights(speech.num_frames, fps)).to(dev)
    neutral = torch.from_numpy(identity.vertices).to(dev)
    speech_offsets = speech.offsets(0, speech.num_frames, offsets, sample).to(dev, torch.float32)
    vertices = compose(neutral, speech_offsets, weights, offsets)
    return Animation(
        vertices=vertices.cpu().numpy().astype(np.float32, copy=False),
        faces=identity.faces,
        fps=fps,
        audio_path=Path(audio_path),
        duration=audio.shape[0] / SAMPLE_RATE,
        neutral=identity.vertices,
    )
