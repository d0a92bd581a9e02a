import numpy as np
import pytest
import torch

from talking_faces.basis import blend, basis_from_rows, load_aublendset
from talking_faces.compose import compose
from talking_faces.errors import TalkingFacesError

from conftest import SHARED_FIXTURES

FIXTURES = SHARED_FIXTURES


def _rows(num_vertices: int = 7, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    template = rng.normal(size=(num_vertices, 3)).astype(np.float32)
    targets = template + 0.01 * rng.normal(size=(32, num_vertices, 3)).astype(np.float32)
    return np.concatenate([template[None], targets])


def test_npy_layouts_give_target_minus_template(tmp_path):
    rows = _rows()
    flat, shaped = tmp_path / "flat.npy", tmp_path / "shaped.npy"
    np.save(flat, rows.reshape(33, -1))
    np.save(shaped, rows)
    for path in (flat, shaped):
        basis = load_aublendset(path)
        assert basis.offsets.shape == (32, 7, 3)
        np.testing.assert_allclose(basis.offsets, rows[1:] - rows[0], atol=0)
        np.testing.assert_array_equal(basis.template, rows[0])


def test_identity_folder_layout(tmp_path):
    rows = _rows()
    np.save(tmp_path / "template.npy", np.repeat(rows[0].reshape(1, -1), 2, axis=0))  # only row 0 is used
    np.save(tmp_path / "new_AU_vertice32.npy", rows[1:].reshape(32, -1))
    basis = load_aublendset(tmp_path)
    np.testing.assert_allclose(basis.offsets, rows[1:] - rows[0])
    np.testing.assert_allclose(basis.to_aublendset(), rows.reshape(33, -1), atol=1e-7)


def test_bad_layouts(tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((32, 21), np.float32))
    with pytest.raises(TalkingFacesError, match=r"\(33, V\*3\)"):
        load_aublendset(tmp_path / "wrong.npy")
    with pytest.raises(TalkingFacesError, match="not found"):
        load_aublendset(tmp_path / "missing.npy")
    (tmp_path / "folder").mkdir()
    with pytest.raises(TalkingFacesError, match="new_AU_vertice32.npy"):
        load_aublendset(tmp_path / "folder")
    (tmp_path / "corrupt.npy").write_bytes(b"not a numpy file")
    with pytest.raises(TalkingFacesError, match="Cannot read AU basis"):
        load_aublendset(tmp_path / "corrupt.npy")


def test_vertex_count_mismatch_is_explained():
    basis = basis_from_rows(_rows(7), "b.npy")
    basis.check_matches(7)
    with pytest.raises(TalkingFacesError, match="has 7 vertices but the identity has 9"):
        basis.check_matches(9)


def test_blend_is_the_weighted_sum():
    rng = np.random.default_rng(1)
    weights = torch.from_numpy(rng.random((4, 32)).astype(np.float32))
    offsets = torch.from_numpy(rng.normal(size=(32, 5, 3)).astype(np.float32))
    expected = sum(weights[:, k, None, None] * offsets[k] for k in range(32))
    torch.testing.assert_close(blend(weights, offsets), expected)


def test_compose_is_linear_with_zero_offset_at_zero_weight():
    rng = np.random.default_rng(2)
    neutral = torch.from_numpy(rng.normal(size=(5, 3)).astype(np.float32))
    speech = torch.from_numpy(rng.normal(size=(3, 5, 3)).astype(np.float32))
    offsets = torch.from_numpy(rng.normal(size=(32, 5, 3)).astype(np.float32))
    zero = torch.zeros(3, 32)
    torch.testing.assert_close(compose(neutral, speech, zero, offsets), neutral + speech)
    w = torch.zeros(3, 32)
    w[:, 4] = 0.7
    w[:, 9] = 0.7
    delta = compose(neutral, speech, w, offsets) - compose(neutral, speech, zero, offsets)
    torch.testing.assert_close(delta, (0.7 * (offsets[4] + offsets[9])).expand(3, 5, 3), atol=1e-6, rtol=0)
    # large offsets pass through unclamped
    torch.testing.assert_close(compose(neutral, 100 * speech, zero, offsets), neutral + 100 * speech)


def test_real_aublendset_sample_basis():
    path = FIXTURES / "aublendset_sample.npy"
    if not path.is_file():
        pytest.skip("shared fixture aublendset_sample.npy is absent")
    basis = load_aublendset(path)
    assert basis.offsets.shape == (32, 5023, 3)
    peak_mm = np.linalg.norm(basis.offsets, axis=2).max(axis=1) * 1000
    assert peak_mm[21] == pytest.approx(35.12, abs=0.05)  # AU27, mouth stretch
    assert np.all(peak_mm[[k for k in range(32) if k != 21]] < 13)
