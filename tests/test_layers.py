"""Shared model pieces (adatad.models.layers) against independent oracles."""

import math

import numpy as np
import torch
from torch import nn

from adatad.models.layers import DropPath, count_parameters, drop_path, sinusoid_position_table


def test_sinusoid_table_matches_the_formula():
    n, d = 50, 12
    table = sinusoid_position_table(n, d)
    assert table.shape == (n, d) and table.dtype == torch.float32
    for p in (0, 1, 7, 49):
        for i in range(d):
            angle = p / 10000 ** (2 * (i // 2) / d)
            expected = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert abs(float(table[p, i]) - expected) < 1e-6, (p, i)


def test_drop_path_keeps_or_zeroes_whole_samples():
    x = torch.ones(4000, 3, 5)
    torch.manual_seed(0)
    y = drop_path(x, 0.25, training=True)
    per_sample = y.reshape(4000, -1)
    kept = per_sample[:, 0] > 0
    assert torch.all(per_sample[kept] == 1 / 0.75) and torch.all(per_sample[~kept] == 0)
    assert abs(kept.float().mean().item() - 0.75) < 0.03
    assert torch.equal(drop_path(x, 0.25, training=False), x)
    m = DropPath(0.5).eval()
    assert torch.equal(m(x), x) and "p=0.5" in repr(m)


def test_count_parameters():
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    m[0].weight.requires_grad_(False)
    m.register_buffer("b", torch.zeros(100))
    assert count_parameters(m) == {"trainable": 4 + 8 + 2, "frozen": 12}
    assert np.isclose(sum(count_parameters(m).values()), sum(p.numel() for p in m.parameters()))
