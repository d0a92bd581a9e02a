"""Reading users' pickle files (region masks, templates, raw VOCASET, FLAME models) without running their code.

A pickle can name any importable callable and call it while loading. The unpickler below resolves
only the names needed to rebuild numpy arrays, torch tensors, builtin containers and scipy CSC/CSR
matrices; chumpy objects (in FLAME's `generic_model.pkl`) become `ChumpyArray` stand-ins without
importing chumpy. Any other name is refused before it is imported.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from talking_faces.errors import TalkingFacesError


def _torch_tensor_from_bytes(data: bytes) -> Any:
    # Tensors pickled with plain `pickle` embed a torch.save blob; read it with torch's own safe loader.
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _torch_rebuild(name: str) -> Any:
    import torch._utils

    return getattr(torch._utils, name)


class ChumpyArray:
    """What a pickled chumpy object becomes: its state, and the array stored in it; no chumpy code runs.

    A plain `chumpy.ch.Ch` pickles its `__dict__`, whose value lives under `x`. Expressions (chumpy
    sums, reorderings) store their chumpy operands rather than a value, so they have no `array`.
    """

    pickled_name = "chumpy.ch.Ch"
    state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    @property
    def array(self) -> np.ndarray:
        """The stored value: `x` of the state, else its only ndarray unless it has chumpy operands."""
        fields = _state_fields(self.state)
        if "x" in fields:
            value = fields["x"]
            return value.array if isinstance(value, ChumpyArray) else np.asarray(value)
        arrays = [v for v in fields.values() if isinstance(v, np.ndarray)]
        if len(arrays) != 1 or any(isinstance(v, ChumpyArray) for v in fields.values()):
            raise TalkingFacesError(
                f"A pickled {self.pickled_name} holds no stored array (it is a chumpy expression); re-save the "
                "pickle with numpy arrays (chumpy's `.r`)."
            )
        return arrays[0]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return np.asarray(self.array, dtype=dtype)


def _state_fields(state: Any) -> dict:
    # BUILD passes a dict, or (dict, slots dict) for classes with __slots__.
    if isinstance(state, tuple):
        return {k: v for part in state if isinstance(part, dict) for k, v in part.items()}
    return state if isinstance(state, dict) else {}


_SPARSE_MODULES = {"scipy.sparse", "scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr", "scipy.sparse._csr"}
_SPARSE_CLASSES = {"csc_matrix", "csr_matrix", "csc_array", "csr_array"}
_BUILTINS = {"object", "set", "frozenset", "list", "dict", "tuple", "int", "float", "complex", "bool", "str",
             "bytes", "bytearray", "slice", "range"}
_NUMPY = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._objects: set[type] = set()  # classes resolved so far that may be instantiated without arguments

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "chumpy":
            # a subclass per pickled name, so that errors can say which chumpy class it was
            return self._object_class(type(name, (ChumpyArray,), {"pickled_name": f"{module}.{name}"}))
        if module in _SPARSE_MODULES and name in _SPARSE_CLASSES:
            import scipy.sparse  # their pickled state is plain arrays, set by BUILD; old module paths map here

            return self._object_class(getattr(scipy.sparse, name))
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":  # protocol 0/1 objects
            return self._reconstruct
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

    def _object_class(self, cls: type) -> type:
        self._objects.add(cls)
        return cls

    def _reconstruct(self, cls: type, base: type, state: Any) -> Any:
        # copyreg._reconstructor would call any base class; only bare objects of allowed classes are built.
        if cls not in self._objects or base is not object or state is not None:
            raise pickle.UnpicklingError(f"refusing to load copyreg._reconstructor for {getattr(cls, '__name__', cls)}")
        return object.__new__(cls)


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
    """Unpickle a data file that may only hold numpy arrays, torch tensors, builtin containers, scipy
    CSC/CSR matrices and chumpy arrays (as `ChumpyArray`).

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
