"""AUBlendSet on disk: one folder per identity (`template.npy` + `new_AU_vertice32.npy`), and its split.

The split follows upstream: folder names sorted lexicographically ('0', '1', '10', '100', ...), then
train = [0:400], val = [400:450] and test = [450:500], the 50 identities upstream never trains on
(upstream's own test "split" is one training identity picked by substring match).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..basis import load_aublendset
from ..errors import TalkingFacesError

SPLITS: dict[str, slice] = {"train": slice(0, 400), "val": slice(400, 450), "test": slice(450, 500), "all": slice(None)}


def list_identities(root: str | Path) -> list[str]:
    """Identity folder names under `root`, sorted lexicographically as upstream."""
    root = Path(root)
    if not root.is_dir():
        raise TalkingFacesError(f"AUBlendSet data root not found: {root}; pass the folder that holds one folder per identity.")
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def split_identities(names: list[str], split: str) -> list[str]:
    """The identities of one split: `train`, `val`, `test` (see the module docstring) or `all`."""
    if split not in SPLITS:
        raise TalkingFacesError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    return names[SPLITS[split]]


class AUBlendSetDataset(Dataset):
    """Identities of one split, read lazily.

    Item i is `(rows, template)`: `(33, V*3)` float32 absolute rows (template, then the 32 AU targets
    in AUBlendSet order) and the `(V*3,)` template.
    """

    def __init__(self, root: str | Path, split: str = "train"):
        self.root = Path(root)
        self.split = split
        all_names = list_identities(self.root)
        self.names = split_identities(all_names, split)
        if not self.names:
            raise TalkingFacesError(
                f"Split {split!r} of {self.root} is empty: it has {len(all_names)} identity folders and {split} takes "
                f"sorted folders [{SPLITS[split].start}:{SPLITS[split].stop}]; use --split all or add identities."
            )

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.from_numpy(load_aublendset(self.root / self.names[index]).to_aublendset())
        return rows, rows[0]

    @property
    def vertex_dim(self) -> int:
        """V*3 of the first identity (all must match)."""
        return int(self[0][0].shape[1])
