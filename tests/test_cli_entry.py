"""The installed `talkface` entry point as a user meets it: usage errors, help, version, Ctrl-C,
SIGTERM, overwriting the input, a full disk. Each case checks the exit code, stderr and that no
file (hidden ones included) is left behind.

Processes are started together where they can be, because each render spends seconds importing torch.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import write_speech_like

TALKFACE = Path(sys.executable).parent / "talkface"
if not TALKFACE.exists():
    TALKFACE = Path(shutil.which("talkface") or "talkface")


def environment() -> dict[str, str]:
    return {**os.environ, "TALKFACE_DEBUG": "", "COLUMNS": "80"}  # read at call time: conftest sets TMPDIR

SMALL = ["--size", "64", "--fps", "25"]


def talkface(*args: str, cwd: Path, **options) -> subprocess.CompletedProcess:
    return subprocess.run([str(TALKFACE), *args], cwd=cwd, env=environment(), capture_output=True, text=True, timeout=600, **options)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())  # hidden files included


def assert_usage_error(result: subprocess.CompletedProcess, *phrases: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory) -> Path:
    return write_speech_like(tmp_path_factory.mktemp("audio") / "speech.wav", seconds=1.0)


def test_bare_talkface_shows_the_help(tmp_path):
    result = talkface(cwd=tmp_path)
    assert result.returncode == 0 and "Usage: talkface" in result.stdout and "render" in result.stdout
    assert result.stderr == ""


def test_version(tmp_path):
    from talking_faces import __version__

    result = talkface("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"talkface {__version__}"


@pytest.mark.parametrize(
    "command, flags",
    [
        (["render"], ["--save-vertices", "--au-basis", "--num-samples", "--emotion"]),
        (["train", "faceformer"], ["--allow-random-audio-encoder", "--audio-encoder", "--save-every"]),
        (["eval"], ["--save-predictions", "--skip-missing", "--flame-model"]),
    ],
)
def test_help_fits_80_columns_with_whole_flag_names(tmp_path, command, flags):
    result = talkface(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    for flag in flags:
        assert f"{flag} " in result.stdout or f"{flag}\n" in result.stdout, flag


@pytest.mark.parametrize(
    "args, phrases",
    [
        (["render", "speech.wav", "--fps", "0"], ["'--fps'", "greater than or equal to 1", "talkface render --help"]),
        (["render", "speech.wav", "--size", "big"], ["'--size'", "talkface render --help"]),
        (["render", "speech.wav", "--bogus"], ["No such option: --bogus"]),
        (["render", "speech.wav", "--fsp", "25"], ["--fsp", "--fps"]),
        (["render"], ["Missing argument", "audio"]),
        (["render", "speech.wav", "--out"], ["--out", "requires an argument"]),
        (["--fps", "25"], ["No such option: --fps", "talkface --help"]),
        (["randr", "speech.wav"], ["randr"]),
        (["render", "speech.wav", "--emotion", "hapy"], ["'hapy'", "did you mean 'happy'"]),
        (["render", "speech.wav", "--model", "facefromer"], ["'facefromer'", "did you mean 'faceformer'"]),
        (["render", "speech.wav", "--device", "gpu"], ["'gpu'", "use auto, cpu"]),
        (["render", "speech.wav", "--size", "65"], ["size 65 is odd"]),
        (["render", "."], ["is a folder", "pass one audio file"]),
        (["render", "speech.wav", "--out", "speech.wav"], ["--out", "would be overwritten"]),
        (["render", "speech.wav", "--out", "./sub/../speech.wav"], ["--out", "would be overwritten"]),
        (["render", "speech.wav", "--save-vertices", "speech.wav"], ["--save-vertices", "would be overwritten"]),
        (["eval", "--dataset", "vocaset"], ["Missing --data-root"]),
        (["render", "speech.wav", "--identity", "sub/points.npy"], ["point cloud", "with its triangles"]),
        (["render", "sub/silent.mp4"], ["has no audio stream"]),
        (["render", "speech.wav", "--checkpoint", "sub/vocaset.pth"], ["--checkpoint", "does not exist"]),
        (["render", "speech.wav", "--out", "sub/points.npy", "--identity", "sub/points.npy"], ["--out", "--identity"]),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path, speech_file, args, phrases):
    shutil.copy(speech_file, tmp_path / "speech.wav")
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "points.npy", np.random.default_rng(0).normal(scale=0.1, size=(50, 3)).astype(np.float32))
    _silent_video(tmp_path / "sub" / "silent.mp4")
    inputs = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert_usage_error(talkface(*args, cwd=tmp_path), *phrases)
    assert files_in(tmp_path) == ["speech.wav", "sub"] and files_in(tmp_path / "sub") == ["points.npy", "silent.mp4"]
    assert all(p.read_bytes() == data for p, data in inputs.items())  # no input touched


def _silent_video(path: Path) -> None:
    """A 0.5 s H.264 video without an audio stream."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=64x64:d=0.5",
                    "-pix_fmt", "yuv420p", str(path)], check=True, capture_output=True)


