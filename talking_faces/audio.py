"""Audio input: any common format and rate, resampled once to 16 kHz mono float32."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .errors import TalkingFacesError
from .ffmpeg_tool import ffmpeg_executable

SAMPLE_RATE = 16_000
AUDIO_FORMATS = "WAV, FLAC, MP3, M4A or OGG"
# What ffmpeg says when a file holds streams but none of them audio (e.g. a video without sound).
NO_AUDIO_STREAM = re.compile(r"does not contain any stream|matches no streams|Output file .* does not contain", re.I)


def _decode_with_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    import ffmpeg

    try:
        out, _ = (
            ffmpeg.input(str(path))
            .output("pipe:", format="f32le", ac=1, ar=SAMPLE_RATE)
            .run(cmd=ffmpeg_executable(), capture_stdout=True, capture_stderr=True)
        )
    except OSError as exc:
        raise TalkingFacesError(f"Cannot run ffmpeg to decode {path}: {exc.strerror}; reinstall imageio-ffmpeg or convert the file to WAV.") from None
    except ffmpeg.Error as exc:
        log = (exc.stderr or b"").decode(errors="replace")
        if NO_AUDIO_STREAM.search(log):
            raise TalkingFacesError(
                f"{path} has no audio stream (a silent video?); give a recording with speech, or a video with its sound."
            ) from None
        last = log.strip().splitlines()
        reason = last[-1] if last else "ffmpeg could not decode it"
        raise TalkingFacesError(f"Cannot decode audio {path}: {reason}; give a WAV, FLAC, MP3, M4A or OGG file.") from None
    return np.frombuffer(out, dtype=np.float32), SAMPLE_RATE


def check_audio_file(path: str | Path) -> None:
    """Raise a TalkingFacesError unless `path` is an existing file (checked before any decoding)."""
    path = Path(path)
    if path.is_dir():
        raise TalkingFacesError(f"Audio {path} is a folder; pass one audio file ({AUDIO_FORMATS}) inside it.")
    if not path.is_file():
        raise TalkingFacesError(f"Audio file not found: {path}; pass an existing {AUDIO_FORMATS} file.")


def load_audio(path: str | Path) -> np.ndarray:
    """Read an audio file as `(N,)` float32 samples at 16 kHz, mono (channels averaged).

    WAV, FLAC and OGG are read with soundfile; anything else ffmpeg can decode (MP3, M4A, ...)
    goes through ffmpeg. Resampling happens here and nowhere else.
    """
    path = Path(path)
    check_audio_file(path)
    try:
        import soundfile

        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        samples = samples.mean(axis=1)
    except Exception:  # soundfile cannot parse it: let ffmpeg try every other format
        samples, rate = _decode_with_ffmpeg(path)
    if samples.size == 0:
        raise TalkingFacesError(f"Audio file {path} holds no samples; give a recording with sound (silence is fine).")
    if not np.isfinite(samples).all():
        raise TalkingFacesError(f"Audio file {path} holds NaN or infinite samples; re-export it.")
    if rate != SAMPLE_RATE:
        import soxr

        # soxr's "HQ" is what librosa.resample(res_type="soxr_hq"), its default, runs.
        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


def num_output_frames(num_samples: int, fps: float) -> int:
    """Frames that cover `num_samples` of 16 kHz audio at `fps`: round(duration * fps), at least one."""
    return max(1, int(round(num_samples / SAMPLE_RATE * fps)))
