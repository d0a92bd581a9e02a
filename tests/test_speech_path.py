"""The one speech path: render and eval give the same vertices; chunked speech and composition equal whole-clip ones."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_speech_like
from test_eval_synth import V, write_masks, write_mead_emote
from typer.testing import CliRunner

from talking_faces.adapters import SpeechAdapter, SpeechOutput, SpeechRequest
from talking_faces.adapters.viseme import VisemeAdapter
from talking_faces.animation import CHUNK_FRAMES
from talking_faces.aus import NUM_AUS
from talking_faces.basis import AUBasis
from talking_faces.cli import app
from talking_faces.emotion import parse_emotion
from talking_faces.errors import TalkingFacesError
from talking_faces.identity import Identity
from talking_faces.pipeline import compose_stream
from talking_faces.speech import speak

TALKFACE = Path(sys.executable).parent / "talkface"


class OffsetAdapter(SpeechAdapter):
    """Smooth `(S, T', V, 3)` offsets at 50 fps (retimed by the speech path), one sample per seed draw."""

    name = "offsets"
    accepts = frozenset({"generator", "num_samples"})
    fps = 50.0

    @classmethod
    def from_checkpoint(cls, path, device="cpu", **options):
        return cls(device)

    def speak(self, request):
        frames = int(round(request.audio.shape[0] / 16000 * self.fps))
        t = torch.arange(frames, dtype=torch.float32)[None, :, None, None]
        phase = torch.rand((request.num_samples, 1, request.identity.num_vertices, 3), generator=request.generator)
        return SpeechOutput(self.fps, offsets=1e-3 * torch.sin(0.2 * t + 6 * phase))


def _request(seconds: float = 7.0, **fields) -> SpeechRequest:
    rng = np.random.default_rng(0)
    identity = Identity(rng.normal(scale=0.1, size=(V, 3)).astype(np.float32), None, name="synthetic")
    audio = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    return SpeechRequest(audio=audio, identity=identity, **fields)


def _basis(seed: int = 1) -> AUBasis:
    return AUBasis(np.random.default_rng(seed).normal(scale=0.01, size=(NUM_AUS, V, 3)).astype(np.float32))


@pytest.mark.parametrize("fps", [25.0, 30.0, 50.0])
def test_speech_track_chunks_equal_the_whole_clip(fps):
    request = _request(fps=fps, generator=torch.Generator().manual_seed(3), num_samples=2)
    track = speak(OffsetAdapter(), request)
    assert track.num_frames == round(7.0 * fps) > 2 * CHUNK_FRAMES
    for sample in range(2):
        whole = track.offsets(0, track.num_frames, None, sample)
        pieces = torch.cat([track.offsets(s, s + 37, None, sample) for s in range(0, track.num_frames, 37)])
        assert pieces.shape == (track.num_frames, V, 3)
        torch.testing.assert_close(pieces, whole, rtol=0, atol=0)
        # independent linear interpolation of the 50 fps source at t = j / fps
        source = track.output.offsets[sample].numpy()
        position = np.minimum(np.arange(track.num_frames) * 50.0 / fps, source.shape[0] - 1)
        lo = np.floor(position).astype(int)
        hi = np.minimum(lo + 1, source.shape[0] - 1)
        expected = source[lo] + (position - lo)[:, None, None] * (source[hi] - source[lo])
        np.testing.assert_allclose(whole.numpy(), expected, atol=1e-9)


def test_composed_chunks_equal_the_equation_over_the_whole_clip():
    request = _request(fps=30.0, generator=torch.Generator().manual_seed(5), num_samples=2)
    track = speak(OffsetAdapter(), request)
    basis = _basis()
    emotion = parse_emotion("neutral@0,happy:0.8@2,sad:0.5@5")
    stream = compose_stream(track, request.identity, basis, emotion)
    weights = emotion.weights(track.num_frames, 30.0).astype(np.float64)
    for sample in range(2):
        vertices = stream.collect(sample).vertices
        assert vertices.shape == (track.num_frames, V, 3) and vertices.dtype == np.float32
        speech = track.offsets(0, track.num_frames, None, sample).double().numpy()
        expected = request.identity.vertices + speech + np.einsum("tk,kvc->tvc", weights, basis.offsets.astype(np.float64))
        np.testing.assert_allclose(vertices, expected, atol=2e-7)
    chunks = list(stream.chunks(1))
    assert [start for start, _ in chunks] == list(range(0, track.num_frames, CHUNK_FRAMES))
    assert max(chunk.shape[0] for _, chunk in chunks) == CHUNK_FRAMES
    assert not np.allclose(stream.collect(0).vertices, stream.collect(1).vertices)  # two different samples


@pytest.mark.parametrize("as_torch", [False, True], ids=["numpy", "torch"])
def test_viseme_weights_are_blended_per_chunk(as_torch):
    """The viseme adapter's numpy weights are composed with numpy; the same weights as a tensor, with torch: both
    equal the closed form in float64."""
    request = _request(seconds=3.0, basis=_basis(), fps=25.0)
    track = speak(VisemeAdapter(), request)
    assert track.is_weights and isinstance(track.output.weights, np.ndarray)
    if as_torch:
        track.output.weights = torch.from_numpy(track.output.weights)
    stream = compose_stream(track, request.identity, request.basis, parse_emotion("AU12:0.5"))
    weights = np.asarray(track.output.weights[0], np.float64) + parse_emotion("AU12:0.5").weights(track.num_frames, 25.0)
    expected = request.identity.vertices + np.einsum("tk,kvc->tvc", weights, request.basis.offsets.astype(np.float64))
    vertices = stream.collect().vertices
    assert vertices.dtype == np.float32
    np.testing.assert_allclose(vertices, expected, atol=2e-7)


def test_default_path_never_imports_torch(tmp_path):
    """The viseme model on the CPU (and `auto` on a machine without a GPU driver) composes without torch,
    and the renderer without pyrender's interactive viewer (pyglet): each would add about a second to a short render."""
    audio = write_speech_like(tmp_path / "speech.wav", seconds=1.0)
    code = (
        "import sys\n"
        "import talking_faces.devices as devices\n"
        "from pathlib import Path\n"
        f"devices.GPU_DRIVER_FILES = (Path({str(tmp_path / 'no-driver')!r}),)\n"
        "from talking_faces.pipeline import stream_animation\n"
        f"stream = stream_animation({str(audio)!r}, emotion='happy:0.6', device='auto')\n"
        "start, chunk = next(stream.chunks())\n"
        "assert chunk.shape[1:] == stream.neutral.shape and abs(chunk - stream.neutral).max() > 1e-4\n"
        "from talking_faces.render import FaceRenderer\n"
        "with FaceRenderer(stream.neutral, stream.faces, size=64) as renderer:\n"
        "    assert renderer.render(chunk[0]).std() > 10\n"
        "print('torch' in sys.modules, 'pyglet' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_no_basis_only_for_neutral_offsets():
    request = _request(seconds=1.0, fps=25.0)  # 50 -> 25 fps: every other source frame
    track = speak(OffsetAdapter(), request)
    stream = compose_stream(track, request.identity, None, parse_emotion("neutral"))
    np.testing.assert_array_equal(stream.collect().vertices, request.identity.vertices + track.output.offsets[0].numpy()[::2][: stream.num_frames])
    with pytest.raises(ValueError, match="needs the identity's AU basis"):
        compose_stream(track, request.identity, None, parse_emotion("happy"))


@pytest.mark.parametrize(
    "adapter, fields, message",
    [
        (VisemeAdapter, {}, "viseme model needs --au-basis"),
        (VisemeAdapter, {"style": "5"}, "no training styles; drop --style"),
        (VisemeAdapter, {"num_samples": 3}, "deterministic and draws one sample"),
        (OffsetAdapter, {"num_samples": 0}, "--num-samples must be at least 1"),
    ],
)
def test_requests_an_adapter_cannot_honour_are_errors(adapter, fields, message):
    basis = {} if adapter is OffsetAdapter or not fields else {"basis": _basis()}
    request = _request(seconds=0.5, **basis, **fields)
    with pytest.raises(TalkingFacesError, match=message):
        speak(adapter(), request)


@pytest.mark.parametrize(
    "adapter, fields, option",
    [
        (VisemeAdapter, {"generator": torch.Generator()}, "--seed"),
        (OffsetAdapter, {"text": "hello"}, "--text"),
    ],
)
def test_fields_an_adapter_ignores_are_warnings(adapter, fields, option):
    request = _request(seconds=0.5, basis=_basis(), **fields)
    with pytest.warns(UserWarning, match=f"does not use {option}; it is ignored"):
        speak(adapter(), request)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a field the adapter honours: no warning
        speak(adapter(), _request(seconds=0.5, basis=_basis()))


def test_render_and_eval_give_identical_vertices(tmp_path):
    """`talkface render --fps 25 --save-vertices` equals `talkface eval --save-predictions` on a 25 fps dataset."""
    root = tmp_path / "mead"
    write_mead_emote(root)
    name = "M003_028_6_2"  # in the pred-test split
    write_speech_like(root / "wav" / f"{name}.wav", seconds=2.0)
    template = pickle.loads((tmp_path / "templates_mead_vert.pkl").read_bytes())["M003"].numpy().astype(np.float32)
    faces = np.array([[i, i + 1, i + 2] for i in range(V - 2)])
    np.savez(tmp_path / "identity.npz", vertices=template, faces=faces)
    rows = np.random.default_rng(3).normal(scale=0.01, size=(NUM_AUS + 1, V * 3)).astype(np.float32)
    rows[0] = template.reshape(-1)
    np.save(tmp_path / "basis.npy", rows)
    render = subprocess.run(
        [str(TALKFACE), "render", str(root / "wav" / f"{name}.wav"), "--fps", "25", "--size", "64", "--model", "viseme",
         "--identity", str(tmp_path / "identity.npz"), "--au-basis", str(tmp_path / "basis.npy"),
         "--out", str(tmp_path / "face.mp4"), "--save-vertices", str(tmp_path / "render.npy")],
        capture_output=True, text=True, timeout=600,
    )
    assert render.returncode == 0, render.stderr
    result = CliRunner().invoke(app, [
        "eval", "--dataset", "mead", "--data-root", str(root), "--split", "pred-test", "--model", "viseme",
        "--au-basis", str(tmp_path / "basis.npy"), "--regions", str(write_masks(tmp_path / "masks.pkl")),
        "--out", str(tmp_path / "report"), "--device", "cpu", "--save-predictions", str(tmp_path / "predictions"),
    ])
    assert result.exit_code == 0, (result.output, result.exception)
    rendered = np.load(tmp_path / "render.npy")
    scored = np.load(tmp_path / "predictions" / "viseme" / f"{name}_condition_0.npy")
    assert rendered.shape == (50, V, 3) and np.ptp(rendered, axis=0).max() > 1e-4  # 2 s at 25 fps, and the lips move
    np.testing.assert_array_equal(scored, rendered)
