"""Work in a separate process: results, errors and warnings come back; the worker never outlives its parent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from conftest import write_speech_like

from talking_faces.errors import TalkingFacesError
from talking_faces.pipeline import stream_animation
from talking_faces.worker import UnsendableJob, WorkerProcess


def _warn_and_return(value):
    warnings.warn("a note from the worker", UserWarning)
    return value, os.getpid()


def _fail(message):
    raise TalkingFacesError(message)


@pytest.fixture(autouse=True)
def workers_import_this_module(monkeypatch):
    """The worker unpickles this module's functions by name: let it import them."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))


def test_results_warnings_and_errors_come_back_in_order():
    array = np.arange(12.0).reshape(3, 4)
    with WorkerProcess(preload=("numpy",)) as worker:
        worker.run(_fail, "a warm-up's error is dropped")
        with pytest.warns(UserWarning, match="a note from the worker"):
            value, pid = worker.call(_warn_and_return, array)
        np.testing.assert_array_equal(value, array)
        assert pid != os.getpid()
        with pytest.raises(TalkingFacesError, match="the one-line reason"):
            worker.call(_fail, "the one-line reason")
        with pytest.warns(UserWarning):
            assert worker.call(_warn_and_return, 7)[0] == 7  # still serving after an error
        with pytest.raises(UnsendableJob):
            worker.call(_warn_and_return, lambda: None)


def test_a_worker_that_dies_is_a_clear_error():
    with WorkerProcess(name="test") as worker, pytest.raises(TalkingFacesError, match=r"test process ended .*exit status 3"):
        worker.call(os._exit, 3)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_the_worker_dies_with_its_parent():
    parent = subprocess.run(
        [sys.executable, "-c", "import os, time\nfrom talking_faces.worker import UnsendableJob, WorkerProcess\n"
         "worker = WorkerProcess()\nworker.run(time.sleep, 60)\nprint(worker._process.pid, flush=True)\n"
         "time.sleep(0.5)\nos._exit(0)\n"],
        capture_output=True, text=True, timeout=60,
    )
    pid = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_speech_apart_equals_speech_here(tmp_path):
    """The render command's speech process gives the animation the in-process speech path gives."""
    audio = write_speech_like(tmp_path / "speech.wav", seconds=2.0)
    here = stream_animation(audio, emotion="happy:0.4", device="cpu").collect().vertices
    with WorkerProcess(preload=("talking_faces.speech",)) as worker:
        apart = stream_animation(audio, emotion="happy:0.4", device="cpu", worker=worker).collect().vertices
        with pytest.raises(TalkingFacesError, match="--style"):
            stream_animation(audio, device="cpu", style="5", worker=worker)
    assert np.abs(here - here[0]).max() > 1e-4  # the lips move
    np.testing.assert_array_equal(apart, here)
