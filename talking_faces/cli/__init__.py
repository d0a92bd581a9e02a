"""The `talkface` command line. Each module registers its commands on the apps in `common`."""

from . import render_cmd  # noqa: F401  (registers `render`)
from .common import app, main

__all__ = ["app", "main"]
