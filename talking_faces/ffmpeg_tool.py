"""Finding an ffmpeg executable: the static build inside imageio-ffmpeg, else the system one."""

import shutil

from .errors import TalkingFacesError


def ffmpeg_executable() -> str:
    """Path of an ffmpeg binary with libx264 and AAC."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # the wheel is absent or its binary is missing
        found = shutil.which("ffmpeg")
        if found:
            return found
    raise TalkingFacesError("ffmpeg was not found; run `pip install imageio-ffmpeg` or `apt-get install ffmpeg`.")
