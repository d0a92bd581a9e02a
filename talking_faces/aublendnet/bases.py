"""AU bases of an identity predicted by AUBlendNet, with a content-addressed cache.

The rows are upstream's prediction as it is: row 0 the decoded neutral, rows 1..32 the AU targets.
Offsets are `B_k = target_k - row_0`, what upstream's `au_control.py` blends, so the decoder's error
on the neutral cancels, `--au-basis bases.npy` gives the same offsets as `--aublendnet`, and the
mesh at zero weights is exactly the user's identity (offsets are added to its own vertices).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write
from ..aus import NUM_AUS
from ..basis import AUBasis, basis_from_rows
from ..cache import cache_dir, cached_array
from ..devices import resolve_device
from ..errors import TalkingFacesError
from ..identity import FLAME_NUM_VERTICES, Identity, warn_unless_metres
from .checkpoints import DEFAULT_HEADS, load_predictor
from .predictor import StyleBlendNet

CACHE_VERSION = b"aublendnet-bases-v2"
_CHUNK = 1 << 22


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _remembered_digest(path: str | Path) -> str:
    """`file_digest`, remembered per (path, inode, size, mtime, ctime) so a 1 GB checkpoint is hashed once.

    Any write to the file changes its ctime, which no user tool can set back, so a changed file is re-hashed.
    """
    stat = Path(path).resolve().stat()
    identity = f"{Path(path).resolve()}|{stat.st_ino}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}"
    memo = cache_dir() / "aublendnet" / "digests" / hashlib.sha256(identity.encode()).hexdigest()
    try:
        return memo.read_text().strip()
    except OSError:
        digest = file_digest(path)
    try:
        atomic_write(memo, lambda tmp: tmp.write_text(digest))
    except TalkingFacesError:
        pass  # remembering is an optimisation only
    return digest


def cache_key(template: np.ndarray, aublendnet_path: str | Path, codebook_path: str | Path, num_heads: int = DEFAULT_HEADS) -> str:
    """Hash of the template's float32 values, both checkpoints' bytes (SHA-256) and the head count."""
    digest = hashlib.sha256(CACHE_VERSION)
    values = np.ascontiguousarray(template, dtype=np.float32)
    digest.update(repr(values.shape).encode() + values.tobytes())
    for path in (aublendnet_path, codebook_path):
        digest.update(_remembered_digest(path).encode())
    digest.update(str(num_heads).encode())
    return digest.hexdigest()


def check_identity(identity: Identity, model: StyleBlendNet | None = None) -> None:
    """Raise unless the identity has the topology AUBlendNet predicts for (FLAME, or the model's V)."""
    expected = model.config.vertex_dim // 3 if model is not None else FLAME_NUM_VERTICES
    if identity.num_vertices != expected:
        raise TalkingFacesError(
            f"AUBlendNet predicts bases for FLAME-topology heads ({expected} vertices), but {identity.name} is a "
            f"{identity.topology}; use a FLAME head, or drop --aublendnet/--codebook to build the procedural rig's basis."
        )
    warn_unless_metres(identity, "AUBlendNet")


@torch.inference_mode()
def predict_rows(model: StyleBlendNet, templates: torch.Tensor) -> torch.Tensor:
    """Upstream's raw prediction `(B, 33, V*3)` for neutral heads `templates (B, V*3)`, in eval mode."""
    model.eval()
    param = next(model.parameters())
    return model(templates.to(param.device, param.dtype)).rows


def aublendset_rows(model: StyleBlendNet, identity: Identity) -> np.ndarray:
    """The AUBlendSet layout `(33, V*3)` float32: row 0 the predicted neutral, rows 1..32 the predicted targets."""
    check_identity(identity, model)
    template = torch.from_numpy(identity.vertices.reshape(1, -1))
    return predict_rows(model, template)[0].float().cpu().numpy()


def predict_aublendset_cached(
    identity: Identity,
    aublendnet_path: str | Path,
    codebook_path: str | Path,
    device: torch.device | str = "cpu",
    num_heads: int = DEFAULT_HEADS,
) -> np.ndarray:
    """`aublendset_rows` for the two checkpoint files, served from the cache when it holds them."""
    check_identity(identity)
    for path, flag in ((aublendnet_path, "--aublendnet"), (codebook_path, "--codebook")):
        if not Path(path).is_file():
            raise TalkingFacesError(f"AUBlendNet checkpoint not found: {path}; pass an existing model.pth.tar as {flag}.")
    cached = cache_dir() / "aublendnet" / f"{cache_key(identity.vertices, aublendnet_path, codebook_path, num_heads)}.npy"

    def predict() -> np.ndarray:
        return aublendset_rows(load_predictor(aublendnet_path, codebook_path, num_heads).to(resolve_device(device)), identity)

    return cached_array(cached, predict, lambda rows: rows.shape == (NUM_AUS + 1, identity.vertices.size) and rows.dtype == np.float32,
                        "AUBlendNet bases")


def predict_basis_cached(
    identity: Identity,
    aublendnet_path: str | Path,
    codebook_path: str | Path,
    device: torch.device | str = "cpu",
    num_heads: int = DEFAULT_HEADS,
) -> AUBasis:
    """The identity's `(32, V, 3)` basis predicted by AUBlendNet (stage 2 + stage 1 files), cached on disk."""
    rows = predict_aublendset_cached(identity, aublendnet_path, codebook_path, device, num_heads)
    return basis_from_rows(rows, f"AUBlendNet {Path(aublendnet_path).name}")
