"""FaceDiffuser speech adapter: official checkpoints (VOCASET, BIWI, ProbTalk3D's 3D MEAD) in, offsets out.

Loading is one path (`load_facediffuser`): the bare 232-key state_dict, read with
`weights_only=True`, every size taken from tensor shapes, the variant told apart by the condition
width (43 = 32 speakers + 8 emotions + 3 levels: 3D MEAD), legacy weight-norm names accepted.

Sampling reproduces upstream's: audio normalised per utterance, T = int(N / 16000 * fps) - 1
frames, noise drawn in upstream's order and shapes from the request's generator, and by default
the upstream sampler of each checkpoint (VOCASET, BIWI: ancestral DDPM over every step; MEAD:
DDIM from t = 99). HuBERT runs once per audio; the K samples go through the denoiser as one batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talking_faces.checkpoints import legacy_weight_norm_names, load_strict, read_checkpoint, rename_legacy_weight_norm
from talking_faces.errors import TalkingFacesError
from talking_faces.identity import Identity
from talking_faces.schedulers import NoiseSchedule, draw_noise, make_scheduler

from .audio_encoders import encoder_config_from_state, normalize_audio
from .base import SpeechAdapter, SpeechOutput, SpeechRequest
from .facediffuser_model import FaceDiff, FaceDiffConfig
from .faceformer import BIWI_SUBJECTS, VOCASET_SUBJECTS

# ProbTalk3D's 3D-MEAD training speakers, in the order of its one-hot.
MEAD_SPEAKERS = (
    "M003", "M005", "M007", "M009", "M011", "M012", "M013", "M019", "M022", "M023", "M024", "M025", "M026", "M027",
    "M028", "M029", "M030", "M031", "W009", "W011", "W014", "W015", "W016", "W018", "W019", "W021", "W023", "W024",
    "W025", "W026", "W028", "W029",
)
MEAD_EMOTIONS = ("neutral", "happy", "sad", "surprised", "fear", "disgusted", "angry", "contempt")
MEAD_LEVELS = 3
ESSENTIAL_KEYS = ("obj_vector.weight", "time_mlp.0.weight", "input_projection.0.weight", "final_layer.weight", "gru.weight_ih_l0",
                  "audio_encoder.feature_projection.projection.weight")


@dataclass(frozen=True)
class Variant:
    """A training set's conventions: frame rate, style names, default style and the upstream sampler."""

    dataset: str
    fps: float
    subjects: tuple[str, ...]
    default_style: str
    sampler: str = "ddpm"
    start: int | None = None  # first timestep of the default sampler (None: T - 1)
    emotions: tuple[str, ...] = ()
    levels: int = 0

    @property
    def width(self) -> int:
        return len(self.subjects) + len(self.emotions) + self.levels


VARIANTS = {
    "vocaset": Variant("vocaset", 30.0, VOCASET_SUBJECTS, "FaceTalk_170913_03279_TA"),  # upstream README's condition
    "BIWI": Variant("BIWI", 25.0, BIWI_SUBJECTS, "M3"),  # upstream predict.py's default condition
    # ProbTalk3D evaluates with ddim_sample_loop(skip_timesteps=900): DDIM over t = 99 ... 0.
    "mead": Variant("mead", 25.0, MEAD_SPEAKERS, "M003,neutral,1", "ddim", 99, MEAD_EMOTIONS, MEAD_LEVELS),
}


def sidecar_path(checkpoint: str | Path) -> Path:
    """The JSON next to a trained checkpoint naming its dataset and styles (`x.pth` -> `x.json`)."""
    return Path(checkpoint).with_suffix(".json")


