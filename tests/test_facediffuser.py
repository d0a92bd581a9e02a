"""FaceDiffuser: strict loading, the network against closed forms, seeded sampling, conditioning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from facediffuser_tiny import write_tiny_facediffuser

from talking_faces.adapters import SpeechRequest, load_adapter
from talking_faces.adapters.audio_encoders import normalize_audio
from talking_faces.adapters.facediffuser import VARIANTS, FaceDiffuserAdapter, condition_vector, load_facediffuser
from talking_faces.adapters.facediffuser_model import pair_audio_frames
from talking_faces.errors import TalkingFacesError
from talking_faces.identity import Identity
from talking_faces.schedulers import draw_noise, make_scheduler

AUDIO = (0.1 * np.sin(np.linspace(0, 300, 8000)) * np.hanning(8000)).astype(np.float32)  # 0.5 s


def identity(vertices: int = 20) -> Identity:
    return Identity(np.random.default_rng(1).normal(0, 0.1, (vertices, 3)).astype(np.float32), None, "tiny")


def request(**kw) -> SpeechRequest:
    return SpeechRequest(audio=kw.pop("audio", AUDIO), identity=kw.pop("identity", identity()), **kw)


@pytest.fixture
def vocaset_ckpt(tmp_path):
    return write_tiny_facediffuser(tmp_path / "fd.pth", "vocaset", diffusion_steps=40)


def test_official_state_dict_loads_strictly_and_wrong_files_get_one_line(tmp_path, vocaset_ckpt):
    model, variant = load_facediffuser(vocaset_ckpt)
    state = torch.load(vocaset_ckpt, weights_only=True)
    assert any(k.endswith("weight_g") for k in state)  # legacy names in the file, accepted
    assert variant.dataset == "vocaset" and model.config.diffusion_steps == 40 and model.config.latent_dim == 8
    broken = dict(state)
    broken.pop("gru.weight_hh_l1")
    broken["extra.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "bad.pth")
    (tmp_path / "bad.json").write_text((vocaset_ckpt.with_suffix(".json")).read_text())
    with pytest.raises(TalkingFacesError, match=r"missing 1 key\(s\): gru.weight_hh_l1; unexpected 1 key\(s\): extra.weight") as err:
        load_facediffuser(tmp_path / "bad.pth")
    assert "\n" not in str(err.value)
    torch.save({"vertice_map.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(TalkingFacesError, match="not a FaceDiffuser checkpoint"):
        load_facediffuser(tmp_path / "other.pth")


def test_full_size_vocaset_and_mead_are_told_apart_by_condition_width(tmp_path):
    voca = write_tiny_facediffuser(tmp_path / "v.pth", "vocaset", vertice_dim=15069, diffusion_steps=1000, sidecar=False)
    mead = write_tiny_facediffuser(tmp_path / "m.pth", "mead", vertice_dim=15069, diffusion_steps=1000, sidecar=False)
    a, b = FaceDiffuserAdapter.from_checkpoint(voca), FaceDiffuserAdapter.from_checkpoint(mead)
    assert (a.variant.dataset, a.fps, a.sampler, a.start, a.model.config.style_target) == ("vocaset", 30.0, "ddpm", None, "output")
    assert (b.variant.dataset, b.fps, b.sampler, b.start, b.model.config.style_target) == ("mead", 25.0, "ddim", 99, "audio")
    assert b.model.obj_vector.weight.shape == (8, 43)
    assert a.styles[5] == "FaceTalk_170913_03279_TA"


def test_denoiser_matches_closed_form(vocaset_ckpt):
    """Timestep one-hot, Conv1d along features with frames as batch, pairing, style product, template."""
    model, _ = load_facediffuser(vocaset_ckpt)
    g = torch.Generator().manual_seed(0)
    x, tokens = torch.randn(2, 5, 60, generator=g), torch.randn(1, 5, 8, generator=g)
    cond, template, t = torch.eye(8)[3], torch.randn(60, generator=g), 17
    got = model.denoise(x, t, tokens, cond, template)
    with torch.no_grad():
        w = dict(model.named_parameters())
        time = F.mish(w["time_mlp.0.weight"][:, t] + w["time_mlp.0.bias"])  # one-hot row picks column t
        lin = x @ w["input_projection.0.weight"].T + w["input_projection.0.bias"]  # (2, 5, 16)
        kernel = w["input_projection.1.weight"].reshape(9).numpy()
        conv = np.stack([[np.correlate(np.pad(f, 4), kernel, "valid") for f in sample] for sample in lin.numpy()])
        conv = torch.from_numpy(conv) + w["input_projection.1.bias"]
        pooled = conv.clamp(min=0).reshape(2, 5, 8, 2).amax(-1)
        h = torch.cat([tokens.expand(2, -1, -1), pooled, time.expand(2, 5, 8)], -1)
        out, _ = model.gru(F.layer_norm(h, (24,), w["norm_cond.weight"], w["norm_cond.bias"]))
        expected = (out * (w["obj_vector.weight"] @ cond)) @ w["final_layer.weight"].T + w["final_layer.bias"] + template
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_audio_pairing_closed_forms():
    hidden = torch.arange(11 * 2, dtype=torch.float32).reshape(1, 11, 2)
    # 25 fps: drop the odd frame, pair consecutive frames.
    paired = pair_audio_frames(hidden, 5, 25.0)
    assert paired.shape == (1, 5, 4) and torch.equal(paired[0, 1], torch.tensor([4.0, 5.0, 6.0, 7.0]))
    assert pair_audio_frames(hidden, 9, 25.0).shape == (1, 5, 4)  # audio shorter than 2T: motion is cut to Na // 2
    # 30 fps: linear interpolation with aligned corners to 2T frames, then pairs.
    paired = pair_audio_frames(hidden, 4, 30.0).reshape(8, 2)
    positions = torch.arange(8) * (10 / 7)
    torch.testing.assert_close(paired[:, 0], 2 * positions)  # feature 0 of frame i is 2i: linear in position


def test_frame_count_and_num_samples_and_seeds(vocaset_ckpt):
    adapter = FaceDiffuserAdapter.from_checkpoint(vocaset_ckpt)
    assert adapter.num_frames(32000) == 59 and adapter.num_frames(8000) == 14
    one = adapter.speak(request(generator=torch.Generator().manual_seed(4))).offsets
    again = adapter.speak(request(generator=torch.Generator().manual_seed(4))).offsets
    three = adapter.speak(request(generator=torch.Generator().manual_seed(4), num_samples=3)).offsets
    other = adapter.speak(request(generator=torch.Generator().manual_seed(5))).offsets
    assert one.shape == (1, 14, 20, 3) and three.shape == (3, 14, 20, 3)
    assert torch.equal(one, again)
    torch.testing.assert_close(three[0], one[0], rtol=0, atol=1e-6)  # batching the K samples keeps sample 0
    torch.testing.assert_close(three[1], other[0], rtol=0, atol=1e-6)  # sample k follows seed S + k
    assert (three[2] - three[0]).abs().max() > 1e-3
    unseeded = [adapter.speak(request()).offsets for _ in range(2)]
    assert not torch.equal(*unseeded)


def test_seeded_sample_follows_upstream_loop_with_hubert_every_step(vocaset_ckpt):
    """Upstream's way: torch.manual_seed(S), randn(1, T, V*3), then per step the full model (HuBERT
    included) and randn_like. The adapter (HuBERT once, a torch.Generator) gives the same sample."""
    adapter = FaceDiffuserAdapter.from_checkpoint(vocaset_ckpt)
    ident = identity()
    ours = adapter.speak(request(identity=ident, generator=torch.Generator().manual_seed(9), style="2")).offsets[0]
    model = adapter.model
    template = torch.from_numpy(ident.vertices.reshape(-1))
    audio = normalize_audio(AUDIO)
    cond = torch.eye(8)[2]
    scheduler = make_scheduler("ddpm", adapter.schedule)
    torch.manual_seed(9)
    with torch.no_grad():
        x = torch.randn(1, 14, 60)
        for t in scheduler.timesteps:
            x0 = model(x, int(t), audio, cond, template)
            x = scheduler.step(x0, t, x).prev_sample
    assert torch.equal(ours, (x - template).reshape(14, 20, 3))


def test_mead_conditioning_and_samplers(tmp_path):
    path = write_tiny_facediffuser(tmp_path / "m.pth", "mead", diffusion_steps=100)
    adapter = load_adapter("facediffuser", path)
    variant = VARIANTS["mead"]
    vector = condition_vector(variant, "M003,happy,3")
    assert vector.shape == (43,) and torch.nonzero(vector).flatten().tolist() == [0, 33, 42]
    assert torch.equal(condition_vector(variant, "0,1,3"), vector)
    with pytest.raises(TalkingFacesError, match="0=neutral, 1=happy"):
        condition_vector(variant, "M003,joyful,3")
    with pytest.raises(TalkingFacesError, match="M003"):
        condition_vector(variant, "X999,happy,3")
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    happy = adapter.speak(request(style="M003,happy,3", generator=gen())).offsets
    sad = adapter.speak(request(style="M003,sad,3", generator=gen())).offsets
    assert happy.shape == (1, 11, 20, 3) and (happy - sad).abs().max() > 1e-4
    # Upstream's DDIM from t = 99 is deterministic after its first draw: the seed's later draws do not matter.
    first = draw_noise((1, 11, 60), gen())
    assert not torch.equal(first, draw_noise((1, 11, 60), torch.Generator().manual_seed(2)))
    assert (adapter.speak(request(style="M003,happy,3", generator=torch.Generator().manual_seed(2))).offsets - happy).abs().max() > 1e-5
    fast = FaceDiffuserAdapter.from_checkpoint(path, sampler="dpmpp", steps=5)
    assert (fast.sampler, fast.start) == ("dpmpp", None)
    assert fast.speak(request(generator=gen())).offsets.shape == (1, 11, 20, 3)
    with pytest.raises(TalkingFacesError, match="--steps"):
        FaceDiffuserAdapter.from_checkpoint(path, sampler="ddim", steps=500)


def test_dpmpp_in_hidden_space_equals_stepping_on_vertices(vocaset_ckpt):
    adapter = FaceDiffuserAdapter.from_checkpoint(vocaset_ckpt, sampler="dpmpp", steps=8)
    ident = identity()
    fast = adapter.speak(request(identity=ident, generator=torch.Generator().manual_seed(3))).offsets[0]
    model, template = adapter.model, torch.from_numpy(ident.vertices.reshape(-1))
    cond = condition_vector(adapter.variant, None)
    tokens = model.audio_tokens(model.encode_audio(normalize_audio(AUDIO)), 14, cond)
    scheduler = make_scheduler("dpmpp", adapter.schedule, 8)
    x = draw_noise((1, 14, 60), torch.Generator().manual_seed(3))
    with torch.no_grad():
        for t in scheduler.timesteps:
            x = scheduler.step(model.denoise(x, int(t), tokens, cond, template), t, x).prev_sample
    torch.testing.assert_close(fast, (x - template).reshape(14, 20, 3), rtol=0, atol=1e-5)


def test_render_path_adds_exactly_the_emotion_offsets(tmp_path, shared_fixture):
    """`--emotion happy:0.7` on a FLAME identity: speech plus exactly 0.7 (B[AU6] + B[AU12])."""
    import soundfile

    from talking_faces.aus import au_index
    from talking_faces.basis import AUBasis
    from talking_faces.pipeline import animate

    sample = np.load(shared_fixture("aublendset_sample.npy"))
    template = sample[0].reshape(-1, 3)
    basis = AUBasis((sample[1:] - sample[:1]).reshape(32, -1, 3), template, "aublendset_sample")
    flame = Identity(template, None, "aublendset0")
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, AUDIO, 16000)
    ckpt = write_tiny_facediffuser(tmp_path / "m.pth", "mead", vertice_dim=15069, diffusion_steps=100, sidecar=False)
    common = dict(identity=flame, model="facediffuser", checkpoint=ckpt, basis=basis, seed=0, device="cpu",
                  model_options={"sampler": "ddim", "steps": 4})
    happy = animate(wav, emotion="happy:0.7", **common).vertices
    neutral = animate(wav, emotion="neutral", **common).vertices
    expected = 0.7 * (basis.offsets[au_index("AU6")] + basis.offsets[au_index("AU12")])
    np.testing.assert_allclose(happy - neutral, np.broadcast_to(expected, happy.shape), atol=2e-6)
    assert np.abs(neutral - template).max() > 1e-4  # the speech itself moves the face
