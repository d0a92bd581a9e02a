"""Scoring a speech adapter, alone and with AU-basis emotion offsets (the two rows of Table 4).

Everything runs through the render path's own pieces: `speech.speak` on a `SpeechRequest` at the
dataset's frame rate, emotion weights from an emotion spec (`parse_emotion`), and `compose`.
For a sequence with template M0 and ground truth G:
- "model" row: LVE, FDD, V-LVE of M0 + Offset_spe (sample 0 of the chosen `--style`, or the
  adapter's default); condition diversity over the adapter's training-subject styles (when it has
  two or more); sample diversity over `num_samples` samples (stochastic adapters, `num_samples >= 2`);
- "model+AUBlendNet" row: LVE, FDD, V-LVE of compose(M0, Offset_spe, w, B) with w the spec
  `<emotion>:<level/3>` of the sequence's label (MEAD level_1..3; intensity 1 when the dataset has
  no level; `neutral` for unlabelled sequences, as in VOCASET); condition diversity over the seven
  expressive emotions at intensity 1 on the same speech.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from talking_faces.adapters import SpeechRequest, load_adapter
from talking_faces.atomic import atomic_write
from talking_faces.audio import load_audio
from talking_faces.aus import EXPRESSIVE_EMOTIONS
from talking_faces.basis import AUBasis
from talking_faces.basis_sources import resolve_basis
from talking_faces.compose import compose
from talking_faces.data.sequences import Sequence
from talking_faces.devices import resolve_device
from talking_faces.emotion import parse_emotion
from talking_faces.identity import Identity
from talking_faces.pipeline import seeded_generator
from talking_faces.speech import SpeechTrack, speak

from .metrics import condition_diversity, sample_diversity
from .scorers import CONDITION_TAG, EMOTION_ROW_SUFFIX, AdapterSpec, ground_truth
from .scoring import MethodScores, score_animations

MAX_LEVEL = 3


def emotion_spec(sequence: Sequence) -> str:
    """The emotion spec of a sequence's label: `<emotion>:<level/3>` (`neutral` when unlabelled)."""
    intensity = 1.0 if sequence.intensity is None else sequence.intensity / MAX_LEVEL
    return f"{sequence.emotion or 'neutral'}:{intensity:.17g}"


class AdapterScorer:
    """Loads the adapter once; builds each subject's basis once."""

    def __init__(self, spec: AdapterSpec) -> None:
        self.spec = spec
        self.device = resolve_device(spec.device)
        self.adapter = load_adapter(spec.model, spec.checkpoint, self.device, **dict(spec.model_options))
        self.styles = tuple(self.adapter.styles) if spec.style_diversity else ()
        self._bases: dict[str, AUBasis] = {}

    def _basis(self, identity: Identity) -> AUBasis | None:
        if not (self.spec.with_emotions or "basis" in self.adapter.requires):
            return None
        if identity.name not in self._bases:
            self._bases[identity.name] = resolve_basis(
                identity, au_basis=self.spec.au_basis, aublendnet=self.spec.aublendnet, codebook=self.spec.codebook,
                device=self.device,
            )
        return self._bases[identity.name]

    def _speech(self, audio: np.ndarray, identity: Identity, basis: AUBasis | None, style: str | None,
                fps: float, num_samples: int = 1) -> SpeechTrack:
        request = SpeechRequest(
            audio=audio, identity=identity, basis=basis, style=style, fps=fps,
            generator=seeded_generator(self.spec.seed), num_samples=num_samples,
        )
        return speak(self.adapter, request)

    @staticmethod
    def _offsets(track: SpeechTrack, basis: AUBasis | None, sample: int = 0) -> torch.Tensor:
        """`(T, V, 3)` float64 Offset_spe on the CPU, covering the audio at the dataset's rate."""
        basis_offsets = None if basis is None else torch.from_numpy(basis.offsets).to(torch.float64)
        return track.offsets(0, track.num_frames, basis_offsets, sample).to("cpu", torch.float64)

    def score(self, sequence: Sequence) -> dict[str, MethodScores]:
        gt, template = ground_truth(sequence, self.spec.regions)
        identity = Identity(np.asarray(sequence.template, dtype=np.float32), None, name=sequence.subject)
        self.adapter.check_identity(identity)
        basis = self._basis(identity)
        audio = load_audio(sequence.audio_path)
        neutral = torch.from_numpy(template)
        track = self._speech(audio, identity, basis, self.spec.style, sequence.fps, self.spec.num_samples)
        samples = [(neutral + self._offsets(track, basis, s)).numpy() for s in range(track.num_samples)]
        base = samples[0]
        self._save(sequence, self.spec.model, base)
        rows = {self.spec.model: score_animations([base], gt, template, self.spec.regions)}
        if len(samples) >= 2:
            rows[self.spec.model].sample_diversity = sample_diversity(samples)
        if len(self.styles) >= 2:
            styled = [(neutral + self._offsets(self._speech(audio, identity, basis, s, sequence.fps), basis)).numpy()
                      for s in self.styles]
            rows[self.spec.model].diversity = condition_diversity(styled)
        if self.spec.with_emotions:
            basis_offsets = torch.from_numpy(basis.offsets).to(torch.float64)
            speech = torch.from_numpy(base) - neutral
            frames = speech.shape[0]

            def emotional(spec: str) -> np.ndarray:
                weights = torch.from_numpy(parse_emotion(spec).weights(frames, sequence.fps)).to(torch.float64)
                return compose(neutral, speech, weights, basis_offsets).numpy()

            labelled = emotional(emotion_spec(sequence))
            self._save(sequence, self.spec.model + EMOTION_ROW_SUFFIX, labelled)
            scores = score_animations([labelled], gt, template, self.spec.regions)
            scores.diversity = condition_diversity([emotional(f"{e}:1") for e in EXPRESSIVE_EMOTIONS])
            rows[self.spec.model + EMOTION_ROW_SUFFIX] = scores
        return rows

    def _save(self, sequence: Sequence, method: str, vertices: np.ndarray) -> None:
        """With `save_predictions`, write what was scored as `<dir>/<method>/<sequence>_condition_0.npy`."""
        if self.spec.save_predictions is None:
            return
        folder = Path(self.spec.save_predictions) / method
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{sequence.name}{CONDITION_TAG}0.npy"
        atomic_write(path, lambda tmp: np.save(tmp, vertices.astype(np.float32)))
