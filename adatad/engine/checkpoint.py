"""Checkpoints: atomic writes, complete training state, safe loading (``weights_only=True``).

A training checkpoint holds ``state_dict`` (model), ``state_dict_ema``, ``optimizer``, ``scheduler``,
``scaler``, ``epoch`` (the epoch the state belongs to), ``iteration`` (batches of that epoch already done;
0 when the epoch is complete), ``global_step``, ``rng`` (python, numpy, torch and CUDA states), ``history``
and ``config`` (the resolved config). ``rpn_head.loss_normalizer`` lives in the state dicts.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adatad.compat.opentad import convert_opentad_state_dict
from adatad.errors import UserError


class CheckpointError(UserError, RuntimeError):
    """A checkpoint path or content that cannot be used."""


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def rng_state() -> dict:
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # the global MT19937's legacy tuple (numpy's stubs type a bare get_state() as dict)
    state = {
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(x):
    if isinstance(x, list):
        return tuple(_to_tuple(v) for v in x)
    return x


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; clear errors for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        hint = ""
        if path.parent.is_dir():
            found = sorted(p.name for p in path.parent.glob("*.pth"))
            hint = f" (that folder has: {', '.join(found[:10]) or 'no .pth files'})"
        raise CheckpointError(f"checkpoint not found: {path}{hint}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling refused or a corrupt file
        raise CheckpointError(
            f"cannot load checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]} "
            "(only tensors and plain python containers are accepted: weights_only=True)"
        ) from exc


# ------------------------------------------------------------------------------------ detector weights
def _detector_state_from(ckpt: dict, path) -> tuple[dict, str]:
    """Pick the weights to test with: EMA when present (like OpenTAD), else the model's."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint dictionary")
    for key in ("state_dict_ema", "state_dict", "model", "module"):
        if isinstance(ckpt.get(key), dict) and ckpt[key]:
            return ckpt[key], key
    if ckpt and all(hasattr(v, "shape") for v in ckpt.values()):
        return ckpt, "(plain state dict)"
    raise CheckpointError(f"{path}: no model weights found (keys: {', '.join(map(str, list(ckpt)[:10]))})")


def load_detector_checkpoint(model, path, prefer_ema: bool = True) -> dict:
    """Load an adatad or OpenTAD detector checkpoint into ``model`` (strict): DDP ``module.`` prefixes are
    stripped and OpenTAD names are mapped (``adatad.compat.opentad``). A missing or unexpected
    tensor, or a shape mismatch (a checkpoint of another architecture), fails naming the tensors."""

    ckpt = load_checkpoint(path)
    state, source = _detector_state_from(ckpt, path)
    if not prefer_ema and source == "state_dict_ema" and isinstance(ckpt.get("state_dict"), dict):
        state, source = ckpt["state_dict"], "state_dict"
    load_detector_state(model, state, f"{path} ({source})")
    logging.getLogger(__name__).info("loaded %d tensors from %s (%s)", len(state), path, source)
    return {"source": source, "num_tensors": len(state), "epoch": ckpt.get("epoch"), "class_names": ckpt.get("class_names")}


def load_detector_state(model, state: dict, what: str) -> None:
    """Strict load of an adatad or OpenTAD detector state dict, naming every missing/unexpected/mismatched tensor."""
    state = convert_opentad_state_dict(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): " + "; ".join(mismatched[:5]))
        if missing:
            parts.append(f"{len(missing)} missing tensor(s): " + ", ".join(missing[:8]))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s): " + ", ".join(unexpected[:8]))
        raise CheckpointError(
            f"checkpoint {what} does not fit this model/config — is it from another architecture or class count? " + " | ".join(parts)
        )
    for k, v in state.items():  # e.g. OpenTAD's int64 loss_normalizer in EMA copies
        if own[k].dtype != v.dtype:
            state[k] = v.to(own[k].dtype)
    model.load_state_dict(state, strict=True)
