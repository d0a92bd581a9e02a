"""Writing frames as an MP4: RGB or RGBX images stream into ffmpeg (H.264 yuv420p + AAC), atomic rename.

`write_video` takes any iterable of images plus fps, size and the audio file; it knows nothing of
meshes. `render_mp4` draws an `Animation` or `AnimationStream` with a `FaceRenderer` into it.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import queue
import secrets
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .animation import Animation, AnimationStream
from .atomic import check_output_writable
from .errors import TalkingFacesError
from .ffmpeg_tool import ffmpeg_executable

if TYPE_CHECKING:  # the renderer's imports (scipy, pyrender) wait until a frame is drawn
    from .render import FaceRenderer

# x264 "ultrafast": on a CPU the encoder competes with the software rasteriser for the cores, and
# ultrafast costs 0.6 ms a 512² frame less than "veryfast" (2.3 against 2.9 ms, half of it the
# RGB to YUV conversion). Smooth-shaded faces on a plain background stay small: about 330 kbit/s
# at 512² (25 MB for 10 minutes). CRF 18 is visually lossless for them.
X264_PRESET = "ultrafast"
X264_CRF = 18
# Frames waiting for ffmpeg: the draw never waits on the pipe unless the encoder falls this far behind.
WRITE_QUEUE_FRAMES = 8
PIPE_MAX_SIZE = Path("/proc/sys/fs/pipe-max-size")
# ffmpeg's raw pixel format of `(H, W, channels)` uint8 images: RGB, or RGB plus an unused byte
# (the renderer's native layout: read back 6x faster than RGB, and converted to YUV faster).
PIXEL_FORMATS = {3: "rgb24", 4: "rgb0"}


def check_size(size: int) -> None:
    """Raise a TalkingFacesError unless `size` is a valid video width and height (even, for yuv420p)."""
    if size % 2:
        raise TalkingFacesError(f"Video size {size} is odd; H.264 in yuv420p needs an even size such as {size + 1}.")


def write_video(
    images: Iterable[np.ndarray],
    out: Path,
    fps: float,
    size: int,
    audio_path: Path,
    on_frame: Callable[[], None] | None = None,
) -> None:
    """Encode `(size, size, 3)` uint8 RGB images (or `(size, size, 4)` RGBX, the fourth byte unused) at
    `fps` with the audio of `audio_path` into the MP4 `out`. All images have the layout of the first.

    Images are consumed one at a time, so memory does not grow with length. The file appears at
    `out` only when complete; on any failure or interrupt nothing is left.
    """
    out = Path(out)
    check_size(size)
    images = iter(images)
    first = next(images, None)
    channels = 3 if first is None else first.shape[-1]
    if channels not in PIXEL_FORMATS:
        raise ValueError(f"images must be (H, W, 3) RGB or (H, W, 4) RGBX, got {first.shape}")
    # ffmpeg creates it (so it gets the user's usual permissions); the random part avoids clashes.
    partial = out.absolute().parent / f".{out.stem}-{secrets.token_hex(4)}.tmp.mp4"
    try:
        with _muxable_audio(Path(audio_path)) as audio, _encoder(audio, partial, size, fps, channels) as encoder:
            for image in itertools.chain(() if first is None else (first,), images):
                encoder.write(image)
                if on_frame is not None:
                    on_frame()
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def render_mp4(
    animation: Animation | AnimationStream,
    out: Path,
    size: int = 512,
    gl: str = "auto",
    on_frame: Callable[[], None] | None = None,
    sample: int = 0,
    renderer: FaceRenderer | None = None,
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
) -> None:
    """Draw sample `sample` of `animation` at `animation.fps` into the MP4 `out` with its audio.

    `renderer` is reused when given (its size wins over `size`); otherwise one is made for the
    animation's neutral, faces and per-vertex colours, and closed at the end. `on_chunk(start,
    (n, V, 3))` sees each chunk of vertices as it is composed (on the shading thread).
    """
    out = Path(out)
    check_output_writable(out)
    if renderer is not None:
        _draw_mp4(animation, out, renderer, on_frame, sample, on_chunk)
        return
    from .render import FaceRenderer

    check_size(size)
    neutral = animation.vertices[0] if animation.neutral is None else animation.neutral
    with FaceRenderer(neutral, animation.faces, size=size, gl=gl, albedo=animation.albedo, view=animation.view) as own:
        _draw_mp4(animation, out, own, on_frame, sample, on_chunk)


def _draw_mp4(
    animation: Animation | AnimationStream, out: Path, renderer: FaceRenderer, on_frame: Callable[[], None] | None,
    sample: int, on_chunk: Callable[[int, np.ndarray], None] | None,
) -> None:
    """`render_mp4`'s frames, drawn with `renderer`."""
    chunks = animation.chunks(sample)
    if on_chunk is not None:
        chunks = _observed(chunks, on_chunk)
    moving = animation.moving if isinstance(animation, AnimationStream) else None
    with closing(renderer.render_chunks(chunks, moving)) as images:  # stops the shading thread on any exit
        write_video(images, out, animation.fps, renderer.size, animation.audio_path, on_frame)


def _observed(chunks: Iterator[tuple[int, np.ndarray]], on_chunk: Callable[[int, np.ndarray], None]) -> Iterator[tuple[int, np.ndarray]]:
    for start, chunk in chunks:
        on_chunk(start, chunk)
        yield start, chunk


class _Encoder:
    """An ffmpeg process that takes raw RGB frames on stdin, fed by a writer thread from a bounded queue."""

    def __init__(self, process: subprocess.Popen, log: tempfile.SpooledTemporaryFile) -> None:
        self._process, self._log = process, log
        self._queue: queue.Queue = queue.Queue(maxsize=WRITE_QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._feed, name="talkface-ffmpeg-writer", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        stdin = self._process.stdin
        while (frame := self._queue.get()) is not None:
            if self._error is None:  # after a failure, drain the queue so write() never blocks
                try:
                    stdin.write(frame)
                except BaseException as exc:  # BrokenPipeError when ffmpeg stops; handed to write()/finish()
                    self._error = exc

    def write(self, frame: np.ndarray) -> None:
        """Queue one `(H, W, 3)` uint8 frame for ffmpeg."""
        self._raise_if_failed()
        self._queue.put(np.ascontiguousarray(frame))

    def finish(self) -> None:
        """Send the last frame, close ffmpeg's input and wait for it to write the file."""
        self._stop_feeding()
        self._raise_if_failed()
        self._process.stdin.close()
        if self._process.wait() != 0:
            raise self.failure()

    def _stop_feeding(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            self._process.wait()
            raise self.failure() from None

    def abort(self) -> None:
        """Stop ffmpeg (its partial file is the caller's to remove) and the writer thread."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._error = self._error or BrokenPipeError()
        while True:  # unblock a put() that waits on a full queue, then stop the thread
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._stop_feeding()

    def failure(self) -> TalkingFacesError:
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {self._process.returncode}"
        return TalkingFacesError(f"ffmpeg could not write the video: {reason}; check the audio file and free disk space.")


def _enlarge_pipe(pipe: object, frame_bytes: int) -> None:
    """Let ffmpeg's stdin pipe hold whole frames (Linux: 64 KB by default, up to pipe-max-size unprivileged)."""
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        return
    try:
        limit = int(PIPE_MAX_SIZE.read_text())
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, min(limit, 2 * frame_bytes))
    except (OSError, ValueError):
        pass  # a smaller pipe only costs speed


def encoder_command(audio: Path, target: Path, size: int, fps: float, channels: int = 3) -> list[str]:
    """The ffmpeg command that encodes raw `size`x`size` frames from stdin, RGB (`channels` 3) or RGBX (4),
    with `audio` into the MP4 `target`."""
    import ffmpeg

    video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt=PIXEL_FORMATS[channels], s=f"{size}x{size}", framerate=fps)
    stream = ffmpeg.output(
        video, ffmpeg.input(str(audio)).audio, str(target), format="mp4",
        vcodec="libx264", pix_fmt="yuv420p", preset=X264_PRESET, crf=X264_CRF,
        acodec="aac", audio_bitrate="160k", movflags="+faststart",
    )
    return stream.global_args("-hide_banner", "-nostats", "-loglevel", "error").overwrite_output().compile(cmd=ffmpeg_executable())


@contextmanager
def _encoder(audio: Path, target: Path, size: int, fps: float, channels: int) -> Iterator[_Encoder]:
    args = encoder_command(audio, target, size, fps, channels)
    log = tempfile.TemporaryFile()  # a file, not a pipe: a full stderr pipe would stall ffmpeg
    try:
        # Its own session: Ctrl-C reaches only us, and we stop ffmpeg ourselves.
        process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    except OSError as exc:
        log.close()
        raise TalkingFacesError(
            f"Cannot run ffmpeg ({args[0]}): {exc.strerror}; run `pip install imageio-ffmpeg` or `apt-get install ffmpeg`."
        ) from None
    _enlarge_pipe(process.stdin, size * size * channels)
    encoder = _Encoder(process, log)
    try:
        yield encoder
        encoder.finish()
    finally:
        encoder.abort()
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
