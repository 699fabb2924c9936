"""A deterministic, resumable distributed sampler.

Every epoch's order is a function of ``(seed, epoch)`` only, each rank takes a strided share, and a
run resumed mid-epoch skips the samples that were already consumed, so that a resumed run sees exactly
the batches an uninterrupted run would have seen. Each index is paired with a per-sample seed derived
from ``(seed, epoch, index)`` that the dataset uses for its random choices (truncation, augmentation),
which makes augmentation independent of worker count and scheduling.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Sampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + index * 104_729) % (2**31 - 1)


class ResumableSampler(Sampler):
    def __init__(self, size: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, batch_size: int = 1):
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.batch_size = batch_size
        self.epoch = 0
        self.skip = 0  # samples of this rank to skip (resume mid-epoch)

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch = epoch
        self.skip = skip_batches * self.batch_size

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 10_007 + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        per_rank = self.num_samples_per_rank()
        total = per_rank * self.world_size
        if total > len(order):  # pad by repeating (evaluation de-duplicates by window id)
            order = order + order[: total - len(order)] if order else order
        order = order[:total]
        return order[self.rank:total:self.world_size]

    def num_samples_per_rank(self) -> int:
        if self.drop_last:
            per_rank = self.size // self.world_size
            return (per_rank // self.batch_size) * self.batch_size
        return math.ceil(self.size / self.world_size)

    def __iter__(self):
        for idx in self._indices()[self.skip:]:
            yield (idx, sample_seed(self.seed, self.epoch, idx))

    def __len__(self) -> int:
        return max(0, self.num_samples_per_rank() - self.skip)
