"""LG-LDM: official-format loading, stage-1 quantisation, the FDM's masks and encodings, upstream's samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from talking_faces.adapters import load_adapter
from talking_faces.adapters.lgldm import LGLDMAdapter, vocaset_ddim_timesteps
from talking_faces.adapters.lgldm_checkpoints import load_denoiser, load_vqvae
from talking_faces.adapters.lgldm_vqvae import EmotionQuantizer
from talking_faces.errors import TalkingFacesError
from talking_faces.schedulers import AncestralDDPMScheduler, DDIMScheduler, NoiseSchedule
from talking_faces.schedulers.lucidrains import cosine_betas_clipped, lucidrains_buffers

from lgldm_tiny import NUM_VERTICES, tiny_denoiser, tiny_vqvae, write_pair

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mead_files(tmp_path_factory):
    return write_pair(tmp_path_factory.mktemp("lgldm_mead"), mead=True)


@pytest.fixture(scope="module")
def vocaset_files(tmp_path_factory):
    return write_pair(tmp_path_factory.mktemp("lgldm_vocaset"), mead=False)


@pytest.fixture(scope="module")
def schedule() -> NoiseSchedule:
    return NoiseSchedule.from_buffers(lucidrains_buffers(cosine_betas_clipped(1000)))


def synthetic_speech(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def alpha_bar(t: int) -> float:
    """Closed-form cosine alpha-bar of step t (no beta is clipped below t = 999)."""
    f = lambda u: math.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    return f(t + 1) / f(0)


# ----- checkpoints -----------------------------------------------------------------------------
def test_official_files_load_strictly(mead_files, vocaset_files):
    for (stage2, stage1), mead in ((mead_files, True), (vocaset_files, False)):
        payload = torch.load(stage2, weights_only=True)
        assert set(payload) == {"epoch", "model", "opt"}
        assert "denoise_fn.audio_encoder.encoder.pos_conv_embed.conv.weight_g" in payload["model"]
        denoiser, buffers = load_denoiser(stage2)
        assert len(buffers) == 12
        reference = tiny_denoiser(mead).state_dict()
        for key, value in denoiser.state_dict().items():
            assert torch.equal(value, reference[key]), key
        vq = load_vqvae(stage1)
        assert vq.emotional == mead and vq.config.tokens_per_frame == 4
        reference = tiny_vqvae(mead).state_dict()
        for key, value in vq.state_dict().items():
            assert torch.equal(value, reference[key]), key
        assert denoiser.config.periodic_position == (not mead) and denoiser.config.n_head == (4 if mead else 8)
        assert denoiser.audio_encoder.config.do_stable_layer_norm


def test_key_errors_are_one_line(mead_files, vocaset_files, tmp_path):
    stage2, stage1 = mead_files
    payload = torch.load(stage2, weights_only=True)
    broken = dict(payload["model"])
    broken.pop("denoise_fn.latent_encoder.0.bias")
    broken["denoise_fn.extra.weight"] = torch.zeros(1)
    torch.save({**payload, "model": broken}, tmp_path / "broken.mpt")
    with pytest.raises(TalkingFacesError, match=r"missing 1 key\(s\): latent_encoder.0.bias; unexpected 1 key\(s\): extra.weight") as err:
        load_denoiser(tmp_path / "broken.mpt")
    assert "\n" not in str(err.value)
    with pytest.raises(TalkingFacesError, match="stage-1 VQ-VAE file"):
        load_denoiser(stage1)
    with pytest.raises(TalkingFacesError, match="stage-2 diffusion file"):
        load_vqvae(stage2)
    schedule = dict(payload["model"])
    schedule["betas"] = schedule["betas"] * 1.01
    torch.save({**payload, "model": schedule}, tmp_path / "schedule.mpt")
    with pytest.raises(TalkingFacesError, match="not the cosine schedule"):
        load_denoiser(tmp_path / "schedule.mpt")
    # A MEAD stage 2 with a VOCASET stage 1.
    with pytest.raises(TalkingFacesError, match=r"does not fit stage 1 .*pass the VQ-VAE trained with it as --vqvae"):
        LGLDMAdapter.from_checkpoint(stage2, vqvae=vocaset_files[1])


# ----- stage 1 ---------------------------------------------------------------------------------
def test_emotion_sliced_codebook_search():
    quantizer = EmotionQuantizer(num_codes=6, code_dim=2, num_emotions=3)  # slices of 2 rows
    quantizer.embedding.weight.data = torch.tensor([[0.0, 0.0], [5.0, 5.0], [1.0, 1.0], [9.0, 9.0], [3.0, 3.0], [-4.0, 0.0]])
    z = torch.tensor([[[0.5, 0.5], [4.0, 4.0]]])
    # Emotion 1 searches rows 2, 3 only, although row 0 is the global nearest for the first latent.
    assert quantizer(z, torch.tensor([[0.0, 1.0, 0.0]])).indices.tolist() == [[2, 2]]
    assert quantizer(z, torch.tensor([[0.0, 0.0, 1.0]])).indices.tolist() == [[4, 4]]
    # Neutral (all zero) falls on the first slice, as upstream's argmax does.
    assert quantizer(z, torch.zeros(1, 3)).indices.tolist() == [[0, 1]]
    # Per-sample emotions in a batch.
    both = quantizer(z.repeat(2, 1, 1), torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    assert both.indices.tolist() == [[2, 2], [0, 1]]


def test_straight_through_value_and_gradient():
    quantizer = EmotionQuantizer(num_codes=14, code_dim=3, num_emotions=7)
    z = torch.randn(1, 5, 3, requires_grad=True)
    out = quantizer(z, torch.eye(7)[3:4])
    rows = quantizer.embedding.weight[out.indices]
    assert torch.equal(out.codes, z + (rows - z))  # the float32 value upstream's decoder sees
    torch.testing.assert_close(out.codes, rows, rtol=0, atol=1e-6)
    out.codes.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # straight through


def test_stage1_round_trip_of_a_fixed_motion():
    for mead in (True, False):
        vq = tiny_vqvae(mead)
        t = torch.linspace(0, 1, 7)
        motion = (0.01 * torch.sin(2 * math.pi * t[:, None] * torch.arange(1, NUM_VERTICES * 3 + 1) / 7))[None]
        emotion = torch.eye(7)[4:5] if mead else None
        decoded, quantized = vq(motion, emotion)
        latents = vq.encode(motion, emotion)
        assert latents.shape == (1, 7 * 4, 4)
        # Nearest rows by brute force over the searched rows (MEAD: happy's slice, rows 16..19).
        rows = vq.quantize.embedding.weight[16:20] if mead else vq.quantize.embedding.weight
        nearest = torch.cdist(latents[0], rows).argmin(dim=1) + (16 if mead else 0)
        assert torch.equal(quantized.indices[0], nearest)
        assert decoded.shape == motion.shape and torch.equal(decoded, vq.decode(quantized.codes))
        # The straight-through value is the rows up to ~1e-7; InstanceNorm over 7 frames amplifies that a little.
        manual = vq.decode(vq.quantize.embedding.weight[nearest][None])
        torch.testing.assert_close(decoded, manual, rtol=0, atol=1e-4)


# ----- stage 2: masks, encodings, lengths ------------------------------------------------------
def test_positions_and_masks_against_closed_forms():
    mead, voca = tiny_denoiser(True), tiny_denoiser(False)
    like = torch.zeros(())
    pe = mead.positions(40, like)
    k = torch.arange(8, dtype=torch.float64)
    t = torch.arange(40, dtype=torch.float64)[:, None]
    expected = torch.stack([torch.sin(t * 10000 ** (-2 * k / 16)), torch.cos(t * 10000 ** (-2 * k / 16))], dim=-1).flatten(1)
    torch.testing.assert_close(pe.double(), expected, rtol=0, atol=2e-6)
    # The masks the FDM uses past upstream's 600 frames: ALiBi with period 30, slopes 2^-2k (4 heads) / 2^-k (8 heads).
    from talking_faces.adapters.faceformer_model import alignment_mask, biased_mask

    for heads, slopes in ((4, [2.0 ** (-2 * (h + 1)) for h in range(4)]), (8, [2.0 ** -(h + 1) for h in range(8)])):
        mask = biased_mask(heads, 650, 30)
        i, j = 640, torch.tensor([640, 611, 610, 3])
        closed_form = torch.tensor([[-s * math.floor((i - jj) / 30) for jj in j.tolist()] for s in slopes])
        torch.testing.assert_close(mask[:, i, j], closed_form.float(), rtol=0, atol=1e-7)
        assert torch.isinf(mask[:, 5, 6:]).all() and (mask[:, 5, 6:] < 0).all()
    assert torch.equal(alignment_mask(650, 650, 1), ~torch.eye(650, dtype=torch.bool))
    periodic = voca.positions(700, like)
    torch.testing.assert_close(periodic[630:660], periodic[:30], rtol=0, atol=0)
    torch.testing.assert_close(periodic[:30].double(), expected[:30], rtol=0, atol=2e-6)


def test_denoiser_runs_past_600_frames_with_rebuilt_masks():
    model = tiny_denoiser(True)
    frames = 650
    tokens = torch.randn(1, frames, 16)
    style, emotion = model.condition(torch.eye(25)[:1], torch.eye(7)[:1])
    x = torch.randn(1, frames * 4, 4)
    out = model(x, 500, tokens, style, emotion)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # Causality of the ALiBi target mask: frame 640 does not change frames before it.
    x2 = x.clone()
    x2[:, 640 * 4:] += 1.0
    torch.testing.assert_close(model(x2, 500, tokens, style, emotion)[:, : 640 * 4], out[:, : 640 * 4], rtol=0, atol=1e-5)


def test_audio_frame_counts():
    for mead, expected in ((True, lambda f: f // 2), (False, lambda f: int(f / 50 * 30))):
        model = tiny_denoiser(mead)
        for seconds in (1.0, 1.3):
            audio = torch.from_numpy(synthetic_speech(seconds))[None]
            f = (audio.shape[1] - 400) // 320 + 1
            assert model.audio_tokens(audio).shape == (1, expected(f), 16)


# ----- schedulers as LG-LDM uses them ----------------------------------------------------------
def test_one_ddpm_step_against_the_formula(schedule):
    t = 400
    x_t, x0 = torch.randn(1, 8, 4), torch.randn(1, 8, 4)
    out = AncestralDDPMScheduler(schedule, draw_at_last_step=False).step(x0, t, x_t, torch.Generator().manual_seed(2)).prev_sample
    z = torch.randn(1, 8, 4, generator=torch.Generator().manual_seed(2)).double()
    a, a_prev = alpha_bar(t), alpha_bar(t - 1)
    beta = 1 - a / a_prev
    mean = beta * math.sqrt(a_prev) / (1 - a) * x0.double() + (1 - a_prev) * math.sqrt(1 - beta) / (1 - a) * x_t.double()
    torch.testing.assert_close(out.double(), mean + math.sqrt(beta * (1 - a_prev) / (1 - a)) * z, rtol=1e-5, atol=1e-6)


def test_one_vocaset_ddim_step_against_the_formula(schedule):
    grid = vocaset_ddim_timesteps()
    assert grid[:3] == [999, 989, 979] and grid[-2:] == [19, 9] and len(grid) == 100
    scheduler = DDIMScheduler(schedule, eta=0.0)
    scheduler.set_timesteps(timesteps=grid)
    x_t, x0 = torch.randn(1, 8, 4), torch.randn(1, 8, 4)
    out = scheduler.step(x0, 19, x_t, torch.Generator().manual_seed(0)).prev_sample
    a, a_next = alpha_bar(19), alpha_bar(9)
    eps = (x_t.double() / math.sqrt(a) - x0.double()) / math.sqrt(1 / a - 1)
    # eps divides by sqrt(1/abar_19 - 1) ~ 0.03, which scales float32 rounding by ~30.
    torch.testing.assert_close(out.double(), math.sqrt(a_next) * x0.double() + math.sqrt(1 - a_next) * eps, rtol=1e-4, atol=1e-4)


# ----- the adapter -----------------------------------------------------------------------------
def test_default_samplers_draw_in_upstreams_order(mead_files, vocaset_files):
    audio = synthetic_speech(0.3)
    for (stage2, stage1), steps in ((mead_files, 999), (vocaset_files, 99)):
        adapter = load_adapter("lgldm", stage2, vqvae=stage1)
        generator = torch.Generator().manual_seed(7)
        offsets = adapter.sample(audio, None, generator)
        frames = offsets.shape[1]
        shape = (1, frames * 4, 4)
        reference = torch.Generator().manual_seed(7)
        for _ in range(1 + steps):  # the initial latent, then one draw per step (none at t = 0 / the final pair)
            torch.randn(shape, generator=reference)
        assert torch.equal(generator.get_state(), reference.get_state())
        assert offsets.shape == (1, frames, NUM_VERTICES * 3)


def test_same_seed_same_sample_and_styles(mead_files):
    aliases = LGLDMAdapter.from_checkpoint(mead_files[0], vqvae=mead_files[1]).conditioning
    assert aliases.parse("M003,surprise")[1].argmax().item() == 6 and not aliases.parse("M003")[1].any()
    adapter = LGLDMAdapter.from_checkpoint(mead_files[0], vqvae=mead_files[1], sampler="dpmpp", steps=5)
    audio = synthetic_speech(0.6)
    a = adapter.sample(audio, "M003,happy", torch.Generator().manual_seed(3))
    b = adapter.sample(audio, "M003,happy", torch.Generator().manual_seed(3))
    c = adapter.sample(audio, "M003,happy", torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, adapter.sample(audio, "M003,sad", torch.Generator().manual_seed(3)))
    assert torch.equal(adapter.sample(audio, "0,4", torch.Generator().manual_seed(3)), a)  # indices work too
    assert adapter.sample(audio, "M005,neutral", None, num_samples=2).shape[0] == 2
    with pytest.raises(TalkingFacesError, match="Unknown LG-LDM emotion 'joy'.*neutral"):
        adapter.sample(audio, "M003,joy")
    with pytest.raises(TalkingFacesError, match="Unknown LG-LDM speaker"):
        adapter.sample(audio, "W009,happy")
    with pytest.raises(TalkingFacesError, match="pass --sampler ddim or dpmpp"):
        LGLDMAdapter.from_checkpoint(mead_files[0], vqvae=mead_files[1], steps=10)
    with pytest.raises(TalkingFacesError, match="Ancestral DDPM runs every step"):
        LGLDMAdapter.from_checkpoint(mead_files[0], vqvae=mead_files[1], sampler="ddpm", steps=10)


def test_sequences_past_600_frames(vocaset_files):
    adapter = LGLDMAdapter.from_checkpoint(vocaset_files[0], vqvae=vocaset_files[1], sampler="dpmpp", steps=2)
    offsets = adapter.sample(synthetic_speech(20.5), "FaceTalk_170913_03279_TA")
    assert offsets.shape[1] == int(((20.5 * 16000 - 400) // 320 + 1) / 50 * 30) > 600
    assert torch.isfinite(offsets).all()
    with pytest.raises(TalkingFacesError, match="no emotion input"):
        adapter.sample(synthetic_speech(0.5), "5,happy")


def test_render_path_adds_exactly_the_au_emotion(vocaset_files, tmp_path):
    import soundfile

    from talking_faces.basis import AUBasis
    from talking_faces.emotion import parse_emotion
    from talking_faces.identity import Identity
    from talking_faces.pipeline import animate

    rng = np.random.default_rng(4)
    identity = Identity(rng.standard_normal((NUM_VERTICES, 3)).astype(np.float32), None, name="tiny")
    basis = AUBasis((rng.standard_normal((32, NUM_VERTICES, 3)) * 1e-3).astype(np.float32), identity.vertices, "test")
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, synthetic_speech(1.0), 16000)
    options = {"vqvae": vocaset_files[1], "sampler": "dpmpp", "steps": 3}
    animation = animate(wav, identity=identity, emotion="happy:0.7", model="lgldm", checkpoint=vocaset_files[0], style="5",
                        device="cpu", basis=basis, seed=5, model_options=options)
    adapter = LGLDMAdapter.from_checkpoint(vocaset_files[0], **options)
    speech = adapter.sample(synthetic_speech(1.0), "5", torch.Generator().manual_seed(5))[0].reshape(-1, NUM_VERTICES, 3).numpy()
    frames = animation.vertices.shape[0]
    speech = np.concatenate([speech, speech[-1:].repeat(frames - speech.shape[0], 0)])  # retime holds the last frame
    expression = np.einsum("tk,kvc->tvc", parse_emotion("happy:0.7").weights(frames, 30.0), basis.offsets)
    assert np.abs(animation.vertices - (identity.vertices + speech + expression)).max() <= 1e-6
    assert np.abs(expression).max() > 1e-4


def test_aligned_cross_attention_equals_the_full_decoder():
    model = tiny_denoiser(True)
    tokens = torch.randn(2, 40, 16)
    style, emotion = model.condition(torch.eye(25)[:2], torch.eye(7)[3:5])
    x = torch.randn(2, 40 * 4, 4)
    for t in (999, 3):
        assert torch.equal(model(x, t, tokens, style, emotion), model(x, t, tokens, style, emotion, reference=True))
