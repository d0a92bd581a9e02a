"""The `talkface` command line. Each module registers its commands on the apps in `common`."""

# Importing a module registers its commands.
from . import (  # noqa: F401
    aublendnet_cmd, augment_cmd, character_cmd, data_cmd, eval_cmd, facediffuser_cmd, faceformer_cmd, lgldm_cmd,
    lipsync_cmd,
    render_cmd,
)
from .common import app, main, run

__all__ = ["app", "main", "run"]
