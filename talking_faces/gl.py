"""Choosing the OpenGL backend for offscreen rendering, once per process, and the OSMesa-only fixes.

PyOpenGL binds its platform (`PYOPENGL_PLATFORM`) when `OpenGL` is first imported, so the choice
must happen before pyrender is imported and cannot change afterwards in the same process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
import sys
import types

from .devices import has_nvidia_driver
from .errors import TalkingFacesError

BACKENDS = ("osmesa", "egl")
# What each backend loads, and the Debian packages that provide it.
_LIBRARIES = {"osmesa": "OSMesa", "egl": "EGL"}
APT_PACKAGES = {"osmesa": "libosmesa6", "egl": "libegl1 libgl1-mesa-dri"}

_chosen: str | None = None


def use_backend(requested: str = "auto") -> str:
    """Fix this process's OpenGL backend (`auto`, `osmesa` or `egl`) and return the one in use.

    `auto` prefers EGL on an NVIDIA GPU, else OSMesa (the fastest on a CPU), else EGL (Mesa's
    llvmpipe). The first call decides; later calls with `auto` or the same name return it, and a
    different name raises, because PyOpenGL cannot switch platforms within a process.
    """
    global _chosen
    name = requested.strip().lower()
    if name not in ("auto", *BACKENDS):
        raise TalkingFacesError(f"Unknown OpenGL backend {requested!r}; use auto, osmesa or egl.")
    if _chosen is None:
        _chosen = _activate(name)
    elif name not in ("auto", _chosen):
        raise TalkingFacesError(
            f"OpenGL backend {_chosen} is already in use in this process and cannot switch to {name}; "
            f"use {_chosen} or start a new process."
        )
    return _chosen


def _activate(name: str) -> str:
    preset = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    if "OpenGL" in sys.modules:  # someone imported PyOpenGL first: its platform is already bound
        bound = preset or "the system default"
        if preset not in BACKENDS or name not in ("auto", preset):
            raise TalkingFacesError(
                f"PyOpenGL was imported with platform {bound} before the renderer chose {name}; "
                "set PYOPENGL_PLATFORM=osmesa or egl before importing OpenGL, or run in a new process."
            )
        name = preset
    elif name == "auto":
        name = preset if preset in BACKENDS else _auto_backend()
    if not _library_available(name):
        raise TalkingFacesError(
            f"OpenGL backend {name} needs lib{_LIBRARIES[name]}, which is not installed; "
            f"run `sudo apt-get install {APT_PACKAGES[name]}` or choose the other backend (osmesa or egl)."
        )
    os.environ["PYOPENGL_PLATFORM"] = name
    if name == "osmesa":
        _fix_pyrender_under_osmesa()
    _defer_pyrender_viewer()
    return name


def _defer_pyrender_viewer() -> None:
    """Let `import pyrender` skip its interactive viewer until someone uses `pyrender.Viewer`.

    pyrender imports the viewer at package import, and with it pyglet, which probes every GL library
    it knows (0.5-1 CPU-s, a third of a short render's start-up); offscreen rendering never uses it.
    A stand-in module is registered instead: its `Viewer` imports the real one when first called.
    """
    if "pyrender" in sys.modules or "pyrender.viewer" in sys.modules:
        return
    stand_in = types.ModuleType("pyrender.viewer", "Placeholder: the real pyrender.viewer is imported on first use.")

    class Viewer:
        def __new__(cls, *args, **kwargs):
            del sys.modules["pyrender.viewer"]
            real = importlib.import_module("pyrender.viewer").Viewer
            sys.modules["pyrender"].Viewer = real
            return real(*args, **kwargs)

    stand_in.Viewer = Viewer
    sys.modules["pyrender.viewer"] = stand_in


def _auto_backend() -> str:
    if has_nvidia_driver() and _library_available("egl"):
        return "egl"
    for name in BACKENDS:
        if _library_available(name):
            return name
    raise TalkingFacesError(
        "No OpenGL library for offscreen rendering was found; run `sudo apt-get install libosmesa6` "
        "(or libegl1 libgl1-mesa-dri)."
    )


def _library_available(name: str) -> bool:
    """Whether the shared library behind backend `name` can be found (as PyOpenGL looks for it)."""
    return ctypes.util.find_library(_LIBRARIES[name]) is not None


def _fix_pyrender_under_osmesa() -> None:
    """Make pyrender 0.1.45 work and not leak under OSMesa with numpy 2 and PyOpenGL 3.1.0.

    Only for OSMesa: importing `OpenGL.osmesa` under EGL binds the wrong library and breaks rendering.
    """
    import numpy as np

    if not hasattr(np, "infty"):  # removed in numpy 2; pyrender's mesh bounds still use it
        np.infty = np.inf

    import OpenGL.osmesa as osmesa
    from OpenGL import arrays
    from OpenGL import platform as gl_platform
    from OpenGL.raw.osmesa._types import OSMesaContext

    # PyOpenGL 3.1.0 lacks the OSMesa >= 11.2 profile API that pyrender's OSMesa platform imports.
    constants = {
        "OSMESA_DEPTH_BITS": 0x30, "OSMESA_STENCIL_BITS": 0x31, "OSMESA_ACCUM_BITS": 0x32,
        "OSMESA_PROFILE": 0x33, "OSMESA_CORE_PROFILE": 0x34, "OSMESA_COMPAT_PROFILE": 0x35,
        "OSMESA_CONTEXT_MAJOR_VERSION": 0x36, "OSMESA_CONTEXT_MINOR_VERSION": 0x37,
    }
    for constant, value in constants.items():
        if not hasattr(osmesa, constant):
            setattr(osmesa, constant, value)
    if not hasattr(osmesa, "OSMesaCreateContextAttribs"):

        @gl_platform.types(OSMesaContext, arrays.GLintArray, OSMesaContext)
        def OSMesaCreateContextAttribs(attribList, sharelist):  # noqa: N802 (the C name)
            pass

        osmesa.OSMesaCreateContextAttribs = gl_platform.createFunction(
            OSMesaCreateContextAttribs, gl_platform.PLATFORM.OSMesa, None, error_checker=None
        )

    # pyrender keys its shader-program cache on the current-context pointer, and PyOpenGL returns a
    # new, identity-compared pointer object on every query: each frame would compile (and keep) new
    # shaders, about 3 MB per frame. Comparing pointers by address makes the cache hit.
    def address(pointer: ctypes._Pointer) -> int:
        return ctypes.cast(pointer, ctypes.c_void_p).value or 0

    OSMesaContext.__hash__ = lambda self: hash(address(self))
    OSMesaContext.__eq__ = lambda self, other: isinstance(other, OSMesaContext) and address(self) == address(other)
