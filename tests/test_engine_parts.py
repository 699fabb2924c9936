"""Engine building blocks: parameter groups, the warmup+cosine schedule, EMA, the resumable sampler,
checkpoints (atomic, safe loading, RNG round trip) and the effective-batch rule."""

import pickle
import random

import numpy as np
import pytest
import torch
from torch import nn

from adatad.config import packaged_config
from adatad.engine.checkpoint import CheckpointError, load_checkpoint, rng_state, save_atomic, set_rng_state
from adatad.engine.optim import ModelEMA, WarmupCosineSchedule, backbone_param_groups, detector_param_groups
from adatad.engine.sampler import ResumableSampler


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
        self.backbone.adapter = nn.Linear(4, 4)
        self.proj = nn.Conv1d(4, 4, 3)
        self.norm = nn.LayerNorm(4)
        self.scale = nn.Parameter(torch.ones(1))


def test_detector_groups_decay_rules():
    m = Toy()
    groups = {g["name"]: g for g in detector_param_groups(m, lr=1e-4, weight_decay=0.05)}
    decay_ids = {id(p) for p in groups["det_decay"]["params"]}
    no_decay_ids = {id(p) for p in groups["det_no_decay"]["params"]}
    assert decay_ids == {id(m.proj.weight)}
    assert no_decay_ids == {id(m.proj.bias), id(m.norm.weight), id(m.norm.bias), id(m.scale)}
    assert groups["det_no_decay"]["weight_decay"] == 0.0 and groups["det_decay"]["weight_decay"] == 0.05


def test_backbone_groups_opentad_rules():
    m = Toy()
    cfg = dict(lr=0.0, weight_decay=0.0, custom=[dict(name="adapter", lr=2e-4, weight_decay=0.05)], exclude=["backbone"])
    groups = backbone_param_groups(m.backbone, cfg)
    # every backbone name contains "backbone": only the custom (adapter) group survives
    assert len(groups) == 1 and groups[0]["lr"] == 2e-4 and groups[0]["weight_decay"] == 0.05
    assert {id(p) for p in groups[0]["params"]} == {id(m.backbone.adapter.weight), id(m.backbone.adapter.bias)}
    groups = backbone_param_groups(m.backbone, dict(lr=1e-5, weight_decay=0.05))
    assert len(groups) == 1 and len(groups[0]["params"]) == 6


def test_schedule_matches_closed_form():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [p], "lr": 1e-3}])
    sch = WarmupCosineSchedule(opt, warmup_steps=5, max_steps=25, warmup_start_lr=0.0, eta_min=1e-8)
    lrs = [sch.get_last_lr()[0]]
    for _ in range(25):
        sch.step()
        lrs.append(sch.get_last_lr()[0])
    assert lrs[0] == 0.0
    assert lrs[2] == pytest.approx(2 * 1e-3 / 4)  # linear warmup over W-1 steps (OpenTAD's form)
    assert lrs[5] == pytest.approx(1e-3)
    assert lrs[15] == pytest.approx(1e-8 + (1e-3 - 1e-8) * 0.5)  # half-way through the cosine
    assert lrs[25] == pytest.approx(1e-8)
    state = sch.state_dict()
    sch2 = WarmupCosineSchedule(opt, warmup_steps=5, max_steps=25)
    sch2.load_state_dict(state)
    assert sch2.get_last_lr() == pytest.approx([1e-8])


def test_ema_update_formula():
    model = nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.9)
    before = ema.module.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.module.weight, 0.9 * before + 0.1 * model.weight)


def test_sampler_deterministic_resumable_and_sharded():
    s = ResumableSampler(10, shuffle=True, seed=3, batch_size=2, drop_last=True)
    s.set_epoch(4)
    full = list(s)
    s.set_epoch(4, skip_batches=2)
    assert list(s) == full[4:]
    s.set_epoch(5)
    assert [i for i, _ in s] != [i for i, _ in full]
    ranks = []
    for r in range(2):
        sr = ResumableSampler(10, shuffle=True, seed=3, rank=r, world_size=2, batch_size=2, drop_last=True)
        sr.set_epoch(4)
        ranks.append([i for i, _ in sr])
    assert not set(ranks[0]) & set(ranks[1]) and len(ranks[0]) == len(ranks[1]) == 5  # floor(10 / 2), as OpenTAD
    seeds = [sd for _, sd in full]
    assert len(set(seeds)) == len(seeds)


def test_checkpoint_atomic_and_rng_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    state = rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    path = save_atomic({"rng": state, "x": torch.arange(3)}, tmp_path / "c.pth")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pth"]  # no temp file left
    loaded = load_checkpoint(path)
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")


def seed_cfg(*overrides):
    from adatad.config import load_config

    return load_config(packaged_config("adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py"), list(overrides))


