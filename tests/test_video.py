import errno
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile
import trimesh

from talking_faces import video
from talking_faces.errors import TalkingFacesError
from talking_faces.animation import Animation
from talking_faces.render import FaceRenderer
from talking_faces.video import check_output_writable, render_mp4

SIZE, FPS = 96, 25.0


def pulsing_sphere(audio: Path, fps: float = FPS) -> Animation:
    """A sphere that breathes for as long as `audio` lasts: `(T, V, 3)` with T = round(duration * fps)."""
    duration = soundfile.info(str(audio)).duration
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    frames = round(duration * fps)
    scale = 1 + 0.2 * np.sin(np.arange(frames) / 3)[:, None, None]
    vertices = (np.asarray(mesh.vertices)[None] * scale).astype(np.float32)
    return Animation(vertices, np.asarray(mesh.faces), fps, audio, duration)


@pytest.fixture
def out_dir(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_mp4_is_h264_with_aac_and_lasts_as_long_as_the_audio(speech_wav, out_dir, mp4_info):
    animation = pulsing_sphere(speech_wav)
    calls = []
    render_mp4(animation, out_dir / "face.mp4", size=SIZE, on_frame=lambda: calls.append(1))
    assert [p.name for p in out_dir.iterdir()] == ["face.mp4"]  # no temporary file left
    info = mp4_info(out_dir / "face.mp4")
    assert "Video: h264" in info["header"] and "yuv420p" in info["header"] and f"{SIZE}x{SIZE}" in info["header"]
    assert "25 fps" in info["header"] and "Audio: aac" in info["header"]
    frames = animation.vertices.shape[0]
    assert len(calls) == info["frames"] == frames == 38  # 1.5 s at 25 fps
    assert abs(info["video_seconds"] - animation.duration) <= 1 / FPS
    assert abs(info["audio_seconds"] - animation.duration) <= 1 / FPS
    reader = imageio_ffmpeg.read_frames(str(out_dir / "face.mp4"))
    next(reader)  # metadata
    decoded = np.frombuffer(next(reader), np.uint8).reshape(SIZE, SIZE, 3)
    reader.close()
    with FaceRenderer(animation.vertices[0], animation.faces, size=SIZE) as renderer:
        rendered = renderer.render(animation.vertices[0])
    assert np.abs(decoded.astype(int) - rendered).mean() < 3  # only H.264/yuv420p loss


def test_stereo_flac_at_44k_is_muxed(tmp_path, out_dir, mp4_info):
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(44_100) / 44_100)
    soundfile.write(str(tmp_path / "s.flac"), np.stack([tone, tone], axis=1), 44_100)
    render_mp4(pulsing_sphere(tmp_path / "s.flac"), out_dir / "face.mp4", size=SIZE)
    assert mp4_info(out_dir / "face.mp4")["audio_seconds"] == pytest.approx(1.0, abs=1 / FPS)


def test_audio_ffmpeg_cannot_read_goes_through_a_wav_copy(speech_wav, out_dir, mp4_info, monkeypatch):
    monkeypatch.setattr(video, "_ffmpeg_decodes", lambda path: False)
    render_mp4(pulsing_sphere(speech_wav), out_dir / "face.mp4", size=SIZE)
    info = mp4_info(out_dir / "face.mp4")
    assert "Audio: aac" in info["header"] and info["audio_seconds"] == pytest.approx(1.5, abs=1 / FPS)


def test_interrupt_leaves_no_file(speech_wav, out_dir):
    calls = []

    def interrupt_at_fifth_frame():
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_mp4(pulsing_sphere(speech_wav), out_dir / "face.mp4", size=SIZE, on_frame=interrupt_at_fifth_frame)
    assert len(calls) == 5 and list(out_dir.iterdir()) == []


def test_missing_ffmpeg_is_a_clear_error(speech_wav, out_dir, monkeypatch):
    monkeypatch.setattr(video, "ffmpeg_executable", lambda: str(out_dir / "no-such-ffmpeg"))
    with pytest.raises(TalkingFacesError, match="Cannot run ffmpeg.*pip install imageio-ffmpeg"):
        render_mp4(pulsing_sphere(speech_wav), out_dir / "face.mp4", size=SIZE)
    assert list(out_dir.iterdir()) == []


def test_ffmpeg_failing_midway_reports_its_last_line(speech_wav, tmp_path, out_dir, monkeypatch):
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'No space left on device' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(video, "ffmpeg_executable", lambda: str(fake))
    with pytest.raises(TalkingFacesError, match="could not write the video: No space left on device"):
        render_mp4(pulsing_sphere(speech_wav), out_dir / "face.mp4", size=SIZE)
    assert list(out_dir.iterdir()) == []


def test_odd_size_is_refused(speech_wav, out_dir):
    with pytest.raises(TalkingFacesError, match="size 95 is odd.*even size such as 96"):
        render_mp4(pulsing_sphere(speech_wav), out_dir / "face.mp4", size=SIZE - 1)


def test_output_checks(tmp_path, monkeypatch):
    check_output_writable(tmp_path / "ok.mp4")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone
    with pytest.raises(TalkingFacesError, match="does not exist"):
        check_output_writable(tmp_path / "missing" / "x.mp4")
    with pytest.raises(TalkingFacesError, match="is a folder"):
        check_output_writable(tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)  # root ignores chmod, so simulate
    with pytest.raises(TalkingFacesError, match="Cannot write to .*Permission denied; choose a writable"):
        check_output_writable(tmp_path / "x.mp4")


def test_rgbx_images_encode_like_rgb(speech_wav, tmp_path):
    """The renderer's RGBX layout (fourth byte unused) gives the video its RGB images give."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 64, dtype=np.float32)
    rgb = [np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], np.float32(40 * k)), axis=-1).astype(np.uint8) for k in range(6)]
    rgbx = [np.concatenate([image, rng.integers(0, 256, image.shape[:2] + (1,), dtype=np.uint8)], axis=-1) for image in rgb]
    decoded = []
    for name, images in (("rgb", rgb), ("rgbx", rgbx)):
        video.write_video(images, tmp_path / f"{name}.mp4", 25.0, 64, speech_wav)
        reader = imageio_ffmpeg.read_frames(str(tmp_path / f"{name}.mp4"))
        meta = next(reader)
        decoded.append(np.stack([np.frombuffer(f, np.uint8).reshape(meta["size"][1], meta["size"][0], 3) for f in reader]))
    assert decoded[0].shape == (6, 64, 64, 3)
    assert np.abs(decoded[0].astype(int) - decoded[1]).max() <= 2  # same picture, up to YUV rounding paths
    assert np.abs(decoded[0].astype(int) - np.stack(rgb)).mean() < 3
    with pytest.raises(ValueError, match="RGBX"):
        video.write_video([rgb[0][..., :2]], tmp_path / "bad.mp4", 25.0, 64, speech_wav)
