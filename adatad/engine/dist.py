"""torch.distributed set-up from torchrun's environment, and small collective helpers.

``torchrun`` sets ``LOCAL_RANK``, ``RANK`` and ``WORLD_SIZE``; a plain ``python tools/train.py`` run is a
world of one and creates no process group. NCCL on GPUs, gloo on CPU.

``ADATAD_DIST_TIMEOUT_S`` (default 1800) is how long a collective waits for a silent peer before failing; a peer
that dies outright is usually noticed at once (its connection closes) and torchrun then stops the other
processes and names the lost rank (``torchrun --max-restarts N`` with ``--resume auto`` starts them again from
the newest good checkpoint).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

_T = TypeVar("_T")


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> DistInfo:
    """Read torchrun's variables, pick the device, and create the process group when world size > 1."""
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    want = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was requested but no CUDA device is available; use --device cpu")
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        timeout = timedelta(seconds=float(os.environ.get("ADATAD_DIST_TIMEOUT_S") or 1800))
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        if restart == "0":
            dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=timeout)
        else:  # torchrun --max-restarts: keep this generation's keys apart from those the killed one left in the store
            from torch.distributed.distributed_c10d import PrefixStore
            from torch.distributed.rendezvous import rendezvous

            store, _, _ = next(rendezvous("env://", rank, world_size, timeout=timeout))
            store = PrefixStore(f"adatad_restart{restart}", store)
            dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=dev)


def all_gather_objects(obj: _T) -> list[_T]:
    """Gather one picklable object per rank into a list (rank order); a world of one returns ``[obj]``."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()  # every slot filled by all_gather_object
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(value: float) -> float:
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def broadcast_flag(flag: bool) -> bool:
    """True on every rank when any rank says True (used for a stop request)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return bool(t.item())


def ranks_with_flag(flag: bool) -> list[int]:
    """The ranks whose ``flag`` is True, known to every rank (one small all-reduce); a world of one: ``[0]`` or ``[]``."""
    if not (dist.is_available() and dist.is_initialized()):
        return [0] if flag else []
    t = torch.zeros(dist.get_world_size(), dtype=torch.int32)
    t[dist.get_rank()] = 1 if flag else 0
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return [r for r, v in enumerate(t.tolist()) if v]


def cleanup() -> None:
    """Wait for every rank (rank 0 may still be evaluating), then tear the process group down. Destroying it
    while a peer is still working can abort gloo's background threads ("terminate called without an active
    exception")."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
