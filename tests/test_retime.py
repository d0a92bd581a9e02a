import torch

from talking_faces.retime import retime


def test_same_rate_same_length_is_identity():
    x = torch.randn(5, 4, 3)
    assert torch.equal(retime(x, 30, 30, 5), x)


def test_linear_resampling_and_hold():
    x = torch.arange(4, dtype=torch.float32).view(4, 1)  # values 0..3 at 25 fps
    y = retime(x, 25, 50, 9)
    torch.testing.assert_close(y.view(-1), torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3, 3, 3]))
    z = retime(x, 30, 30, 6)  # pads by holding the last frame
    torch.testing.assert_close(z.view(-1), torch.tensor([0.0, 1, 2, 3, 3, 3]))


def test_chunks_equal_the_whole_clip():
    x = torch.randn(23, 7, 3, dtype=torch.float64)
    whole = retime(x, 25, 30, 31)
    chunks = torch.cat([retime(x, 25, 30, min(8, 31 - s), start=s) for s in range(0, 31, 8)])
    assert torch.equal(chunks, whole)
    same_rate = torch.cat([retime(x, 25, 25, min(8, 26 - s), start=s) for s in range(0, 26, 8)])
    assert torch.equal(same_rate[:23], x) and torch.equal(same_rate[23:], x[-1:].expand(3, 7, 3))