def infer_variant(state: dict[str, torch.Tensor], sidecar: dict[str, Any], dataset: str | None = None) -> Variant:
    """The training set: given, from the sidecar, or from the condition width and vertex count."""
    width = state["obj_vector.weight"].shape[1]
    vertice_dim = state["final_layer.weight"].shape[0]
    dataset = dataset or sidecar.get("dataset")
    if dataset is None:
        dataset = "mead" if width == VARIANTS["mead"].width else {15069: "vocaset", 70110: "BIWI"}.get(vertice_dim)
    if dataset not in VARIANTS:
        raise TalkingFacesError(f"Cannot tell the training set of a FaceDiffuser with V*3={vertice_dim} and {width} conditions; pass dataset= one of {', '.join(VARIANTS)}.")
    variant = VARIANTS[dataset]
    subjects = tuple(sidecar.get("subjects") or variant.subjects)
    if len(subjects) + len(variant.emotions) + variant.levels != width:
        raise TalkingFacesError(
            f"This FaceDiffuser has {width} conditions, not the {variant.width} of {dataset}; write the training subjects "
            "into the checkpoint's sidecar JSON (\"subjects\": [...]) or pass the right dataset=."
        )
    default = sidecar.get("default_style") or (variant.default_style if variant.default_style.split(",")[0] in subjects else subjects[0])
    return Variant(variant.dataset, float(sidecar.get("fps", variant.fps)), subjects, default, variant.sampler, variant.start, variant.emotions, variant.levels)


def infer_config(state: dict[str, torch.Tensor], variant: Variant, audio_encoder: dict[str, Any] | None = None) -> FaceDiffConfig:
    """Network sizes from tensor shapes (MEAD multiplies the audio tokens by the style, the others the GRU output)."""
    layers = {int(k.removeprefix("gru.weight_ih_l")) for k in state if k.startswith("gru.weight_ih_l")}
    return FaceDiffConfig(
        vertice_dim=state["final_layer.weight"].shape[0],
        latent_dim=state["cond_projection.weight"].shape[0],
        gru_dim=state["gru.weight_hh_l0"].shape[1],
        gru_layers=len(layers),
        diffusion_steps=state["time_mlp.0.weight"].shape[1],
        num_conditions=state["obj_vector.weight"].shape[1],
        style_target="audio" if variant.emotions else "output",
        fps=variant.fps,
        audio_encoder=audio_encoder or encoder_config_from_state(state, "audio_encoder."),
    )


def load_facediffuser(path: str | Path, dataset: str | None = None) -> tuple[FaceDiff, Variant]:
    """A FaceDiffuser from an official-format checkpoint (strict), on the CPU, in eval mode."""
    state = rename_legacy_weight_norm(read_checkpoint(path, "FaceDiffuser"))
    missing = [k for k in ESSENTIAL_KEYS if k not in state]
    if missing:
        raise TalkingFacesError(f"{path} is not a FaceDiffuser checkpoint: missing {', '.join(missing[:3])}; pass FaceDiffuser's .pth (e.g. pretrained_vocaset.pth).")
    side = sidecar_path(path)
    sidecar = json.loads(side.read_text()) if side.is_file() else {}
    variant = infer_variant(state, sidecar, dataset)
    try:
        model = FaceDiff(infer_config(state, variant, sidecar.get("audio_encoder")))
    except (KeyError, IndexError, ValueError) as exc:
        raise TalkingFacesError(f"{path} is not a FaceDiffuser checkpoint ({exc.__class__.__name__}: {exc}); pass FaceDiffuser's .pth.") from None
    load_strict(model, state, path, "FaceDiffuser", "pass an official FaceDiffuser checkpoint or one written by `talkface train facediffuser`.")
    return model.eval(), variant


def official_state_dict(model: FaceDiff) -> dict[str, torch.Tensor]:
    """The weights under upstream's names (legacy weight-norm keys), which upstream's strict load accepts."""
    return legacy_weight_norm_names({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})


def sidecar_dict(variant: Variant, model: FaceDiff) -> dict[str, Any]:
    """What `load_facediffuser` reads back for a checkpoint trained here."""
    return {"dataset": variant.dataset, "subjects": list(variant.subjects), "default_style": variant.default_style,
            "fps": variant.fps, "audio_encoder": dict(model.config.audio_encoder)}


