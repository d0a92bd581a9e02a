"""AU codebook and style predictor: official-format loading, quirks, per-sample style."""

import pytest
import torch

from talking_faces.aublendnet.checkpoints import (
    codebook_state_dict,
    load_codebook,
    load_predictor,
    predictor_state_dict,
    read_state_dict,
    save_checkpoint,
)
from talking_faces.aublendnet.layers import TokenAttention
from talking_faces.errors import TalkingFacesError

from test_aublendnet_helpers import HEADS, tiny_models, write_checkpoints

V = 20


@pytest.fixture(scope="module")
def model():
    return tiny_models(V)


@pytest.fixture()
def templates():
    torch.manual_seed(1)
    return 0.1 * torch.randn(3, 3 * V)


def test_official_key_counts_and_strict_round_trip(model, tmp_path, templates):
    stage2, stage1 = write_checkpoints(model, tmp_path)
    # 22 keys per layer + 15 (147 at 6 layers); 10 per block + 7 used stage-2 keys (87 at 8 blocks)
    assert len(read_state_dict(stage1, "s1")) == 22 * 2 + 15
    assert len(predictor_state_dict(model)) == 10 * 2 + 7
    loaded = load_predictor(stage2, stage1, num_heads=HEADS).eval()
    assert loaded.config == model.config and loaded.autoencoder.config == model.autoencoder.config
    with torch.no_grad():
        assert torch.equal(loaded(templates).rows, model(templates).rows)
    # leftovers accepted and dropped, never built
    assert not any(k.startswith(("vertice_map", "PPE", "transformer_decoder")) for k in loaded.state_dict())


def test_wrong_files_name_missing_and_unexpected_keys(model, tmp_path):
    state = codebook_state_dict(model.autoencoder)
    del state["quantize.embedding.weight"]
    state["encoder.extra.weight"] = torch.zeros(1)
    save_checkpoint(state, tmp_path / "bad.pth.tar")
    with pytest.raises(TalkingFacesError) as err:
        load_codebook(tmp_path / "bad.pth.tar", HEADS)
    message = str(err.value)
    assert "missing 1 key(s): quantize.embedding.weight" in message and "unexpected 1 key(s): encoder.extra.weight" in message
    stage2, stage1 = write_checkpoints(model, tmp_path)
    with pytest.raises(TalkingFacesError, match="stage-2 file: pass it as --aublendnet"):
        load_codebook(stage2, HEADS)
    with pytest.raises(TalkingFacesError, match="stage-1 file: pass it as --codebook"):
        load_predictor(stage1, stage1, HEADS)


def test_codebook_round_trip_through_codes(model):
    codebook = model.autoencoder
    torch.manual_seed(2)
    rows = 0.01 * torch.randn(2, 33, 3 * V)
    template = rows[:, 0]
    with torch.no_grad():
        out = codebook(rows, template)
        codes = codebook.quantize.embedding.weight[out.quantized.indices]
        assert out.quantized.indices.shape == (2, 33 * 4)
        # codebook vectors are fixed points of the quantizer, and decoding them gives the reconstruction
        assert torch.equal(codebook.quantize(codes).indices, out.quantized.indices)
        assert torch.allclose(codebook.decode(codes) + template[:, None], out.rows, atol=1e-6)


def test_each_sample_uses_its_own_style(model, templates):
    with torch.no_grad():
        batch = model(templates).rows
        singles = torch.cat([model(templates[i : i + 1]).rows for i in range(3)])
    assert torch.allclose(batch, singles, atol=1e-5)
    assert (batch[1] - batch[0]).abs().max() > 1e-2  # styles differ, so predictions do


def test_constant_position_vector_and_stage1_attention_scale():
    torch.manual_seed(3)
    codebook = tiny_models(V).autoencoder
    offset = codebook.encoder.encoder_pos_embedding.pe[0, 0]
    assert torch.equal(offset[0::2], torch.zeros(16)) and torch.equal(offset[1::2], torch.ones(16))
    attn = TokenAttention(32, HEADS)
    x = torch.randn(1, 5, 32)
    q, k, v = attn.to_qkv(x).split(32, dim=-1)
    heads = [torch.softmax(q[0, :, h * 16 : (h + 1) * 16] @ k[0, :, h * 16 : (h + 1) * 16].T / 32**0.5, -1) @ v[0, :, h * 16 : (h + 1) * 16]
             for h in range(HEADS)]
    assert torch.allclose(attn(x)[0], attn.to_out(torch.cat(heads, dim=-1)), atol=1e-6)


def test_zero_feat_map_predicts_decoded_zero_code(model, templates):
    fresh = tiny_models(V)
    torch.nn.init.zeros_(fresh.feat_map.weight)
    with torch.no_grad():
        zero = torch.zeros(1, 33 * 4, 8)
        expected = fresh.autoencoder.decode(fresh.autoencoder.quantize(zero).codes) + templates[:1, None]
        assert torch.allclose(fresh(templates[:1]).rows, expected, atol=1e-6)
