import json

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from talking_faces.audio import SAMPLE_RATE
from talking_faces.character import load_default_character
from talking_faces.cli import app
from talking_faces.errors import TalkingFacesError
from talking_faces.eval.lipsync import (
    av_offset,
    closures,
    evaluate_render,
    jitter,
    lip_geometry,
    load_vertex_sequence,
    pause_cores,
    pause_motion,
    speech_envelope,
)
from talking_faces.identity import load_identity

FPS = 30.0
REPORT_KEYS = {"offset_ms", "closure_rate", "closure_error_ms", "pause_motion_mm", "jitter_mm"}


def _syllables(seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise bursts of random length and spacing `(N,)` and their on/off mask at 100 Hz `(J,)`."""
    rng = np.random.default_rng(seed)
    on = np.zeros(int(seconds * 100), bool)
    k = 20
    while k < on.shape[0] - 20:
        length = int(rng.integers(8, 25))
        on[k : k + length] = True
        k += length + int(rng.integers(5, 30))
    audio = rng.standard_normal(int(seconds * SAMPLE_RATE)) * np.repeat(on, SAMPLE_RATE // 100)
    return (0.2 * audio).astype(np.float32), on


@pytest.mark.parametrize("lead_s", [0.0, 0.2, -0.1])
def test_offset_is_the_lead_of_the_lips(lead_s):
    audio, on = _syllables(6.0)
    # lips open with the sound, shifted earlier by lead_s: gap(t) follows the sound at t + lead_s
    times = np.arange(int(6.0 * FPS)) / FPS
    gap = 0.008 * np.interp(times + lead_s, np.arange(on.shape[0]) / 100, on.astype(float))
    assert av_offset(gap, FPS, speech_envelope(audio)) == pytest.approx(lead_s, abs=0.5 / FPS)


def test_closures_and_their_timing():
    gap = np.full(30, 0.004)
    gap[10:13] = 0.0  # closed over frames 10..12: 0.333 .. 0.4 s
    closed, error = closures(gap, FPS, [(0.33, 0.40), (0.60, 0.70), (0.40, 0.42)])
    assert closed.tolist() == [True, False, True]  # the last one touches a closed frame within half a frame
    assert error[0] == pytest.approx(abs((10 + 12) / 2 / FPS - 0.365), abs=1e-9)


def test_pause_cores_trim_speech_edges_only():
    cores = pause_cores([(0.0, 1.0), (2.0, 2.2), (3.0, 3.5), (4.0, 5.0)], 5.0)
    assert cores == [(0.0, pytest.approx(0.9)), (pytest.approx(3.1), pytest.approx(3.4)), (pytest.approx(4.1), 5.0)]


def test_pause_motion_and_jitter_closed_forms():
    rest = np.zeros((4, 3))
    lips = np.zeros((30, 4, 3))
    lips[:, 0, 1] = np.arange(30) * 0.001  # a steady drift: no jitter, 1 mm a frame
    assert jitter(lips) == pytest.approx(0.0, abs=1e-12)
    assert pause_motion(lips, rest, FPS, [(0.0, 0.1)]) == pytest.approx(0.003)  # frames 0..3
    assert pause_motion(lips, rest, FPS, []) == 0.0
    # Without a rest pose, the lips' median over the pause frames: a held expression is not motion.
    held = np.zeros((30, 4, 3))
    held[:, :, 0] = 0.004  # a smile held through the clip, 4 mm from the neutral
    assert pause_motion(held, rest, FPS, [(0.0, 0.1)]) == pytest.approx(0.004)
    assert pause_motion(held, None, FPS, [(0.0, 0.1)]) == pytest.approx(0.0)
    assert pause_motion(lips, None, FPS, [(0.0, 0.1)]) == pytest.approx(0.0015)  # frames 0..3 around their median
    shake = np.zeros((30, 4, 3))
    shake[::2, :, 2] = 0.001  # every vertex flips 1 mm a frame: second difference 2 mm
    assert jitter(shake) == pytest.approx(0.002)


def test_lip_geometry_of_the_default_character():
    identity = load_default_character()
    geometry = lip_geometry(identity)
    gap = identity.vertices[geometry.upper_centre, 1] - identity.vertices[geometry.lower_centre, 1]
    assert 0.0 < gap < 0.005  # lips apart at rest, by millimetres
    assert geometry.rest.shape == (geometry.lips.shape[0], 3) and geometry.lips.shape[0] >= 8


def test_lip_geometry_of_a_flame_mesh(shared_fixture):
    identity = load_identity(shared_fixture("flame_sample.ply"))
    geometry = lip_geometry(identity)
    assert geometry.lips.shape == (32,)  # FLAME's inner-lip loop
    assert identity.vertices[geometry.upper_centre, 1] >= identity.vertices[geometry.lower_centre, 1]


@pytest.fixture(scope="module")
def render(speech, transcript, tmp_path_factory):
    """The sample speech animated on the default character with its transcript: `(T, V, 3)` vertices."""
    from talking_faces.pipeline import animate

    wav = tmp_path_factory.mktemp("render") / "speech.wav"
    soundfile.write(str(wav), speech, SAMPLE_RATE)
    return animate(wav, text=transcript, fps=FPS, device="cpu").vertices


@pytest.fixture(scope="module")
def aligned(speech, transcript):
    from talking_faces.adapters.phonemes import PhonemeRecognizer

    return PhonemeRecognizer().align(speech, transcript)


def test_render_is_in_sync_and_closes_every_bilabial(render, speech, aligned):
    scores = evaluate_render(speech, render, load_default_character(), FPS, aligned)
    assert REPORT_KEYS <= set(scores)
    assert abs(scores["offset_ms"]) <= 40.0
    assert scores["bilabials"] == 10 and scores["closure_rate"] == 1.0
    assert scores["closure_error_ms"] < 1000 / FPS
    assert scores["pause_motion_mm"] <= 0.3


def test_delayed_audio_reports_the_delay_within_a_frame(render, speech, aligned):
    delay = int(0.2 * SAMPLE_RATE)
    late = np.concatenate([np.zeros(delay, np.float32), speech])  # the sound comes 200 ms after the lips
    late_phones = [(name, start + 0.2 if start > 0 else 0.0, end + 0.2) for name, start, end in aligned]
    synced = evaluate_render(speech, render, load_default_character(), FPS, aligned)["offset_ms"]
    delayed = evaluate_render(late, render, load_default_character(), FPS, late_phones)["offset_ms"]
    assert delayed == pytest.approx(200.0, abs=1000 / FPS)
    assert delayed - synced == pytest.approx(200.0, abs=1000 / FPS)


def test_cli_writes_the_json_report(tmp_path, render, speech, transcript):
    wav, npy, out = tmp_path / "speech.wav", tmp_path / "render.npy", tmp_path / "report.json"
    soundfile.write(str(wav), speech, SAMPLE_RATE)
    np.save(npy, render)
    result = CliRunner().invoke(app, ["eval", "lipsync", str(wav), str(npy), "--text", transcript, "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert REPORT_KEYS <= set(report)
    assert report["closure_rate"] == 1.0 and abs(report["offset_ms"]) <= 40.0


def test_cli_rejects_a_sequence_of_another_mesh(tmp_path, speech):
    wav, npy = tmp_path / "speech.wav", tmp_path / "render.npy"
    soundfile.write(str(wav), speech[:SAMPLE_RATE], SAMPLE_RATE)
    np.save(npy, np.zeros((30, 100, 3), np.float32))
    result = CliRunner().invoke(app, ["eval", "lipsync", str(wav), str(npy), "--json", str(tmp_path / "r.json")])
    assert isinstance(result.exception, TalkingFacesError) and "100" in str(result.exception)
    assert not (tmp_path / "r.json").exists()


def test_vertex_sequence_reader_accepts_flat_rows_and_rejects_bad_files(tmp_path):
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((5, 12), np.float32))
    assert load_vertex_sequence(flat, 4).shape == (5, 4, 3)
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not a numpy file")
    with pytest.raises(TalkingFacesError, match="Cannot read"):
        load_vertex_sequence(broken, 4)