def condition_vector(variant: Variant, style: str | int | None) -> torch.Tensor:
    """The `(K,)` one-hot for a style: SUBJECT (name or index), or for MEAD `SPEAKER,EMOTION,LEVEL` (e.g. `M003,happy,3`)."""
    spec = str(style if style is not None else variant.default_style).strip()
    parts = [p.strip() for p in spec.split(",")]
    defaults = variant.default_style.split(",")
    if len(parts) > 1 + bool(variant.emotions) * 2:
        raise TalkingFacesError(f"--style {spec!r} has too many fields for {variant.dataset}; give {'SPEAKER,EMOTION,LEVEL' if variant.emotions else 'SUBJECT'}.")
    vector = torch.zeros(variant.width)
    vector[_index(parts[0], variant.subjects, "subject")] = 1.0
    if variant.emotions:
        emotion = parts[1] if len(parts) > 1 and parts[1] else defaults[1]
        level = parts[2] if len(parts) > 2 and parts[2] else defaults[2]
        vector[len(variant.subjects) + _index(emotion, variant.emotions, "emotion")] = 1.0
        levels = tuple(str(i + 1) for i in range(variant.levels))
        if level not in levels:
            raise TalkingFacesError(f"Unknown intensity level {level!r} in --style; choose one of {', '.join(levels)}.")
        vector[len(variant.subjects) + len(variant.emotions) + int(level) - 1] = 1.0
    return vector


def _index(name: str, names: tuple[str, ...], what: str) -> int:
    if name in names:
        return names.index(name)
    if name.isdigit() and int(name) < len(names):
        return int(name)
    shown = ", ".join(f"{i}={n}" for i, n in enumerate(names))
    raise TalkingFacesError(f"Unknown training {what} {name!r} for --style; choose a name or index: {shown}.")


def sample_generators(generator: torch.Generator | None, num_samples: int) -> list[torch.Generator]:
    """One generator per sample: sample 0 draws from `generator` itself (upstream's stream after
    torch.manual_seed(S)); sample k from a generator seeded S + k. Without one, a random seed."""
    if generator is None:
        generator = torch.Generator()
        generator.seed()
    seed = generator.initial_seed()
    return [generator] + [torch.Generator(generator.device).manual_seed(seed + k) for k in range(1, num_samples)]


