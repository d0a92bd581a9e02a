"""Writing an animation as an MP4: frames stream into ffmpeg (H.264 yuv420p + AAC), atomic rename."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .appearance import vertex_albedo
from .errors import TalkingFacesError
from .ffmpeg_tool import ffmpeg_executable
from .render import FaceRenderer

if TYPE_CHECKING:
    import numpy as np

    from .pipeline import Animation

# x264 "veryfast" keeps the encoder from competing with the software rasteriser for the CPU;
# CRF 18 is visually lossless for flat-shaded faces.
X264_PRESET = "veryfast"
X264_CRF = 18


def check_output_writable(path: Path) -> None:
    """Raise a TalkingFacesError now, before any work, unless a file can be created at `path`."""
    path = Path(path)
    folder = path.absolute().parent
    if path.is_dir():
        raise TalkingFacesError(f"Output {path} is a folder; give a file name such as {path / 'out.mp4'}.")
    if not folder.is_dir():
        raise TalkingFacesError(f"Output folder {folder} does not exist; create it or choose another output path.")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".talkface-check-"):
            pass
    except OSError as exc:
        raise TalkingFacesError(f"Cannot write to {folder}: {exc.strerror}; choose a writable output folder.") from None


def check_size(size: int) -> None:
    """Raise a TalkingFacesError unless `size` is a valid video width and height (even, for yuv420p)."""
    if size % 2:
        raise TalkingFacesError(f"Video size {size} is odd; H.264 in yuv420p needs an even size such as {size + 1}.")


def render_mp4(
    animation: Animation,
    out: Path,
    size: int = 512,
    gl: str = "auto",
    on_frame: Callable[[], None] | None = None,
) -> None:
    """Render `animation.vertices` `(T, V, 3)` at `animation.fps` into an MP4 with its audio.

    Frames go one at a time from the renderer to ffmpeg's stdin, so memory does not grow with
    length. The file appears at `out` only when complete; on any failure or interrupt nothing is left.
    """
    out = Path(out)
    check_size(size)
    check_output_writable(out)
    neutral = animation.vertices[0] if animation.neutral is None else animation.neutral
    rotation = animation.view  # turns a head that is not y-up, facing +z, upright for the camera

    def view(vertices: np.ndarray) -> np.ndarray:
        return vertices if rotation is None else vertices @ rotation.T

    neutral = view(neutral)
    albedo = vertex_albedo(neutral, animation.faces)
    renderer = FaceRenderer(neutral, animation.faces, size=size, gl=gl, albedo=albedo)
    # ffmpeg creates it (so it gets the user's usual permissions); the random part avoids clashes.
    partial = out.absolute().parent / f".{out.stem}-{secrets.token_hex(4)}.tmp.mp4"
    try:
        with renderer, _muxable_audio(animation.audio_path) as audio, _encoder(audio, partial, size, animation.fps) as encoder:
            for vertices in animation.vertices:
                encoder.write(renderer.render(view(vertices)))
                if on_frame is not None:
                    on_frame()
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


class _Encoder:
    """An ffmpeg process that takes raw RGB frames on stdin."""

    def __init__(self, process: subprocess.Popen, log: tempfile.SpooledTemporaryFile) -> None:
        self._process, self._log = process, log

    def write(self, frame: np.ndarray) -> None:
        """Send one `(H, W, 3)` uint8 frame."""
        try:
            self._process.stdin.write(frame.tobytes())
        except BrokenPipeError:
            self._process.wait()
            raise self.failure() from None

    def failure(self) -> TalkingFacesError:
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {self._process.returncode}"
        return TalkingFacesError(f"ffmpeg could not write the video: {reason}; check the audio file and free disk space.")


@contextmanager
def _encoder(audio: Path, target: Path, size: int, fps: float) -> Iterator[_Encoder]:
    import ffmpeg

    video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{size}x{size}", framerate=fps)
    stream = ffmpeg.output(
        video, ffmpeg.input(str(audio)).audio, str(target), format="mp4",
        vcodec="libx264", pix_fmt="yuv420p", preset=X264_PRESET, crf=X264_CRF,
        acodec="aac", audio_bitrate="160k", movflags="+faststart",
    )
    args = stream.global_args("-hide_banner", "-nostats", "-loglevel", "error").overwrite_output().compile(cmd=ffmpeg_executable())
    log = tempfile.TemporaryFile()  # a file, not a pipe: a full stderr pipe would stall ffmpeg
    try:
        # Its own session: Ctrl-C reaches only us, and we stop ffmpeg ourselves.
        process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    except OSError as exc:
        log.close()
        raise TalkingFacesError(
            f"Cannot run ffmpeg ({args[0]}): {exc.strerror}; run `pip install imageio-ffmpeg` or `apt-get install ffmpeg`."
        ) from None
    encoder = _Encoder(process, log)
    try:
        yield encoder
        process.stdin.close()
        if process.wait() != 0:
            raise encoder.failure()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if not process.stdin.closed:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
        log.close()


@contextmanager
def _muxable_audio(path: Path) -> Iterator[Path]:
    """`path`, or a temporary WAV copy of it when ffmpeg cannot decode the file itself.

    The audio was already read (with soundfile or ffmpeg) by `load_audio`, so one of the two works.
    """
    if _ffmpeg_decodes(path):
        yield path
        return
    import soundfile

    samples, rate = soundfile.read(str(path), dtype="float32")
    with tempfile.TemporaryDirectory(prefix="talkface-audio-") as folder:
        copy = Path(folder) / "audio.wav"
        soundfile.write(str(copy), samples, rate, subtype="FLOAT")
        yield copy


def _ffmpeg_decodes(path: Path) -> bool:
    """Whether ffmpeg can decode the first audio stream of `path` (a 50 ms trial)."""
    args = [ffmpeg_executable(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-t", "0.05", "-f", "null", "-"]
    try:
        return subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
