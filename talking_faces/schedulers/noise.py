"""Gaussian draws in a reproducible order, one generator per sample."""

from __future__ import annotations

from collections.abc import Sequence

import torch

Generators = torch.Generator | Sequence[torch.Generator] | None


def draw_noise(shape: Sequence[int], generator: Generators, device: torch.device | str = "cpu") -> torch.Tensor:
    """`torch.randn(shape)` drawn as upstream draws it.

    With one generator (or None: torch's global one) the whole tensor comes from it, as
    `torch.randn_like(x)` after `torch.manual_seed(S)` would. With a list of B generators, row b of
    the `(B, ...)` tensor is drawn from generator b alone, so each sample of a batch follows its own
    single-sample stream. Draws happen on the generator's device, then move to `device`.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return _randn(tuple(shape), generator, device)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
    return torch.cat([_randn((1, *shape[1:]), g, device) for g in generator])


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    source = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=source).to(device)
