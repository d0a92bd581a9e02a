"""Sequences stored as FLAME parameters rather than vertices.

Turning FLAME parameters into vertices needs the user's FLAME model (`generic_model.pkl`, never
shipped). That evaluation is not implemented yet, so parameter files get a clear error that says
how to provide vertex arrays instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from talking_faces.errors import TalkingFacesError


def flame_vertices_loader(path: Path, flame_model: Path | None) -> Callable[[], np.ndarray]:
    """A loader of `(T, 5023, 3)` vertices for a FLAME-parameter file; for now always an error."""
    if flame_model is None:
        raise TalkingFacesError(
            f"{path} holds FLAME parameters, not vertices; pass --flame-model generic_model.pkl, or give the "
            "dataset as vertex arrays."
        )
    raise TalkingFacesError(
        f"{path} holds FLAME parameters, and talkface cannot evaluate FLAME yet (--flame-model {flame_model}); "
        "convert the parameters to (T, 15069) vertex arrays with your FLAME tools and point --data-root at those."
    )
