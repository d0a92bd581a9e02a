"""Arrays that may be numpy or torch: the CPU path of the default model runs on numpy, without importing torch.

torch is never imported here: a torch tensor is recognised by its methods.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_tensor(array: Any) -> bool:
    """Whether `array` is a torch tensor (without importing torch)."""
    return not isinstance(array, np.ndarray) and hasattr(array, "new_tensor")


def to_numpy(array: Any) -> np.ndarray:
    """`array` as a numpy array on the CPU (a copy only when it is a tensor on another device)."""
    return array.detach().cpu().numpy() if is_tensor(array) else np.asarray(array)


def like(array: Any, reference: Any) -> Any:
    """`array` converted to the kind (numpy or torch), device and dtype of `reference`."""
    if is_tensor(reference):
        return array.to(reference.device, reference.dtype) if is_tensor(array) else reference.new_tensor(array)
    return to_numpy(array).astype(reference.dtype, copy=False)