def test_global_batch_semantics_as_opentad():
    """solver.*.batch_size is the global batch: each of W processes takes batch_size // W (OpenTAD's
    build_dataloader), and a batch the world size does not divide is refused naming both numbers."""
    from adatad.config import ConfigError
    from adatad.engine.batching import optimizer_steps_per_epoch, per_process_batch
    from adatad.engine.runner import batch_plan

    cfg = seed_cfg()
    assert per_process_batch(cfg, "train", 2) == 1 and per_process_batch(cfg, "train", 1) == 2
    plan = batch_plan(cfg, 2)
    assert (plan.per_process, plan.effective, plan.recipe_effective) == (1, 2, 2)
    assert plan.describe() == "2 process(es) x batch 1 x accumulate 1 = effective batch 2"
    with pytest.raises(ConfigError, match=r"solver.train.batch_size=3 .* multiple of the 2 processes.*batch_size=2 or 4.*divides 3"):
        batch_plan(seed_cfg("solver.train.batch_size=3"), 2)
    # OpenTAD: DistributedSampler(drop_last=True) gives floor(N/W) items per rank; the DataLoader keeps a partial batch
    assert optimizer_steps_per_epoch(200, 2, 2) == 100  # THUMOS, the seed's 2 GPUs: 1 window per GPU
    assert optimizer_steps_per_epoch(200, 1, 1) == 200  # the seed's 1-GPU variant
    assert optimizer_steps_per_epoch(201, 4, 2) == 50 and optimizer_steps_per_epoch(203, 4, 2) == 51
    assert optimizer_steps_per_epoch(200, 1, 1, accumulate=2) == 100


def test_effective_batch_rule():
    from adatad.config import ConfigError
    from adatad.engine.runner import effective_batch_check

    assert effective_batch_check(seed_cfg(), 2, keep=False) is None  # the seed: 2 GPUs, global batch 2
    assert effective_batch_check(seed_cfg(), 1, keep=False) is None  # 1 process x batch 2 is the same effective batch
    note = effective_batch_check(seed_cfg("solver.train.batch_size=1"), 1, keep=False)
    assert "effective batch is 1" in note and "recipe's is 2" in note and "accumulate=2" in note
    cfg = seed_cfg("solver.train.batch_size=1")
    assert "restored to 2" in effective_batch_check(cfg, 1, keep=True)
    assert cfg["solver"]["train"]["accumulate"] == 2
    with pytest.raises(ConfigError, match="multiple"):
        effective_batch_check(seed_cfg("solver.train.batch_size=4"), 4, keep=True)


def test_sampler_partition_matches_distributed_sampler():
    """Same per-rank indices as torch's DistributedSampler (OpenTAD's sampler) for shuffle and drop_last."""
    from torch.utils.data.distributed import DistributedSampler

    from adatad.engine.sampler import ResumableSampler

    for size, world, drop_last, shuffle in [(10, 2, True, True), (11, 2, True, True), (11, 3, False, False), (7, 2, False, True)]:
        for rank in range(world):
            ours = ResumableSampler(size, shuffle=shuffle, seed=5, rank=rank, world_size=world, drop_last=drop_last)
            ref = DistributedSampler(list(range(size)), num_replicas=world, rank=rank, shuffle=shuffle, seed=5, drop_last=drop_last)
            for epoch in (0, 3):
                ours.set_epoch(epoch)
                ref.set_epoch(epoch)
                assert [i for i, _ in ours] == list(ref), (size, world, drop_last, shuffle, rank, epoch)
                assert len(ours) == len(ref)


class NaNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, inputs, masks, gt_segments, gt_labels, return_loss=True):
        cls = self.lin.weight.sum() * float("nan")
        return {"cls_loss": cls, "reg_loss": self.lin.bias.sum(), "cost": cls}


def test_non_finite_loss_stops_with_iteration_and_terms(tmp_path):
    from adatad.config import SCHEMA, _schema_defaults
    from adatad.engine.dist import DistInfo
    from adatad.engine.train import NonFiniteLossError, Trainer

    cfg = _schema_defaults(SCHEMA)
    cfg["solver"]["ema"] = False
    trainer = Trainer(cfg, NaNModel(), train_loader=[None] * 3, dist_info=DistInfo(), work_dir=tmp_path)
    batch = {
        "inputs": torch.zeros(1, 3, 2, 2, 2),
        "masks": torch.ones(1, 2, dtype=torch.bool),
        "gt_segments": [torch.zeros(0, 2)],
        "gt_labels": [torch.zeros(0, dtype=torch.long)],
    }
    with pytest.raises(NonFiniteLossError, match=r"epoch 4 iteration 7: cls_loss=nan, reg_loss=[-0-9.]+, cost=nan"):
        trainer._step(batch, 7, 10, 4)
