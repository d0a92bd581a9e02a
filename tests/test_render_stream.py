"""The streaming render: frames composed per chunk, drawn, encoded and saved in one pass; samples; no leftovers."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from conftest import write_speech_like

from talking_faces.atomic import staged_outputs
from talking_faces.emotion import parse_emotion
from talking_faces.errors import TalkingFacesError
from talking_faces.identity import Identity
from talking_faces.npy_stream import NpyWriter
from talking_faces.pipeline import compose_stream, render_sample, sample_path
from talking_faces.render import FaceRenderer
from talking_faces.speech import speak
from talking_faces.threads import Background, prefetch
from test_speech_path import OffsetAdapter

SIZE, FPS = 64, 25.0
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def sphere() -> Identity:
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    return Identity(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int64), name="sphere")


@pytest.fixture(scope="module")
def two_samples(sphere, tmp_path_factory):
    from talking_faces.adapters import SpeechRequest
    from talking_faces.audio import load_audio

    audio = write_speech_like(tmp_path_factory.mktemp("audio") / "speech.wav", seconds=3.0)
    request = SpeechRequest(load_audio(audio), sphere, fps=FPS, generator=torch.Generator().manual_seed(1), num_samples=2)
    return compose_stream(speak(OffsetAdapter(), request), sphere, None, parse_emotion("neutral"), audio_path=audio)


def test_npy_writer_streams_the_same_file_as_np_save(tmp_path):
    data = np.random.default_rng(0).normal(size=(150, 7, 3)).astype(np.float32)
    with NpyWriter(tmp_path / "a.npy", data.shape) as writer:
        for start in range(0, 150, 64):
            writer.write(start, data[start : start + 64])
    np.save(tmp_path / "b.npy", data)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    with pytest.raises(ValueError, match="do not continue"):
        with NpyWriter(tmp_path / "c.npy", data.shape) as writer:
            writer.write(64, data[64:128])  # rows must come in order
    writer = NpyWriter(tmp_path / "d.npy", data.shape)
    writer.write(0, data[:10])
    with pytest.raises(ValueError, match="got 10 of its 150 rows"):
        writer.close()


def test_a_full_disk_fails_before_rendering_and_names_the_target(tmp_path, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(TalkingFacesError, match=r"Cannot write .*v\.npy: No space left on device"):
        with staged_outputs() as stage:
            (stage.path(tmp_path / "face.mp4")).write_bytes(b"video")
            NpyWriter(stage.path(tmp_path / "v.npy"), (10, 3, 3))
    assert list(tmp_path.iterdir()) == []


def test_render_sample_writes_each_sample_in_one_pass(two_samples, sphere, tmp_path, mp4_info):
    frames = []
    with FaceRenderer(sphere.vertices, sphere.faces, size=SIZE) as renderer, staged_outputs() as stage:
        for k in range(2):
            render_sample(two_samples, stage.path(sample_path(tmp_path / "face.mp4", k)), renderer,
                          stage.path(sample_path(tmp_path / "v.npy", k)), sample=k, on_frame=lambda: frames.append(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.mp4", "face_sample1.mp4", "v.npy", "v_sample1.npy"]
    assert len(frames) == 2 * 75
    for k, name in enumerate(("v.npy", "v_sample1.npy")):
        np.testing.assert_array_equal(np.load(tmp_path / name), two_samples.collect(k).vertices)
    assert not np.array_equal(np.load(tmp_path / "v.npy"), np.load(tmp_path / "v_sample1.npy"))
    assert mp4_info(tmp_path / "face_sample1.mp4")["frames"] == 75


def test_an_interrupt_midway_leaves_no_output(two_samples, sphere, tmp_path):
    def interrupt_at(frame: int):
        count = []

        def on_frame():
            count.append(1)
            if len(count) == frame:
                raise KeyboardInterrupt

        return on_frame

    before = threading.active_count()
    with FaceRenderer(sphere.vertices, sphere.faces, size=SIZE) as renderer:
        with pytest.raises(KeyboardInterrupt), staged_outputs() as stage:
            render_sample(two_samples, stage.path(tmp_path / "face.mp4"), renderer, stage.path(tmp_path / "v.npy"),
                          on_frame=interrupt_at(10))
    assert list(tmp_path.iterdir()) == []
    assert threading.active_count() <= before  # shading and ffmpeg-writer threads stopped


def test_prefetch_keeps_order_runs_ahead_and_passes_errors():
    produced = []

    def items(n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                raise RuntimeError("broken item")
            produced.append(i)
            yield i

    assert list(prefetch(items(50), depth=3)) == list(range(50))
    produced.clear()
    consumer = prefetch(items(50), depth=3)
    assert next(consumer) == 0
    time.sleep(0.3)
    assert 2 <= len(produced) <= 5  # ran ahead, but only `depth` items
    consumer.close()
    with pytest.raises(RuntimeError, match="broken item"):
        list(prefetch(items(10, fail_at=4), depth=2))


def test_background_returns_the_value_or_raises_in_the_caller():
    assert Background(lambda: 41 + 1).result() == 42
    with pytest.raises(TalkingFacesError, match="speech failed"):
        Background(lambda: (_ for _ in ()).throw(TalkingFacesError("speech failed"))).result()


CLI_WITH_OFFSET_ADAPTER = (
    "import sys\nsys.path.insert(0, {tests!r})\nfrom talking_faces.adapters import ADAPTERS\n"
    "ADAPTERS['offsets'] = 'test_speech_path:OffsetAdapter'\nfrom talking_faces.cli import main\nsys.argv[0] = 'talkface'\nmain()\n"
)


def test_cli_renders_every_sample_from_one_speech(tmp_path):
    audio = write_speech_like(tmp_path / "speech.wav", seconds=1.0)
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    np.savez(tmp_path / "sphere.npz", vertices=np.asarray(mesh.vertices, np.float32), faces=np.asarray(mesh.faces))
    args = ["render", str(audio), "--identity", str(tmp_path / "sphere.npz"), "--model", "offsets", "--num-samples", "3",
            "--seed", "7", "--fps", "25", "--size", str(SIZE), "--out", "face.mp4", "--save-vertices", "v.npy"]
    run = subprocess.run([sys.executable, "-c", CLI_WITH_OFFSET_ADAPTER.format(tests=str(TESTS)), *args],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["face.mp4", "face_sample1.mp4", "face_sample2.mp4", "speech.wav", "sphere.npz",
                     "v.npy", "v_sample1.npy", "v_sample2.npy"]
    samples = [np.load(tmp_path / name) for name in ("v.npy", "v_sample1.npy", "v_sample2.npy")]
    assert all(s.shape == (25, 162, 3) for s in samples)
    assert not np.array_equal(samples[0], samples[1]) and not np.array_equal(samples[1], samples[2])


def test_ffmpeg_pipe_is_enlarged_to_hold_whole_frames():
    import fcntl

    from talking_faces.video import PIPE_MAX_SIZE, _enlarge_pipe

    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("pipe sizes are a Linux feature")
    read, write = os.pipe()
    with os.fdopen(read, "rb"), os.fdopen(write, "wb") as writer:
        default = fcntl.fcntl(writer.fileno(), fcntl.F_GETPIPE_SZ)
        frame = 512 * 512 * 3
        _enlarge_pipe(writer, frame)
        size = fcntl.fcntl(writer.fileno(), fcntl.F_GETPIPE_SZ)
        assert size >= min(2 * frame, int(PIPE_MAX_SIZE.read_text())) and size > default