def test_option_mistakes_are_reported_before_torch_is_imported(tmp_path):
    """A typo must not wait for torch and the models (seconds on a laptop)."""
    probe = (
        "import sys\nfrom talking_faces.cli import run\n"
        "codes = [run(['render', 'x.wav', '--emotion', 'hapy']), run(['render', 'x.wav', '--model', 'visme']),"
        " run(['render', 'x.wav', '--device', 'gpu']), run(['render', 'x.wav'])]\n"
        "print(codes, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[2, 2, 2, 2] False", result.stdout + result.stderr


def test_default_output_never_names_the_input():
    from talking_faces.cli.render_cmd import default_output

    for name in ("talk.mp4", "talk.wav", "talk", ".mp4", "talk_talkface.mp4", "a.b.m4a"):
        assert default_output(Path(name)) != Path(name)
    assert default_output(Path("clips/talk.mp4")) == Path("talk_talkface.mp4")


def test_rendering_a_video_in_its_own_folder_keeps_it(tmp_path, speech_file):
    """`talkface render talk.mp4` used to replace talk.mp4 with the render."""
    import imageio_ffmpeg

    talk = tmp_path / "talk.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(speech_file), "-c:a", "aac", str(talk)],
                   check=True, capture_output=True)
    before = talk.read_bytes()
    result = talkface("render", "talk.mp4", *SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert talk.read_bytes() == before
    assert files_in(tmp_path) == ["talk.mp4", "talk_talkface.mp4"]


def _wait_for_temporary(folder: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    """Until the render has opened a hidden temporary MP4 in `folder` (its frames are being written)."""
    deadline = time.monotonic() + timeout
    while not any(name.startswith(".") and name.endswith(".mp4") for name in files_in(folder)):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the render never started writing"
        time.sleep(0.05)


def _ffmpeg_writing_into(folder: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(folder).encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to look for a leftover ffmpeg")
def test_ctrl_c_and_sigterm_stop_the_render_and_leave_nothing(tmp_path):
    audio = write_speech_like(tmp_path / "long.wav", seconds=30.0)
    runs = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        out = tmp_path / signum.name
        out.mkdir()
        command = [str(TALKFACE), "render", str(audio), *SMALL, "--out", str(out / "face.mp4"), "--save-vertices", str(out / "v.npy")]
        runs[signum] = (out, subprocess.Popen(command, cwd=out, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for signum, (out, process) in runs.items():
        _wait_for_temporary(out, process)
        process.send_signal(signum)
    expected = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}
    for signum, (out, process) in runs.items():
        _, stderr = process.communicate(timeout=120)
        code, word = expected[signum]
        assert process.returncode == code, stderr
        assert stderr.strip().splitlines()[-1] == word and "Traceback" not in stderr
        assert files_in(out) == [], signum.name
        assert _ffmpeg_writing_into(out) == [], signum.name


def test_a_failed_second_output_leaves_no_first_output(tmp_path, monkeypatch):
    """numpy reports a short write without an errno; the message must still say why."""
    import talking_faces.atomic as atomic
    from talking_faces.atomic import staged_outputs
    from talking_faces.errors import TalkingFacesError

    def full_disk_save(path, array):
        Path(path).write_bytes(b"\x93NUMPY partial")
        raise OSError(f"{array.nbytes} requested and 4096 written")

    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda folder: shutil._ntuple_diskusage(1 << 20, 1 << 20, 0))
    with pytest.raises(TalkingFacesError, match=r"Cannot write .*v\.npy: No space left on device"):
        with staged_outputs() as stage:
            stage.path(tmp_path / "face.mp4").write_bytes(b"a whole video")
            full_disk_save(stage.path(tmp_path / "v.npy"), np.zeros(10_000, np.float32))
    assert files_in(tmp_path) == []


def _mount_tmpfs(folder: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True).returncode == 0


def test_full_disk_fails_with_the_reason_and_leaves_no_output(tmp_path, speech_file):
    """A 1 MB disk holds the MP4 of a 1 s clip but not its vertices (about 4 MB)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mount_tmpfs(disk, "1m"):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        result = talkface("render", str(speech_file), *SMALL, "--out", str(disk / "face.mp4"),
                          "--save-vertices", str(disk / "v.npy"), cwd=tmp_path)
        assert_usage_error(result, "v.npy", "No space left on device")
        assert files_in(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)