def sample_in_hidden_space(model: FaceDiff, scheduler: Any, noise: torch.Tensor, tokens: torch.Tensor,
                           condition: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """A deterministic sampler run on coordinates instead of vertices (the same sample, ~7x fewer FLOPs per step).

    A deterministic solver's iterate is an affine combination of the start noise z and the x0
    estimates, and each x0 estimate is F h + c (F, c: `final_layer` weight, bias + template). So
    x = c0 z + F H + k c with a `(G+2)`-wide state [H | k | c0] per frame, and the network's first
    layer needs W x = c0 (W z) + (W F) H + k (W c): no vertex-sized product per step. The solver's
    scalar, elementwise updates act on the packed state exactly as on x. Equal to stepping on x up
    to float rounding.

    Args:
        noise: `(B, T, V*3)` start noise; tokens, condition, template as in `FaceDiff.denoise`.
    Returns:
        `(B, T, V*3)` the final sample.
    """
    first, final = model.input_projection[0], model.final_layer
    offset = final.bias + template
    noise_in = noise @ first.weight.T  # (B, T, 2L)
    weight_in = first.weight @ final.weight  # (2L, G)
    offset_in = first.weight @ offset  # (2L,)
    batch, frames = noise.shape[:2]
    gru = final.weight.shape[1]
    ones, zeros = noise.new_ones(batch, frames, 1), noise.new_zeros(batch, frames, 1)
    state = scheduler.initial_sample(torch.cat([noise.new_zeros(batch, frames, gru), zeros, ones], -1))
    for t in scheduler.timesteps:
        coeffs, k, c0 = state.split([gru, 1, 1], -1)
        projected = c0 * noise_in + coeffs @ weight_in.T + k * offset_in + first.bias
        hidden = model.hidden(projected, int(t), tokens, condition)
        state = scheduler.step(torch.cat([hidden, ones, zeros], -1), t, state).prev_sample
    coeffs, k, c0 = state.split([gru, 1, 1], -1)
    return c0 * noise + coeffs @ final.weight.T + k * offset


class FaceDiffuserAdapter(SpeechAdapter):
    """FaceDiffuser re-implemented; samples as the official code does, HuBERT once per audio.

    Options: `sampler=ddpm|ddim|dpmpp` and `steps=N` override the checkpoint's upstream sampler;
    `dataset=vocaset|BIWI|mead` overrides the inferred conventions.
    """

    name = "facediffuser"
    accepts = frozenset({"style", "generator", "num_samples"})

    def __init__(self, model: FaceDiff, variant: Variant, device: torch.device | str = "cpu", sampler: str | None = None, steps: int | None = None) -> None:
        super().__init__(device)
        self.model = model.to(self.device).eval()
        self.variant = variant
        self.fps = variant.fps
        self.topology = model.config.vertice_dim // 3
        self.styles = variant.subjects
        self.schedule = NoiseSchedule.guided_cosine(model.config.diffusion_steps)
        self.sampler = sampler or variant.sampler
        self.steps = steps
        # The upstream start (MEAD: t = 99) applies to its own sampler; an override starts from pure noise.
        self.start = variant.start if sampler in (None, variant.sampler) else None
        make_scheduler(self.sampler, self.schedule, steps, self.start)  # a bad sampler/steps fails at load time

    @classmethod
    def from_checkpoint(
        cls, path: str | Path | None, device: torch.device | str = "cpu", dataset: str | None = None,
        sampler: str | None = None, steps: int | None = None, **options: Any,
    ) -> "FaceDiffuserAdapter":
        """Load an official-format checkpoint (`pretrained_vocaset.pth`, `face_diffuser_mead_50.pth`, ...)."""
        if path is None:
            raise TalkingFacesError("The facediffuser model needs weights; pass --checkpoint pretrained_vocaset.pth (or a trained .pth).")
        if options:
            raise TalkingFacesError(f"Unknown FaceDiffuser option(s) {', '.join(options)}; the options are sampler=, steps= and dataset=.")
        model, variant = load_facediffuser(path, dataset)
        return cls(model, variant, device, sampler, steps)

    def num_frames(self, num_audio_samples: int) -> int:
        """Upstream's frame count: int(N / 16000 * fps) - 1."""
        return int(num_audio_samples / 16000 * self.fps) - 1

    @torch.inference_mode()
    def sample(self, audio: np.ndarray, identity: Identity, style: str | int | None = None,
               generator: torch.Generator | None = None, num_samples: int = 1) -> torch.Tensor:
        """K speech samples as offsets from the identity's neutral.

        Args:
            audio: `(N,)` 16 kHz samples.
        Returns:
            `(K, T, V, 3)` float32 offsets at `self.fps`, T = int(N / 16000 * fps) - 1.
        """
        self.check_identity(identity)
        frames = self.num_frames(len(audio))
        if frames < 1:
            raise TalkingFacesError(f"The audio is too short for FaceDiffuser ({len(audio) / 16000:.2f} s); give at least 0.1 s of speech.")
        model, device = self.model, self.device
        condition = condition_vector(self.variant, style).to(device)
        template = torch.as_tensor(identity.vertices, dtype=torch.float32, device=device).reshape(-1)
        hidden = model.encode_audio(normalize_audio(audio).to(device))
        tokens = model.audio_tokens(hidden, frames, condition)
        frames = tokens.shape[1]  # upstream cuts the motion to the audio when 2T 50 Hz states are not there
        scheduler = make_scheduler(self.sampler, self.schedule, self.steps, self.start, device)
        generators = sample_generators(generator, num_samples)
        noise = draw_noise((num_samples, frames, template.numel()), generators, device)
        if self.sampler == "dpmpp":
            x = sample_in_hidden_space(model, scheduler, noise, tokens, condition, template)
        else:
            x = scheduler.initial_sample(noise)
            for t in scheduler.timesteps:
                x0 = model.denoise(x, int(t), tokens, condition, template)
                x = scheduler.step(x0, t, x, generator=generators).prev_sample
        return (x - template).reshape(num_samples, frames, -1, 3).float()

    def speak(self, request: SpeechRequest) -> SpeechOutput:
        """`(S, T, V, 3)` offsets at `self.fps`, S = request.num_samples, drawn from request.generator."""
        offsets = self.sample(request.audio, request.identity, request.style, request.generator, request.num_samples)
        return SpeechOutput(fps=self.fps, offsets=offsets)
