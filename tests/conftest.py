"""Shared test helpers: generated speech-like audio and the shared-fixture lookup."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

PROJECT = Path(__file__).resolve().parents[1]


def _shared_fixtures() -> Path:
    """`$TALKING_FACES_FIXTURES`, else the nearest `shared/fixtures` beside the project or a folder above it.

    The one definition of where the shared fixtures are; tests that use them skip when it is absent.
    """
    if os.environ.get("TALKING_FACES_FIXTURES"):
        return Path(os.environ["TALKING_FACES_FIXTURES"])
    for folder in PROJECT.parents:
        if (folder / "shared" / "fixtures").is_dir():
            return folder / "shared" / "fixtures"
    return PROJECT.parent / "shared" / "fixtures"


SHARED_FIXTURES = _shared_fixtures()
ASSETS = PROJECT / "assets"


def write_speech_like(path: Path, seconds: float = 1.5, rate: int = 22_050, seed: int = 0) -> Path:
    """Write a voiced, syllable-modulated signal (a 120 Hz buzz through two moving formants) as a WAV."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    formants = (700 + 300 * np.sin(2 * np.pi * 2.5 * t), 1200 + 500 * np.sin(2 * np.pi * 1.7 * t))
    harmonics = np.arange(1, 30)[:, None]
    gains = sum(np.exp(-(((harmonics * pitch) - f) / 150.0) ** 2) for f in formants)
    voice = (gains * np.sin(harmonics * phase)).sum(axis=0)
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5  # ~4 syllables a second, pauses between
    signal = voice * syllables + 0.003 * rng.standard_normal(t.shape)
    soundfile.write(str(path), (0.3 * signal / np.abs(signal).max()).astype(np.float32), rate)
    return path


@pytest.fixture(scope="session", autouse=True)
def temporary_files_stay_in_tmp_path(tmp_path_factory):
    """The temporary folder of the code under test and of its subprocesses (torchrun's torchelastic_*
    rendezvous folders, torch's inductor cache) is a folder of pytest's own tree, so the suite leaves
    nothing in $TMPDIR."""
    folder = tmp_path_factory.mktemp("tmpdir")
    patch = pytest.MonkeyPatch()
    patch.setenv("TMPDIR", str(folder))
    patch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    patch.undo()


@pytest.fixture(scope="session", autouse=True)
def cache_stays_in_tmp_path(tmp_path_factory):
    """Bases the code caches between runs (rig, AUBlendNet) go to a folder of pytest's tree, not ~/.cache."""
    from talking_faces.cache import CACHE_ENV

    patch = pytest.MonkeyPatch()
    patch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
    yield
    patch.undo()


@pytest.fixture
def one_thread():
    """Tiny models run ~3x faster on one torch thread than on two busy cores; restores the count after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    """A 1.5 s speech-like 22.05 kHz mono WAV in the test's temporary folder."""
    return write_speech_like(tmp_path / "speech.wav")


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    """The bundled sample speech (9.3 s, espeak-ng), as 16 kHz float32 samples."""
    from talking_faces.audio import load_audio

    return load_audio(ASSETS / "sample_speech.wav")


@pytest.fixture(scope="session")
def transcript() -> str:
    """The transcript of the bundled sample speech."""
    return (ASSETS / "sample_speech.txt").read_text()


@pytest.fixture
def shared_fixture():
    """`shared_fixture(name)`: the path of a file in the shared fixtures, skipping the test if absent."""

    def find(name: str) -> Path:
        path = SHARED_FIXTURES / name
        if not path.is_file():
            pytest.skip(f"shared fixture {name} is not available")
        return path

    return find


@pytest.fixture
def mp4_info():
    """`mp4_info(path)`: codec facts of a video, read with ffmpeg alone (users may lack ffprobe).

    Returns a dict: `header` (ffmpeg's stream listing), `frames` and `video_seconds` (decoded),
    `audio_seconds` (decoded samples / rate).
    """
    import subprocess

    import imageio_ffmpeg

    def info(path: Path) -> dict:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
        header = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
        frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
        pcm = subprocess.run(
            [exe, "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-ac", "1", "-ar", "16000", "pipe:"],
            capture_output=True,
        ).stdout
        return {"header": header, "frames": frames, "video_seconds": seconds, "audio_seconds": len(pcm) / 4 / 16000}

    return info
