"""Reading users' pickle files (region masks, templates, raw VOCASET) without running their code.

A pickle can name any importable callable and call it while loading. The unpickler below resolves
only the names needed to rebuild numpy arrays, torch tensors and builtin containers; any other name
is refused before it is imported.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from talking_faces.errors import TalkingFacesError


def _torch_tensor_from_bytes(data: bytes) -> Any:
    # Tensors pickled with plain `pickle` embed a torch.save blob; read it with torch's own safe loader.
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _torch_rebuild(name: str) -> Any:
    import torch._utils

    return getattr(torch._utils, name)


_BUILTINS = {"set", "frozenset", "list", "dict", "tuple", "int", "float", "complex", "bool", "str", "bytes",
             "bytearray", "slice", "range"}
_NUMPY = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return getattr(__import__("builtins"), name)
        if (module, name) in _NUMPY:
            return _numpy_attr(module, name)
        if module == "_codecs" and name == "encode":  # bytes written by Python 3 with protocol 2
            import codecs

            return codecs.encode
        if module == "collections" and name == "OrderedDict":
            from collections import OrderedDict

            return OrderedDict
        if module == "torch.storage" and name == "_load_from_bytes":
            return _torch_tensor_from_bytes
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _torch_rebuild(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _numpy_attr(module: str, name: str) -> Any:
    import importlib

    # numpy 2 moved numpy.core to numpy._core; pickles name either. Try the current name first.
    for candidate in (module.replace("numpy.core", "numpy._core"), module.replace("numpy._core", "numpy.core")):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle(path: str | Path) -> Any:
    """Unpickle a data file that may only hold numpy arrays, torch tensors and builtin containers.

    Python 2 pickles (FLAME masks, VOCASET) are retried with `encoding="latin1"`.
    """
    path = Path(path)
    if not path.is_file():
        raise TalkingFacesError(f"Pickle file not found: {path}; check the path.")
    data = path.read_bytes()
    errors = []
    for encoding in ("ASCII", "latin1"):
        try:
            return _RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
        except pickle.UnpicklingError as exc:
            if str(exc).startswith("refusing"):
                raise TalkingFacesError(
                    f"{path} holds objects other than arrays ({exc}); only pickles of numpy arrays and builtin "
                    "containers are read, for safety. Re-save it with plain arrays."
                ) from None
            errors.append(exc)
        except (UnicodeDecodeError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError, KeyError) as exc:
            errors.append(exc)
    raise TalkingFacesError(f"Cannot read pickle {path}: {errors[-1]}; the file is corrupt or not a pickle.")
