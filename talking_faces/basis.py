"""AU-blendshape bases: the `AUBasis` type, AUBlendSet file layouts, and the linear blend."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .aus import NUM_AUS
from .errors import TalkingFacesError

if TYPE_CHECKING:
    import torch

AUBLENDSET_TEMPLATE = "template.npy"
AUBLENDSET_TARGETS = "new_AU_vertice32.npy"


@dataclass
class AUBasis:
    """The 32 AU displacement fields of one identity.

    Attributes:
        offsets: `(32, V, 3)` float32, `offsets[k] = target_k - template`, in AUBlendSet AU order.
        template: `(V, 3)` float32 neutral the targets were measured from, or None (procedural rig).
        source: where it came from, for messages and reports.
    """

    offsets: np.ndarray
    template: np.ndarray | None = None
    source: str = "unknown"

    @property
    def num_vertices(self) -> int:
        return int(self.offsets.shape[1])

    def check_matches(self, num_vertices: int) -> None:
        """Raise unless the basis has one displacement per vertex of the identity."""
        if self.num_vertices != num_vertices:
            raise TalkingFacesError(
                f"The AU basis from {self.source} has {self.num_vertices} vertices but the identity has {num_vertices}; "
                "use a basis made for this identity's topology, or omit --au-basis to use the procedural rig."
            )

    def to_aublendset(self) -> np.ndarray:
        """The AUBlendSet `(33, V*3)` layout: row 0 the template, rows 1..32 the targets."""
        if self.template is None:
            raise TalkingFacesError(f"The basis from {self.source} has no template; attach the identity's neutral first.")
        rows = np.concatenate([self.template[None], self.template[None] + self.offsets], axis=0)
        return rows.reshape(NUM_AUS + 1, -1).astype(np.float32)


def blend(weights: np.ndarray | torch.Tensor, offsets: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Offset_exp from AU weights, for numpy arrays or torch tensors (both of one kind).

    out[t, v, c] = sum_k weights[t, k] * offsets[k, v, c]

    Args:
        weights: `(T, 32)` AU weights.
        offsets: `(32, V, 3)` basis displacements.
    Returns:
        `(T, V, 3)` expression offsets.
    """
    num_aus, num_vertices, _ = offsets.shape
    return (weights @ offsets.reshape(num_aus, num_vertices * 3)).reshape(-1, num_vertices, 3)


def basis_from_rows(rows: np.ndarray, source: str) -> AUBasis:
    """An AUBasis from AUBlendSet rows `(33, V*3)` or `(33, V, 3)`: template first, then 32 targets."""
    rows = np.asarray(rows, dtype=np.float32)
    if rows.shape[0] != NUM_AUS + 1 or rows.ndim not in (2, 3) or (rows.ndim == 2 and rows.shape[1] % 3):
        raise TalkingFacesError(
            f"{source}: expected AUBlendSet rows of shape (33, V*3) or (33, V, 3), got {tuple(rows.shape)}; "
            "row 0 must be the template and rows 1..32 the AU targets."
        )
    rows = rows.reshape(NUM_AUS + 1, -1, 3)
    if not np.isfinite(rows).all():
        raise TalkingFacesError(f"{source}: the basis holds NaN or infinite values; regenerate it.")
    template = rows[0]
    return AUBasis(offsets=rows[1:] - template[None], template=template, source=source)


def load_aublendset(path: str | Path) -> AUBasis:
    """Read a basis in either AUBlendSet layout.

    - a folder with `template.npy` (first `V*3` row used) and `new_AU_vertice32.npy` (32 targets);
    - a `.npy` of shape `(33, V*3)` or `(33, V, 3)`.
    """
    path = Path(path)
    try:
        if path.is_dir():
            tpl_file, tgt_file = path / AUBLENDSET_TEMPLATE, path / AUBLENDSET_TARGETS
            missing = [f.name for f in (tpl_file, tgt_file) if not f.is_file()]
            if missing:
                raise TalkingFacesError(
                    f"AUBlendSet folder {path} lacks {', '.join(missing)}; it needs {AUBLENDSET_TEMPLATE} and {AUBLENDSET_TARGETS}."
                )
            targets = np.load(tgt_file, allow_pickle=False).astype(np.float32)
            width = targets.size // NUM_AUS
            template = np.load(tpl_file, allow_pickle=False).astype(np.float32).reshape(-1, width)[0:1]
            rows = np.concatenate([template, targets.reshape(NUM_AUS, width)], axis=0)
        elif path.is_file():
            rows = np.load(path, allow_pickle=False)
        else:
            raise TalkingFacesError(f"AU basis not found: {path}; pass an AUBlendSet identity folder or a (33, V*3) .npy file.")
    except TalkingFacesError:
        raise
    except Exception as exc:
        raise TalkingFacesError(f"Cannot read AU basis {path}: {exc}; pass a valid AUBlendSet .npy or folder.") from None
    return basis_from_rows(rows, str(path))
