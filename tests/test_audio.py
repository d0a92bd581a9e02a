import numpy as np
import pytest
import soundfile

from talking_faces.audio import SAMPLE_RATE, load_audio
from talking_faces.errors import TalkingFacesError


def test_stereo_44k_becomes_16k_mono(tmp_path):
    rate = 44_100
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    soundfile.write(tmp_path / "s.wav", np.stack([tone, tone], axis=1), rate)
    audio = load_audio(tmp_path / "s.wav")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.shape[0] - SAMPLE_RATE) <= 1
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * SAMPLE_RATE / audio.shape[0] == pytest.approx(440, abs=2)


def test_ffmpeg_fallback_decodes_mp3(tmp_path):
    import ffmpeg

    from talking_faces.ffmpeg_tool import ffmpeg_executable

    soundfile.write(tmp_path / "s.wav", 0.3 * np.sin(np.linspace(0, 2000, 8000)), 8000)
    (
        ffmpeg.input(str(tmp_path / "s.wav"))
        .output(str(tmp_path / "s.mp3"))
        .run(cmd=ffmpeg_executable(), quiet=True)
    )
    audio = load_audio(tmp_path / "s.mp3")
    assert audio.shape[0] == pytest.approx(SAMPLE_RATE, rel=0.1)  # mp3 pads a few ms
    assert np.abs(audio).max() == pytest.approx(0.3, abs=0.05)


def test_silence_is_valid(tmp_path):
    soundfile.write(tmp_path / "quiet.wav", np.zeros(1600, np.float32), SAMPLE_RATE)
    audio = load_audio(tmp_path / "quiet.wav")
    assert audio.shape == (1600,) and not audio.any()


def test_bad_audio(tmp_path):
    with pytest.raises(TalkingFacesError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(TalkingFacesError, match="Cannot decode audio"):
        load_audio(tmp_path / "corrupt.wav")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(TalkingFacesError, match="no samples"):
        load_audio(tmp_path / "empty.wav")
