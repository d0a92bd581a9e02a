"""Choosing where an identity's AU basis comes from: a file, AUBlendNet, or the procedural rig."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .basis import AUBasis, load_aublendset
from .errors import TalkingFacesError
from .identity import Identity

if TYPE_CHECKING:
    import torch


def resolve_basis(
    identity: Identity,
    au_basis: str | Path | None = None,
    aublendnet: str | Path | None = None,
    codebook: str | Path | None = None,
    device: torch.device | str = "cpu",
    landmarks: str | Path | None = None,
) -> AUBasis:
    """The `(32, V, 3)` basis for `identity`.

    Priority: an AUBlendSet file (`au_basis`), then AUBlendNet predictions (`aublendnet` stage-2 and
    `codebook` stage-1 checkpoints, FLAME only), then the procedural rig built from landmarks
    (detected, or given by a `landmarks` JSON file).
    """
    if au_basis is not None and aublendnet is not None:
        raise TalkingFacesError("Give either --au-basis or --aublendnet/--codebook, not both.")
    if au_basis is not None:
        basis = load_aublendset(au_basis)
        basis.check_matches(identity.num_vertices)
        return basis
    if aublendnet is not None or codebook is not None:
        if aublendnet is None or codebook is None:
            raise TalkingFacesError("AUBlendNet needs both checkpoints: --aublendnet STAGE2 and --codebook STAGE1.")
        from .aublendnet.bases import predict_basis_cached

        return predict_basis_cached(identity, aublendnet, codebook, device=device)
    from .rig_store import RIG_SOURCE, load_rig_offsets, rig_key

    stored = load_rig_offsets(rig_key(identity, landmarks), identity.num_vertices)  # without importing the rig and scipy
    if stored is not None:
        return AUBasis(offsets=stored, template=identity.vertices.astype(np.float32), source=RIG_SOURCE)
    from .rig import build_rig_basis

    return build_rig_basis(identity, landmarks_file=landmarks)
