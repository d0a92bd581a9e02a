"""The interface every speech adapter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from talking_faces.errors import TalkingFacesError
from talking_faces.identity import Identity


class SpeechAdapter(ABC):
    """Turns 16 kHz speech into per-frame lip offsets for one identity.

    Subclasses set `name`, `fps` and `topology`, and implement `from_checkpoint` and `animate`.
    """

    name: ClassVar[str]
    fps: float = 30.0
    # Number of vertices the adapter accepts, or None for any mesh that has an AU basis.
    topology: int | None = None
    # True when animate() needs the identity's AU basis (passed as conditioning `basis`).
    needs_basis: ClassVar[bool] = False
    # True when from_checkpoint accepts `fps=` and animates at any frame rate.
    any_fps: ClassVar[bool] = False
    # Names of the speaking styles the model was trained on (the `style` conditioning), if any.
    styles: tuple[str, ...] = ()

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    @classmethod
    @abstractmethod
    def from_checkpoint(cls, path: str | Path | None, device: torch.device | str = "cpu", **options: Any) -> "SpeechAdapter":
        """Build the adapter from a local checkpoint (None for adapters that need no weights)."""

    @abstractmethod
    def animate(self, audio: np.ndarray, identity: Identity, **conditioning: Any) -> torch.Tensor:
        """Speech offsets for `audio` `(N,)` float32 at 16 kHz.

        Conditioning keys an adapter may read: `basis` (AUBasis), `text` (transcript),
        `style` (training-subject name or index).

        Returns:
            `(T, V, 3)` float32 Offset_spe on `self.device`, at `self.fps`.
        """

    def check_identity(self, identity: Identity) -> None:
        """Raise a TalkingFacesError when the identity's topology is not what the model was trained on."""
        if self.topology is not None and identity.num_vertices != self.topology:
            raise TalkingFacesError(
                f"The {self.name} model animates {self.topology}-vertex meshes, but {identity.name} has "
                f"{identity.num_vertices} vertices; pass an identity with the checkpoint's topology (e.g. a FLAME mesh)."
            )
