"""A deterministic, resumable distributed sampler with OpenTAD's (``DistributedSampler``'s) partitioning.

Every epoch's order is a function of ``(seed, epoch)`` only (``randperm`` from a generator seeded with
``seed + epoch``, as ``torch.utils.data.DistributedSampler``); rank ``r`` of ``W`` takes every ``W``-th index
starting at ``r``. With ``drop_last`` (training) each rank gets ``floor(N / W)`` samples, as OpenTAD's
training loader (``DistributedSampler(drop_last=True)``; its DataLoader keeps a last partial batch);
without it the order is padded by repetition to ``ceil(N / W)`` per rank (evaluation de-duplicates by
window id). A run resumed mid-epoch skips the samples already consumed, so it sees exactly the batches an
uninterrupted run would have seen.

Each index is yielded as ``(index, sample_seed(seed, epoch, index))``: the datasets draw every random choice
of that item from generators derived from this seed alone (see :mod:`adatad.data.datasets`). This is the
project's one seeding mechanism for data.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import Sampler

from adatad.data.datasets import sample_seed

__all__ = ["ResumableSampler", "sample_seed"]


class ResumableSampler(Sampler):
    def __init__(
        self, size: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False, batch_size: int = 1
    ):
        """``batch_size``: the per-process batch (to convert batches done into samples to skip on resume)."""
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
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        per_rank = self.num_samples_per_rank()
        total = per_rank * self.world_size
        if total > len(order) and order:  # pad by repeating
            order = (order * math.ceil(total / len(order)))[:total]
        return order[:total][self.rank : total : self.world_size]

    def num_samples_per_rank(self) -> int:
        if self.drop_last:
            return self.size // self.world_size
        return math.ceil(self.size / self.world_size)

    def num_batches_per_rank(self) -> int:
        """Iterations per epoch on each rank (the DataLoader keeps a last partial batch): OpenTAD's ``len(train_loader)``."""
        return math.ceil(self.num_samples_per_rank() / self.batch_size)

    def __iter__(self):
        for idx in self._indices()[self.skip :]:
            yield (idx, sample_seed(self.seed, self.epoch, idx))

    def __len__(self) -> int:
        return max(0, self.num_samples_per_rank() - self.skip)
