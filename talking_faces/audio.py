"""Audio input: any common format and rate, resampled once to 16 kHz mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import TalkingFacesError
from .ffmpeg_tool import ffmpeg_executable

SAMPLE_RATE = 16_000


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
        last = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        reason = last[-1] if last else "ffmpeg could not decode it"
        raise TalkingFacesError(f"Cannot decode audio {path}: {reason}; give a WAV, FLAC, MP3, M4A or OGG file.") from None
    return np.frombuffer(out, dtype=np.float32), SAMPLE_RATE


def load_audio(path: str | Path) -> np.ndarray:
    """Read an audio file as `(N,)` float32 samples at 16 kHz, mono (channels averaged).

    WAV, FLAC and OGG are read with soundfile; anything else ffmpeg can decode (MP3, M4A, ...)
    goes through ffmpeg. Resampling happens here and nowhere else.
    """
    path = Path(path)
    if not path.is_file():
        raise TalkingFacesError(f"Audio file not found: {path}; pass an existing WAV, FLAC, MP3, M4A or OGG file.")
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
        import librosa

        samples = librosa.resample(samples, orig_sr=rate, target_sr=SAMPLE_RATE)
    return np.ascontiguousarray(samples, dtype=np.float32)


def num_output_frames(num_samples: int, fps: float) -> int:
    """Frames that cover `num_samples` of 16 kHz audio at `fps`: round(duration * fps), at least one."""
    return max(1, int(round(num_samples / SAMPLE_RATE * fps)))
