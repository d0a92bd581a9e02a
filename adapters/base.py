"""The interface every speech adapter implements: a typed `SpeechRequest` in, a `SpeechOutput` out."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from talking_faces.basis import AUBasis
from talking_faces.errors import TalkingFacesError
from talking_faces.identity import Identity, warn_unless_metres

if TYPE_CHECKING:
    import torch

# Optional request fields an adapter may honour (`SpeechAdapter.accepts`). `audio`, `identity`
# and `fps` are always given; an adapter that animates at any frame rate lists "fps".
REQUEST_FIELDS = ("basis", "text", "style", "generator", "num_samples", "fps")
# What the CLI calls each field, for messages.
OPTION_NAMES = {"basis": "--au-basis", "text": "--text", "style": "--style", "generator": "--seed",
                "num_samples": "--num-samples", "fps": "--fps"}


@dataclass(frozen=True)
class SpeechRequest:
    """Everything a speech adapter may condition on, for one audio clip.

    Attributes:
        audio: `(N,)` float32 speech at 16 kHz mono.
        identity: the neutral mesh `M0` to animate.
        basis: the identity's AU basis `(32, V, 3)`, or None.
        text: transcript, for phoneme alignment.
        style: a training-subject style (name, index, or a model's compound form like `M003,happy,3`).
        fps: the output frame rate the caller will use. Adapters that list "fps" in `accepts`
            animate at it; the others animate at their training rate and the speech path retimes.
        generator: the seeded `torch.Generator` for stochastic models (None: unseeded).
        num_samples: S, the number of samples to draw (stochastic models).
    """

    audio: np.ndarray
    identity: Identity
    basis: AUBasis | None = None
    text: str | None = None
    style: str | None = None
    fps: float = 30.0
    generator: torch.Generator | None = None
    num_samples: int = 1

    @property
    def given(self) -> set[str]:
        """The optional fields that carry a value the caller chose."""
        given = {name for name in ("basis", "text", "style", "generator") if getattr(self, name) is not None}
        return given | ({"num_samples"} if self.num_samples != 1 else set())


@dataclass
class SpeechOutput:
    """Offset_spe of S samples at frame rate `fps`: either vertex offsets or AU weights on the basis.

    Attributes:
        fps: the frame rate of the frames below.
        offsets: `(S, T, V, 3)` float32 vertex offsets from the identity's neutral, or None.
        weights: `(S, T, 32)` float32 AU weights on the request's basis (Offset_spe = blend(weights, B)), or None.
    Exactly one of `offsets` and `weights` is set: a torch tensor (learned models), or a numpy
    array (models that need no torch, such as the viseme adapter: its CPU path never imports torch).
    """

    fps: float
    offsets: torch.Tensor | np.ndarray | None = None
    weights: torch.Tensor | np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.offsets is None) == (self.weights is None):
            raise ValueError("SpeechOutput holds exactly one of offsets (S, T, V, 3) and weights (S, T, 32)")

    @property
    def frames(self) -> torch.Tensor | np.ndarray:
        """`(S, T, ...)`: whichever of offsets and weights is set."""
        return self.offsets if self.offsets is not None else self.weights

    @property
    def num_samples(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[1])


class SpeechAdapter(ABC):
    """Turns a `SpeechRequest` into Offset_spe for one identity.

    Subclasses set `name`, `accepts`, `fps` (training rate) and `topology`, and implement
    `from_checkpoint` and `speak`. `check_request` turns a request the adapter cannot honour into
    a one-line error (or warning), so no conditioning is ever dropped in silence.
    """

    name: ClassVar[str]
    # Optional SpeechRequest fields this adapter honours (see REQUEST_FIELDS).
    accepts: ClassVar[frozenset[str]] = frozenset()
    # Request fields the adapter cannot work without (e.g. the viseme adapter's basis).
    requires: ClassVar[frozenset[str]] = frozenset()
    fps: float = 30.0
    # Number of vertices the adapter accepts, or None for any mesh.
    topology: int | None = None
    # Names of the speaking styles the model was trained on (the `style` conditioning), if any.
    styles: tuple[str, ...] = ()
    # Whether `speak` is worth running in a worker process (`speech.speak_apart`): it holds the GIL for
    # long (pocketsphinx's decoder does) and its request and output are small. Torch models release the
    # GIL in their kernels and stay in the caller's process.
    speaks_apart: bool = False

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = device  # a torch device or its name ("cpu", "cuda:0"); torch takes either

    @classmethod
    @abstractmethod
    def from_checkpoint(cls, path: str | Path | None, device: torch.device | str = "cpu", **options: Any) -> SpeechAdapter:
        """Build the adapter from a local checkpoint (None for adapters that need no weights).

        `options` are model-specific (`vqvae=`, `sampler=`, `steps=`, `dataset=`); an unknown one
        raises a one-line TalkingFacesError.
        """

    @abstractmethod
    def speak(self, request: SpeechRequest) -> SpeechOutput:
        """Offset_spe for the request: `(S, T, V, 3)` offsets or `(S, T, 32)` weights, on `self.device`.

        Frames are at `self.fps` (or `request.fps` when "fps" is in `accepts`) and cover the audio
        as the model's own frame count does; the speech path retimes them to the request's rate.
        """

    @classmethod
    def warm_up(cls, transcript: bool) -> None:
        """Prepare, in this process, what `speak` will need before the request exists (a worker process
        started early calls it while its parent reads the audio); `transcript`: whether a text will come.
        Nothing to prepare by default."""

    def check_request(self, request: SpeechRequest) -> None:
        """Raise for a request this adapter cannot honour; warn for a field it will not use."""
        missing = self.requires - request.given
        if missing:
            raise TalkingFacesError(
                f"The {self.name} model needs {', '.join(OPTION_NAMES[f] for f in sorted(missing))}, which was not given; pass it."
            )
        if request.num_samples < 1:
            raise TalkingFacesError(f"--num-samples must be at least 1, got {request.num_samples}.")
        unused = request.given - self.accepts - self.requires
        if "num_samples" in unused:
            raise TalkingFacesError(
                f"The {self.name} model is deterministic and draws one sample; drop --num-samples or pick a diffusion --model."
            )
        if "style" in unused:
            raise TalkingFacesError(f"The {self.name} model has no training styles; drop --style.")
        for field in sorted(unused - {"basis"}):  # a basis the adapter does not need is still used for emotion
            warnings.warn(f"The {self.name} model does not use {OPTION_NAMES[field]}; it is ignored.", stacklevel=2)
        self.check_identity(request.identity)

    def check_identity(self, identity: Identity) -> None:
        """Raise a TalkingFacesError when the identity's topology is not what the model was trained on."""
        if self.topology is not None and identity.num_vertices != self.topology:
            raise TalkingFacesError(
                f"The {self.name} model animates {self.topology}-vertex meshes, but {identity.name} has "
                f"{identity.num_vertices} vertices; pass an identity with the checkpoint's topology (e.g. a FLAME mesh)."
            )
        if self.topology is not None:  # models trained on fixed-topology scans predict metres
            warn_unless_metres(identity, f"the {self.name} model")
