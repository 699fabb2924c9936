"""Optimizer parameter groups, the warmup + cosine schedule (stepped per iteration) and weight EMA."""

from __future__ import annotations

import copy
import logging
import math

import torch
from torch import nn

logger = logging.getLogger(__name__)

_DECAY_MODULES = (nn.Linear, nn.Conv1d, nn.Conv3d)


def detector_param_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
    """Detector (non-backbone) parameters split as in ActionFormer/OpenTAD: weights of Linear/Conv decay;
    biases, norm weights, learnable scales and position embeddings do not."""
    decay, no_decay = {}, {}
    for mod_name, module in model.named_modules():
        for p_name, param in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if full.startswith("backbone.") or not param.requires_grad:
                continue
            if p_name.endswith("weight") and isinstance(module, _DECAY_MODULES):
                decay[full] = param
            else:  # biases, norm weights, scales, position embeddings
                no_decay[full] = param
    groups = []
    if decay:
        groups.append(dict(params=[decay[k] for k in sorted(decay)], lr=lr, weight_decay=weight_decay, name="det_decay"))
    if no_decay:
        groups.append(dict(params=[no_decay[k] for k in sorted(no_decay)], lr=lr, weight_decay=0.0, name="det_no_decay"))
    return groups


def backbone_param_groups(backbone: nn.Module, cfg: dict) -> list[dict]:
    """Backbone groups as OpenTAD builds them: a parameter whose name contains a ``custom`` entry's ``name``
    gets that entry's lr/wd; otherwise one containing an ``exclude`` name is left out of the optimizer;
    the rest get ``lr``/``weight_decay``. Parameters that do not require grad are left out."""
    custom = list(cfg.get("custom") or [])
    exclude = list(cfg.get("exclude") or [])
    custom_params: list[list] = [[] for _ in custom]
    rest = []
    for name, param in backbone.named_parameters():
        if not param.requires_grad:
            continue
        full = f"backbone.{name}"
        for i, entry in enumerate(custom):
            if entry["name"] in full:
                custom_params[i].append(param)
                break
        else:
            if not any(ex in full for ex in exclude):
                rest.append(param)
    groups = []
    if rest:
        groups.append(dict(params=rest, lr=float(cfg.get("lr", 0.0)), weight_decay=float(cfg.get("weight_decay", 0.0)), name="backbone"))
    for entry, params in zip(custom, custom_params):
        if params:
            groups.append(
                dict(
                    params=params,
                    lr=float(entry["lr"]),
                    weight_decay=float(entry.get("weight_decay", 0.0)),
                    name=f"backbone_{entry['name']}",
                )
            )
    return groups


def build_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    """AdamW (or Adam/SGD) over backbone groups + detector groups; groups with lr 0 are dropped."""
    backbone = getattr(model, "backbone", None)
    groups = backbone_param_groups(backbone, cfg["backbone"]) if isinstance(backbone, nn.Module) else []
    if cfg["paramwise"]:
        groups += detector_param_groups(model, cfg["lr"], cfg["weight_decay"])
    else:
        params = [p for n, p in model.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
        groups.append(dict(params=params, lr=cfg["lr"], weight_decay=cfg["weight_decay"], name="det"))
    dropped = [g["name"] for g in groups if g["lr"] == 0]
    groups = [g for g in groups if g["lr"] > 0]
    if dropped:
        logger.info("optimizer: groups with lr 0 left out (frozen): %s", ", ".join(dropped))
    for g in groups:
        n = sum(p.numel() for p in g["params"])
        logger.info("optimizer group %-18s lr=%.1e wd=%.3g params=%d", g["name"], g["lr"], g["weight_decay"], n)
    kind = cfg["type"]
    if kind == "AdamW":
        return torch.optim.AdamW(groups, lr=cfg["lr"], betas=tuple(cfg["betas"]))
    if kind == "Adam":
        return torch.optim.Adam(groups, lr=cfg["lr"], betas=tuple(cfg["betas"]))
    if kind == "SGD":
        return torch.optim.SGD(groups, lr=cfg["lr"], momentum=0.9)
    raise ValueError(f"optimizer.type {kind!r} is not supported (AdamW, Adam, SGD)")


class WarmupCosineSchedule:
    """Linear warmup then cosine annealing, stepped once per iteration (OpenTAD's
    LinearWarmupCosineAnnealingLR in closed form): for step ``s`` with ``W`` warmup and ``M`` total steps,
    ``lr = start + s (base - start) / (W - 1)`` while ``s < W``, then
    ``eta_min + (base - eta_min) (1 + cos(pi (s - W) / (M - W))) / 2``."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, warmup_steps: int, max_steps: int, warmup_start_lr: float = 0.0, eta_min: float = 1e-8
    ):
        self.optimizer = optimizer
        self.warmup_steps = int(warmup_steps)
        self.max_steps = max(int(max_steps), self.warmup_steps + 1)
        self.warmup_start_lr = warmup_start_lr
        self.eta_min = eta_min
        self.base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        for g, base in zip(optimizer.param_groups, self.base_lrs):
            g["initial_lr"] = base
        self.last_step = 0
        self._apply()

    def lr_at(self, step: int, base: float) -> float:
        w, m = self.warmup_steps, self.max_steps
        if step < w:
            if w <= 1:
                return base
            return self.warmup_start_lr + step * (base - self.warmup_start_lr) / (w - 1)
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * (step - w) / (m - w))) / 2

    def _apply(self) -> None:
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = self.lr_at(self.last_step, base)

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {
            "last_step": self.last_step,
            "base_lrs": list(self.base_lrs),
            "warmup_steps": self.warmup_steps,
            "max_steps": self.max_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.last_step = int(state["last_step"])
        self.base_lrs = list(state["base_lrs"])
        self._apply()


class ModelEMA:
    """Exponential moving average of a model's state (parameters and float buffers), as OpenTAD's ModelEma:
    ``ema = decay * ema + (1 - decay) * model`` after every optimizer step; non-float buffers are copied."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for ema_v, v in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema_v.dtype.is_floating_point:
                ema_v.mul_(self.decay).add_(v.detach().to(ema_v.dtype), alpha=1 - self.decay)
            else:
                ema_v.copy_(v)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
