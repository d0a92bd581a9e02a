"""`talkface render` end to end through the CLI's error boundary, `talking_faces.cli.run`.

Bad inputs run `run()` in this process (the console script's `main()` is `run()` plus signal
handlers); what needs a process of its own (a missing library, a real render) runs the installed
console script in subprocesses, all started at once because each spends seconds importing torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile
import trimesh

from conftest import write_speech_like

TALKFACE = Path(sys.executable).parent / "talkface"
if not TALKFACE.exists():
    TALKFACE = Path(shutil.which("talkface") or "talkface")
# Runs the real CLI entry point after a patch: the way to take a library away from one process.
PATCHED_MAIN = "import sys\n{patch}\nfrom talking_faces.cli import main\nsys.argv[0] = 'talkface'\nmain()\n"
NO_GL_LIBRARIES = "import talking_faces.gl as gl\ngl._library_available = lambda name: False"
FPS, SIZE = 25, 128


@dataclass
class Case:
    args: list[str]
    patch: str | None = None


def make_inputs(folder: Path) -> dict[str, Path]:
    """Audio and mesh files, good and bad, in `folder`."""
    files = {"speech": write_speech_like(folder / "speech.wav"), "corrupt": folder / "corrupt.wav"}
    files["corrupt"].write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 20)
    files["empty"] = folder / "empty.wav"
    soundfile.write(str(files["empty"]), np.zeros(0, np.float32), 16_000)
    files["silent"] = folder / "silent.wav"
    soundfile.write(str(files["silent"]), np.zeros(16_000, np.float32), 16_000)
    files["bad_mesh"] = folder / "bad.ply"
    files["bad_mesh"].write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\ngarbage\n")
    files["nan_mesh"] = folder / "nan.obj"
    files["nan_mesh"].write_text("v 0 0 0\nv nan 1 0\nv 1 0 0\nf 1 2 3\n")
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    files["sphere"] = folder / "sphere.obj"
    sphere.export(files["sphere"])
    files["small_basis"] = folder / "basis.npy"
    np.save(files["small_basis"], np.zeros((33, 100 * 3), np.float32))
    return files


def render_args(*args: str) -> list[str]:
    return ["render", "--size", str(SIZE), "--fps", str(FPS), *args]


def in_process_cases(files: dict[str, Path]) -> dict[str, list[str]]:
    speech = str(files["speech"])
    return {
        "missing_audio": render_args(str(files["speech"].with_name("missing.wav"))),
        "corrupt_audio": render_args(str(files["corrupt"])),
        "empty_audio": render_args(str(files["empty"])),
        "malformed_emotion": render_args(speech, "--emotion", "happy:lots"),
        "unknown_emotion": render_args(speech, "--emotion", "joyful:0.5"),
        "unreadable_mesh": render_args(speech, "--identity", str(files["bad_mesh"])),
        "nan_mesh": render_args(speech, "--identity", str(files["nan_mesh"])),
        "basis_mismatch": render_args(speech, "--identity", str(files["sphere"]), "--au-basis", str(files["small_basis"])),
        "missing_out_dir": render_args(speech, "--out", "no/such/folder/face.mp4"),
        "unknown_gl": render_args(speech, "--gl", "vulkan"),
        "odd_size": [*render_args(speech), "--size", "65"],
        "no_ffmpeg": render_args(speech),  # run with IMAGEIO_FFMPEG_EXE pointing nowhere
    }


def subprocess_cases(files: dict[str, Path]) -> dict[str, Case]:
    speech = str(files["speech"])
    return {
        "no_gl": Case(render_args(speech), patch=NO_GL_LIBRARIES),
        "speech": Case(render_args(speech, "--emotion", "happy:0.7", "--out", "face.mp4", "--save-vertices", "v.npy")),
        # --seed: the viseme model ignores it, which must be said in one warning line
        "silent": Case(render_args(str(files["silent"]), "--out", "still.mp4", "--save-vertices", "v.npy", "--seed", "3")),
    }


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    folder: Path  # the working folder, where outputs land


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return make_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def runs(inputs, tmp_path_factory) -> dict[str, Run]:
    started = {}
    for name, case in subprocess_cases(inputs).items():
        folder = tmp_path_factory.mktemp(name)
        command = [str(TALKFACE), *case.args]
        if case.patch is not None:
            command = [sys.executable, "-c", PATCHED_MAIN.format(patch=case.patch), *case.args]
        env = {**os.environ, "TALKFACE_DEBUG": ""}
        started[name] = (folder, subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    finished = {}
    for name, (folder, process) in started.items():
        stdout, stderr = process.communicate(timeout=600)
        finished[name] = Run(process.returncode, stdout, stderr, folder)
    return finished


def run_main(args: list[str], folder: Path, monkeypatch, capsys) -> Run:
    from talking_faces.cli import run

    monkeypatch.chdir(folder)
    monkeypatch.delenv("TALKFACE_DEBUG", raising=False)
    returncode = run(args)
    captured = capsys.readouterr()
    return Run(returncode, captured.out, captured.err, folder)


def assert_one_line_error(run: Run, phrase: str) -> None:
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2
    assert len(lines) == 1 and phrase in lines[0] and lines[0].startswith("error:"), run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert list(run.folder.iterdir()) == []  # no video, no temporary file


@pytest.mark.parametrize(
    "name, phrase",
    [
        ("missing_audio", "Audio file not found"),
        ("corrupt_audio", "Cannot decode audio"),
        ("empty_audio", "holds no samples"),
        ("malformed_emotion", "in emotion spec 'happy:lots'"),
        ("unknown_emotion", "Unknown emotion or AU 'joyful'"),
        ("unreadable_mesh", "Cannot read mesh"),
        ("nan_mesh", "NaN or infinite"),
        ("basis_mismatch", "has 100 vertices but the identity has 162"),
        ("missing_out_dir", "does not exist"),
        ("unknown_gl", "use auto, osmesa or egl"),
        ("odd_size", "size 65 is odd"),
        ("no_ffmpeg", "Cannot run ffmpeg"),
    ],
)
def test_bad_input_is_one_line_without_output(inputs, name, phrase, tmp_path, monkeypatch, capsys):
    if name == "no_ffmpeg":
        monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "/nonexistent/ffmpeg")
    assert_one_line_error(run_main(in_process_cases(inputs)[name], tmp_path, monkeypatch, capsys), phrase)


def test_missing_opengl_is_a_one_line_error(runs):
    assert_one_line_error(runs["no_gl"], "apt-get install libosmesa6")


def test_speech_renders_an_mp4_matching_the_audio(runs, mp4_info):
    from talking_faces.character import load_default_character

    run = runs["speech"]
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in run.folder.iterdir()) == ["face.mp4", "v.npy"]
    info = mp4_info(run.folder / "face.mp4")
    assert "Video: h264" in info["header"] and "yuv420p" in info["header"] and f"{SIZE}x{SIZE}" in info["header"]
    assert f"{FPS} fps" in info["header"] and "Audio: aac" in info["header"]
    frames = round(1.5 * FPS)
    assert info["frames"] == frames
    assert abs(info["video_seconds"] - 1.5) <= 1 / FPS and abs(info["audio_seconds"] - 1.5) <= 1 / FPS
    vertices = np.load(run.folder / "v.npy")
    assert vertices.dtype == np.float32 and vertices.shape == (frames, load_default_character().num_vertices, 3)
    assert np.ptp(vertices, axis=0).max() > 1e-3  # the face moves


def test_silence_renders_a_still_face(runs, mp4_info):
    run = runs["silent"]
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: The viseme model does not use --seed; it is ignored."], run.stderr
    assert mp4_info(run.folder / "still.mp4")["frames"] == FPS  # 1 s
    vertices = np.load(run.folder / "v.npy")
    assert np.abs(vertices - vertices[0]).max() < 1e-4  # metres: nothing moves without speech
