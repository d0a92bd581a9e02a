"""The one speech path: a `SpeechRequest` through an adapter to Offset_spe at the output frame rate.

`talkface render`, `pipeline.animate` and `talkface eval` all call `speak`; nothing else calls an
adapter. The adapter's output is held once, at its own rate; `SpeechTrack` retimes and blends only
the frames a caller asks for, so a long clip is never expanded to `(T, V, 3)` more than once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .arrays import like
from .audio import SAMPLE_RATE, num_output_frames
from .aus import NUM_AUS
from .basis import blend
from .errors import TalkingFacesError
from .retime import retime

if TYPE_CHECKING:
    import numpy as np
    import torch

    from talking_faces.adapters.base import SpeechAdapter, SpeechOutput, SpeechRequest

    from .worker import WorkerProcess


@dataclass
class SpeechTrack:
    """Offset_spe of S samples at the output rate `fps`, `num_frames` frames covering the audio.

    Attributes:
        output: the adapter's output at its own rate (`(S, T', V, 3)` offsets or `(S, T', 32)` weights).
        fps: the output frame rate.
        num_frames: T = round(duration * fps), at least 1.
        duration: the audio's length in seconds.
    """

    output: SpeechOutput
    fps: float
    num_frames: int
    duration: float

    @property
    def num_samples(self) -> int:
        return self.output.num_samples

    @property
    def is_weights(self) -> bool:
        """True when the speech is AU weights on the identity's basis (the viseme adapter)."""
        return self.output.weights is not None

    def frames(self, start: int, stop: int, sample: int = 0) -> np.ndarray | torch.Tensor:
        """Frames `start:stop` at the output rate: `(n, 32)` weights or `(n, V, 3)` offsets, as the adapter gave them."""
        stop = min(stop, self.num_frames)
        return retime(self.output.frames[sample], self.output.fps, self.fps, stop - start, start=start)

    def offsets(
        self, start: int, stop: int, basis_offsets: np.ndarray | torch.Tensor | None, sample: int = 0,
    ) -> np.ndarray | torch.Tensor:
        """`(n, V, 3)` Offset_spe of frames `start:stop`; AU weights are blended on `basis_offsets` `(32, V, 3)`
        (numpy or torch: the weights are converted to its kind, device and dtype)."""
        frames = self.frames(start, stop, sample)
        if not self.is_weights:
            return frames
        return blend(like(frames, basis_offsets), basis_offsets)


def speak(adapter: SpeechAdapter, request: SpeechRequest) -> SpeechTrack:
    """Run `adapter` on `request` (checked first) and return its speech at `request.fps`."""
    adapter.check_request(request)
    output = adapter.speak(request)  # the learned adapters run their models under torch.inference_mode
    frames = output.frames
    expected_tail = (NUM_AUS,) if output.weights is not None else (request.identity.num_vertices, 3)
    if frames.ndim != 2 + len(expected_tail) or tuple(frames.shape[2:]) != expected_tail or frames.shape[1] < 1:
        raise TalkingFacesError(
            f"The {adapter.name} model returned speech of shape {tuple(frames.shape)}, expected (S, T, {', '.join(map(str, expected_tail))}); "
            "the adapter is broken."
        )
    if output.num_samples != request.num_samples:
        raise TalkingFacesError(f"The {adapter.name} model returned {output.num_samples} samples for --num-samples {request.num_samples}.")
    samples = request.audio.shape[0]
    return SpeechTrack(output, float(request.fps), num_output_frames(samples, request.fps), samples / SAMPLE_RATE)



def speak_apart(adapter: SpeechAdapter, request: SpeechRequest, worker: WorkerProcess) -> SpeechTrack:
    """`speak`, run in the worker process `worker` when the adapter holds the GIL for long (`SpeechAdapter.speaks_apart`).

    For callers with other work meanwhile: `talkface render` builds its renderer while the speech is
    analysed, on the second core. Same result as `speak` (the same code runs). Runs in this process
    when the adapter does not ask for it or the request cannot be sent (a torch generator).
    """
    from .worker import UnsendableJob

    if not adapter.speaks_apart:
        return speak(adapter, request)
    try:
        return worker.call(speak, adapter, request)
    except UnsendableJob:
        return speak(adapter, request)
