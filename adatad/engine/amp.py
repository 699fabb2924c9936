"""Mixed precision: which autocast dtype a config asks for, and the autocast context.

OpenTAD's recipe (``solver.amp=True``) is fp16 autocast with a ``GradScaler``; that is ``solver.amp_dtype="fp16"``.
``"bf16"`` is an opt-in (no scaler needed). AMP runs on CUDA only: on a CPU the computation stays in float32.
"""

from __future__ import annotations

import contextlib

import torch

from adatad.config import ConfigError

_DTYPES = {"fp16": torch.float16, "float16": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def amp_settings(solver: dict, device: torch.device) -> tuple[bool, torch.dtype | None, bool]:
    """``solver``: the config's ``solver`` section. -> (enabled, dtype, use_grad_scaler)."""
    if not solver["amp"] or device.type != "cuda":
        return False, None, False
    want = solver["amp_dtype"]
    if want not in _DTYPES:
        raise ConfigError(f"solver.amp_dtype must be fp16 or bf16, got {want!r}")
    dtype = _DTYPES[want]
    return True, dtype, dtype == torch.float16


def autocast(device: torch.device, enabled: bool, dtype: torch.dtype | None):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def amp_context(solver: dict, device: torch.device):
    """The autocast context a config asks for on ``device`` (inference)."""
    enabled, dtype, _ = amp_settings(solver, device)
    return autocast(device, enabled, dtype)
