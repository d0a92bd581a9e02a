"""Scoring a speech adapter, alone and with AU-basis emotion offsets (the two rows of Table 4).

For a sequence with template M0 and ground truth G at the dataset's fps:
- base animation: M0 + Offset_spe, the adapter's output for the subject's template (the chosen
  `--style`, or the adapter's default), retimed to the ground-truth fps;
- "model" row: LVE, FDD, V-LVE of the base animation; diversity over the adapter's training-subject
  styles (the adapter's `styles` attribute, when it has two or more; otherwise None);
- "model+AUBlendNet" row: LVE, FDD, V-LVE of compose(M0, Offset_spe, w_label, B), where w_label
  is the EMFACS preset of the sequence's emotion label at intensity level/3 (MEAD level_1..3; 1 when
  the dataset has no level; zero weights for neutral or unlabelled sequences, as in VOCASET);
  diversity over the seven expressive emotions at intensity 1 on the same speech.
"""

from __future__ import annotations

import numpy as np
import torch

from talking_faces.adapters import load_adapter
from talking_faces.audio import load_audio
from talking_faces.aus import EXPRESSIVE_EMOTIONS, NUM_AUS, emotion_weights
from talking_faces.basis import AUBasis
from talking_faces.basis_sources import resolve_basis
from talking_faces.compose import compose
from talking_faces.devices import resolve_device
from talking_faces.identity import Identity
from talking_faces.audio import num_output_frames
from talking_faces.retime import retime

from .metrics import condition_diversity
from .scorers import EMOTION_ROW_SUFFIX, AdapterSpec, ground_truth
from .scoring import MethodScores, score_animations
from talking_faces.data.sequences import Sequence

MAX_LEVEL = 3


def emotion_track(emotion: str | None, intensity: float, num_frames: int) -> torch.Tensor:
    """Constant `(T, 32)` float64 EMFACS weights of one preset emotion (zeros for None or neutral)."""
    weights = torch.zeros(num_frames, NUM_AUS, dtype=torch.float64)
    for k, value in emotion_weights(emotion or "neutral", intensity).items():
        weights[:, k] = value
    return weights


def label_intensity(sequence: Sequence) -> float:
    return 1.0 if sequence.intensity is None else sequence.intensity / MAX_LEVEL


class AdapterScorer:
    """Loads the adapter once; builds each subject's basis once."""

    def __init__(self, spec: AdapterSpec) -> None:
        self.spec = spec
        self.device = resolve_device(spec.device)
        self.adapter = load_adapter(spec.model, spec.checkpoint, self.device)
        self.styles = tuple(self.adapter.styles) if spec.style_diversity else ()
        self._bases: dict[str, AUBasis] = {}

    def _basis(self, identity: Identity) -> AUBasis | None:
        if not (self.spec.with_emotions or self.adapter.needs_basis):
            return None
        if identity.name not in self._bases:
            self._bases[identity.name] = resolve_basis(
                identity, au_basis=self.spec.au_basis, aublendnet=self.spec.aublendnet, codebook=self.spec.codebook,
                device=self.device,
            )
        return self._bases[identity.name]

    def _speech(self, audio: np.ndarray, identity: Identity, basis: AUBasis | None, style: str | None,
                fps: float) -> torch.Tensor:
        """Offset_spe `(T, V, 3)` float64 on the CPU at the ground truth's fps, covering the audio."""
        conditioning = {"basis": basis} if basis is not None else {}
        if style is not None:
            conditioning["style"] = style
        with torch.no_grad():
            offsets = self.adapter.animate(audio, identity, **conditioning)
        offsets = offsets.detach().to("cpu", torch.float64)
        return retime(offsets, self.adapter.fps, fps, num_output_frames(audio.shape[0], fps))

    def score(self, sequence: Sequence) -> dict[str, MethodScores]:
        gt, template = ground_truth(sequence, self.spec.regions)
        identity = Identity(np.asarray(sequence.template, dtype=np.float32), None, name=sequence.subject)
        self.adapter.check_identity(identity)
        basis = self._basis(identity)
        audio = load_audio(sequence.audio_path)
        neutral = torch.from_numpy(template)
        speech = self._speech(audio, identity, basis, self.spec.style, sequence.fps)
        base = (neutral + speech).numpy()
        rows = {self.spec.model: score_animations([base], gt, template, self.spec.regions)}
        if len(self.styles) >= 2:
            styled = [(neutral + self._speech(audio, identity, basis, s, sequence.fps)).numpy() for s in self.styles]
            rows[self.spec.model].diversity = condition_diversity(styled)
        if self.spec.with_emotions:
            offsets = torch.from_numpy(basis.offsets).to(torch.float64)
            frames = speech.shape[0]

            def emotional(emotion: str | None, intensity: float) -> np.ndarray:
                return compose(neutral, speech, emotion_track(emotion, intensity, frames), offsets).numpy()

            labelled = emotional(sequence.emotion, label_intensity(sequence))
            scores = score_animations([labelled], gt, template, self.spec.regions)
            scores.diversity = condition_diversity([emotional(e, 1.0) for e in EXPRESSIVE_EMOTIONS])
            rows[self.spec.model + EMOTION_ROW_SUFFIX] = scores
        return rows
