"""FaceFormer speech adapter: official checkpoints in, Offset_spe out.

Loading is one path (`FaceFormerAdapter.from_checkpoint`). The only knowledge of upstream
tensor names is `LEGACY_RENAMES` / `DROPPED_KEYS` below, used both to read official files and to
write files that upstream code loads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from talking_faces.checkpoints import load_strict, names, read_checkpoint
from talking_faces.errors import TalkingFacesError

from .audio_encoders import encoder_config_from_state, normalize_audio
from .base import SpeechAdapter, SpeechOutput, SpeechRequest
from .faceformer_model import FaceFormer, FaceFormerConfig, periodic_encoding

# Upstream (torch 1.9) weight-norm names -> torch's parametrizations (same g * v / ||v||, norm over dims 0, 1).
LEGACY_RENAMES = {
    "audio_encoder.encoder.pos_conv_embed.conv.weight_g": "audio_encoder.encoder.pos_conv_embed.conv.parametrizations.weight.original0",
    "audio_encoder.encoder.pos_conv_embed.conv.weight_v": "audio_encoder.encoder.pos_conv_embed.conv.parametrizations.weight.original1",
}
# Deterministic buffer, rebuilt at any length instead of being trusted.
DROPPED_KEYS = ("PPE.pe",)
UPSTREAM_MAX_SEQ_LEN = 600

VOCASET_SUBJECTS = (
    "FaceTalk_170728_03272_TA", "FaceTalk_170904_00128_TA", "FaceTalk_170725_00137_TA", "FaceTalk_170915_00223_TA",
    "FaceTalk_170811_03274_TA", "FaceTalk_170913_03279_TA", "FaceTalk_170904_03276_TA", "FaceTalk_170912_03278_TA",
)
BIWI_SUBJECTS = ("F2", "F3", "F4", "M3", "M4", "M5")


@dataclass(frozen=True)
class DatasetConventions:
    """How a training set ties audio to frames, and the subjects of its official checkpoint."""

    fps: float
    period: int
    audio_steps_per_frame: int
    subjects: tuple[str, ...] = ()
    default_style: str | None = None


DATASETS = {
    "vocaset": DatasetConventions(30.0, 30, 1, VOCASET_SUBJECTS, "FaceTalk_170913_03279_TA"),  # upstream demo's subject
    "BIWI": DatasetConventions(25.0, 25, 2, BIWI_SUBJECTS, "F2"),
    "mead": DatasetConventions(25.0, 25, 2),
}
DATASET_BY_VERTICE_DIM = {15069: "vocaset", 70110: "BIWI"}


@dataclass
class Conditioning:
    """Names behind the one-hot condition: subjects, then (optionally) emotions."""

    dataset: str
    subjects: list[str]
    emotions: list[str] = field(default_factory=list)
    default_style: str | None = None

    def one_hot(self, style: str | int | None) -> torch.Tensor:
        """`(1, K)` condition for `SUBJECT`, a subject index, or `SUBJECT,EMOTION` (subject+emotion models)."""
        spec = str(style if style is not None else self.default_style or 0).strip()
        subject, _, emotion = spec.partition(",")
        vector = torch.zeros(1, len(self.subjects) + len(self.emotions))
        vector[0, self._index(subject.strip(), self.subjects, "subject")] = 1.0
        if self.emotions:
            emotion = emotion.strip() or ("neutral" if "neutral" in self.emotions else self.emotions[0])
            vector[0, len(self.subjects) + self._index(emotion, self.emotions, "emotion")] = 1.0
        elif emotion:
            raise TalkingFacesError(f"This FaceFormer is conditioned on subjects only; pass --style SUBJECT without ',{emotion}'.")
        return vector

    @staticmethod
    def _index(name: str, names: list[str], what: str) -> int:
        if name in names:
            return names.index(name)
        if name.lstrip("-").isdigit() and 0 <= int(name) < len(names):
            return int(name)
        shown = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        raise TalkingFacesError(f"Unknown training {what} {name!r} for --style; choose a name or index: {shown}.")


def sidecar_path(checkpoint: str | Path) -> Path:
    """The JSON next to a checkpoint that names its conditions and conventions (`x.pth` -> `x.json`)."""
    return Path(checkpoint).with_suffix(".json")


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    state = read_checkpoint(path, "FaceFormer")
    state = {LEGACY_RENAMES.get(k, k): v for k, v in state.items() if k not in DROPPED_KEYS}
    essential = ["vertice_map.weight", "obj_vector.weight", "feature_projection", "pos_conv_embed.conv.parametrizations.weight.original1", "layers.0.feed_forward"]
    missing = [k for k in essential if not any(k in key for key in state)]
    if missing:
        raise TalkingFacesError(f"{path} is not a FaceFormer checkpoint: missing keys like {names(missing, 4)}; unexpected keys: {names(state, 4)}.")
    return state


def infer_config(state: dict[str, torch.Tensor], sidecar: dict[str, Any], dataset: str | None = None) -> tuple[FaceFormerConfig, str]:
    """Network dimensions from tensor shapes; data conventions from `dataset`, the sidecar, or V*3."""
    vertice_dim = state["vertice_map.weight"].shape[1]
    dataset = dataset or sidecar.get("dataset") or DATASET_BY_VERTICE_DIM.get(vertice_dim)
    if dataset not in DATASETS:
        raise TalkingFacesError(
            f"Cannot tell the training set of a FaceFormer with V*3={vertice_dim} and no sidecar JSON; "
            f"pass dataset= one of {', '.join(DATASETS)}."
        )
    conventions = DATASETS[dataset]
    layers = {int(k.split(".")[2]) for k in state if k.startswith("transformer_decoder.layers.")}
    config = FaceFormerConfig(
        vertice_dim=vertice_dim,
        feature_dim=state["vertice_map.weight"].shape[0],
        num_styles=state["obj_vector.weight"].shape[1],
        period=int(sidecar.get("period", conventions.period)),
        fps=float(sidecar.get("fps", conventions.fps)),
        audio_steps_per_frame=int(sidecar.get("audio_steps_per_frame", conventions.audio_steps_per_frame)),
        n_head=int(sidecar.get("n_head", 4)),
        num_layers=len(layers),
        audio_encoder=sidecar.get("audio_encoder") or encoder_config_from_state(state),
    )
    return config, dataset


def _conditioning(dataset: str, num_styles: int, sidecar: dict[str, Any]) -> Conditioning:
    conventions = DATASETS[dataset]
    subjects = list(sidecar.get("subjects") or conventions.subjects)
    emotions = list(sidecar.get("emotions") or [])
    if len(subjects) + len(emotions) != num_styles:
        subjects, emotions = [f"subject{i}" for i in range(num_styles)], []
    default = sidecar.get("default_style") or (conventions.default_style if conventions.default_style in subjects else subjects[0])
    return Conditioning(dataset, subjects, emotions, default)


def load_faceformer(path: str | Path, dataset: str | None = None) -> tuple[FaceFormer, Conditioning]:
    """Build a FaceFormer from an official-format checkpoint (strict), on the CPU, in eval mode."""
    path = Path(path)
    side = sidecar_path(path)
    sidecar = json.loads(side.read_text()) if side.is_file() else {}
    state = _read_state(path)
    try:
        config, dataset = infer_config(state, sidecar, dataset)
        model = FaceFormer(config)
    except (KeyError, IndexError, ValueError) as exc:
        raise TalkingFacesError(f"{path} is not a FaceFormer checkpoint ({exc.__class__.__name__}: {exc}); pass FaceFormer's .pth.") from None
    load_strict(model, state, path, "FaceFormer",
                "pass an official FaceFormer checkpoint or one written by `talkface train faceformer`.")
    return model.eval(), _conditioning(dataset, config.num_styles, sidecar)


def upstream_state_dict(model: FaceFormer) -> dict[str, torch.Tensor]:
    """The model's weights under upstream names and layout, so upstream's strict load accepts them."""
    legacy = {new: old for old, new in LEGACY_RENAMES.items()}
    state = {legacy.get(k, k): v.detach().cpu().clone() for k, v in model.state_dict().items()}
    c = model.config
    state["PPE.pe"] = periodic_encoding((UPSTREAM_MAX_SEQ_LEN // c.period + 1) * c.period, c.feature_dim, c.period)[None]
    return state


def sidecar_dict(model: FaceFormer, conditioning: Conditioning) -> dict[str, Any]:
    """What `load_faceformer` reads back: names behind the one-hot, conventions, encoder config."""
    config = asdict(model.config)
    keep = ("period", "fps", "audio_steps_per_frame", "n_head", "audio_encoder")
    return {"dataset": conditioning.dataset, "subjects": conditioning.subjects, "emotions": conditioning.emotions,
            "default_style": conditioning.default_style, **{k: config[k] for k in keep}}


class FaceFormerAdapter(SpeechAdapter):
    """FaceFormer re-implemented; loads `vocaset.pth`, `biwi.pth` and checkpoints trained here.

    Conditioning: `style` = training-subject name or index (default: upstream demo's
    FaceTalk_170913_03279_TA for VOCASET, F2 for BIWI, the first subject otherwise), or
    `SUBJECT,EMOTION` for models trained with `--condition subject+emotion`.
    """

    name = "faceformer"
    accepts = frozenset({"style"})

    def __init__(self, model: FaceFormer, conditioning: Conditioning, device: torch.device | str = "cpu") -> None:
        super().__init__(device)
        self.model = model.to(self.device).eval()
        self.conditioning = conditioning
        self.fps = model.config.fps
        self.topology = model.config.vertice_dim // 3
        self.styles = tuple(conditioning.subjects)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path | None, device: torch.device | str = "cpu", dataset: str | None = None, **options: Any
    ) -> "FaceFormerAdapter":
        """Load an official-format checkpoint; `dataset` overrides the inferred conventions."""
        if path is None:
            raise TalkingFacesError("The faceformer model needs weights; pass --checkpoint vocaset.pth (or a trained .pth).")
        if options:
            raise TalkingFacesError(f"Unknown FaceFormer option(s) {', '.join(options)}; the only option is dataset=vocaset|BIWI|mead.")
        model, conditioning = load_faceformer(path, dataset)
        return cls(model, conditioning, device)

    @torch.inference_mode()
    def speak(self, request: SpeechRequest) -> SpeechOutput:
        """`(1, T, V, 3)` Offset_spe at `self.fps` for the request's 16 kHz audio and `style`.

        Upstream predicts `template + displacement`, with the template entering only in that sum,
        so the offset from the identity's own neutral is the displacement itself.
        """
        condition = self.conditioning.one_hot(request.style).to(self.device)
        displacement = self.model(normalize_audio(request.audio).to(self.device), condition)
        return SpeechOutput(fps=self.fps, offsets=displacement.reshape(1, displacement.shape[1], -1, 3).float())
