"""The `talkface` command line. Each module registers its commands on the apps in `common`."""

# Importing a module registers its commands.
from . import aublendnet_cmd, data_cmd, eval_cmd, facediffuser_cmd, faceformer_cmd, lgldm_cmd, render_cmd  # noqa: F401
from .common import app, main

__all__ = ["app", "main"]
