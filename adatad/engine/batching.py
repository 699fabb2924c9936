"""OpenTAD's batch semantics (torch-free): ``solver.<split>.batch_size`` is the global batch of all processes."""

from __future__ import annotations

import math

from adatad.config import ConfigError


def per_process_batch(cfg: dict, split: str, world_size: int) -> int:
    """``solver.<split>.batch_size`` is the global batch, as in OpenTAD (``build_dataloader`` asserts that the world
    size divides it and gives each process ``batch_size // world_size``)."""
    key = "train" if split == "train" else split
    batch = int(cfg["solver"][key]["batch_size"])
    if batch < 1 or batch % world_size:
        lower, upper = (batch // world_size) * world_size, (batch // world_size + 1) * world_size
        choices = f"{lower} or {upper}" if lower >= world_size else f"{upper}"
        raise ConfigError(
            f"solver.{key}.batch_size={batch} is the global batch (as in OpenTAD) and must be a multiple of the "
            f"{world_size} processes: either set --cfg-options solver.{key}.batch_size={choices}, or run with a "
            f"number of processes that divides {batch}"
        )
    return batch // world_size


def optimizer_steps_per_epoch(num_items: int, global_batch: int, world_size: int, accumulate: int = 1) -> int:
    """OpenTAD's iterations per epoch, ``len(train_loader)`` on each rank (``ceil(floor(N / W) / (B / W))``),
    divided by the gradient-accumulation factor (rounded up: the last group of an epoch steps too)."""
    iterations = math.ceil((num_items // world_size) / (global_batch // world_size))
    return math.ceil(iterations / max(1, accumulate))
