"""Training and testing runs as a library: the run folder, OpenTAD's global-batch plan, and
:func:`run_training` / :func:`run_testing` wiring config, datasets, model and engine together. The command
lines (``adatad train|test``, ``tools/train.py``, ``tools/test.py``) are :mod:`adatad.commands.train` and
:mod:`adatad.commands.test`."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adatad.annotation_io import load_class_map
from adatad.config import ConfigError, dump_config
from adatad.cpu import ThreadGovernor, plan_threads
from adatad.data.annotations import AnnotationError, load_annotations
from adatad.data.resize import load_resize_annotations
from adatad.engine.batching import optimizer_steps_per_epoch, per_process_batch
from adatad.engine.builders import build_gpu_augment, build_loader, check_dataset
from adatad.engine.checkpoint import init_from_checkpoint, load_detector_checkpoint, resume_checkpoint
from adatad.engine.dist import cleanup, init_distributed
from adatad.engine.evaluate import make_evaluate_fn
from adatad.engine.logs import setup_logging, tensorboard_writer
from adatad.engine.train import Trainer
from adatad.models.detector import build_detector

logger = logging.getLogger("adatad")


def resolve_work_dir(cfg: dict, world_size: int, run_id: int, override: str | None = None) -> Path:
    """``exps/<dataset.name>/<config name>/gpu<N>_id<run>`` unless the config or the command line names one."""
    if override:
        return Path(override)
    if cfg["work_dir"]:
        return Path(cfg["work_dir"]) / f"gpu{world_size}_id{run_id}"
    return Path("exps") / cfg["dataset"]["name"] / cfg["_meta"]["config_name"] / f"gpu{world_size}_id{run_id}"


# ------------------------------------------------------------------------------------------- batch plan
@dataclass
class BatchPlan:
    """How a run batches, with OpenTAD's semantics: ``solver.train.batch_size`` is the global batch."""

    world_size: int
    per_process: int  # batch_size // world_size windows per forward pass on each process
    accumulate: int
    recipe_effective: int  # what the config file itself gives: batch_size x accumulate before --cfg-options

    @property
    def effective(self) -> int:
        return self.world_size * self.per_process * self.accumulate

    def describe(self) -> str:
        return f"{self.world_size} process(es) x batch {self.per_process} x accumulate {self.accumulate} = effective batch {self.effective}"


def batch_plan(cfg: dict, world_size: int) -> BatchPlan:
    """The plan for ``world_size`` processes; a global batch the world size does not divide is a ConfigError."""
    train = cfg["solver"]["train"]
    per = per_process_batch(cfg, "train", world_size)
    for split in ("val", "test"):
        per_process_batch(cfg, split, world_size)
    file_values = cfg["_meta"]["file_values"] if "_meta" in cfg else {}
    recipe = int(file_values.get("solver.train.batch_size", train["batch_size"])) * int(
        file_values.get("solver.train.accumulate", train["accumulate"])
    )
    return BatchPlan(world_size, per, int(train["accumulate"]), recipe)


def effective_batch_check(cfg: dict, world_size: int, keep: bool) -> str | None:
    """A note when the effective batch (global batch x accumulate) differs from the recipe's (the config file's
    own values, before ``--cfg-options``); with ``keep`` restore it by raising ``solver.train.accumulate``."""
    plan = batch_plan(cfg, world_size)
    if plan.effective == plan.recipe_effective:
        return None
    global_batch = plan.world_size * plan.per_process
    need = plan.recipe_effective / global_batch
    if keep:
        if need != int(need) or need < 1:
            raise ConfigError(
                f"--keep-effective-batch: the recipe's effective batch {plan.recipe_effective} is not a "
                f"multiple of the global batch {global_batch}; choose solver.train.batch_size so that it is"
            )
        cfg["solver"]["train"]["accumulate"] = int(need)
        return f"effective batch restored to {plan.recipe_effective}: {batch_plan(cfg, world_size).describe()} (--keep-effective-batch)"
    fix = (
        f"--keep-effective-batch (or --cfg-options solver.train.accumulate={int(need)})"
        if need == int(need) and need >= 1
        else "a batch size that divides it"
    )
    return (
        f"effective batch is {plan.effective} ({plan.describe()}) but this recipe's is {plan.recipe_effective}; "
        f"results (e.g. the seed's 69.03 mAP) may differ. To restore it use {fix}."
    )


def count_training_items(cfg: dict) -> int | None:
    """Training items per epoch (videos of the train subset with ground truth), or None when the annotation
    file cannot be read (a dry run must not need the data)."""
    d = cfg["dataset"]
    if not d["annotation_path"] or not Path(d["annotation_path"]).is_file() or not d["class_map"] or not Path(d["class_map"]).is_file():
        return None
    try:
        if d["sampling"] == "resize":  # whole videos: those keeping an instance after OpenTAD's filter_gt
            names = (d["annotation_path"], d["class_map"], d["train"]["subset_name"], d["window_size"], d["block_list"])
            return len(load_resize_annotations(*names, filter_gt=d["train"]["filter_gt"]))
        videos = load_annotations(d["annotation_path"], d["class_map"], d["train"]["subset_name"], block_list=d["block_list"], fps=d["fps"])
    except (AnnotationError, OSError, ValueError):
        return None
    return sum(1 for v in videos if len(v.segments) > 0)


def plan_text(cfg: dict, world_size: int, work_dir: Path) -> str:
    """The dry run's plan line: per-process batch, effective batch, optimizer steps per epoch, epochs, run folder."""
    plan = batch_plan(cfg, world_size)
    items = count_training_items(cfg)
    if items is None:
        steps = f"optimizer steps per epoch unknown (annotation file {cfg['dataset']['annotation_path']} not readable)"
    else:
        n = optimizer_steps_per_epoch(items, plan.world_size * plan.per_process, world_size, plan.accumulate)
        steps = f"{n} optimizer steps per epoch ({items} training videos)"
    epochs = cfg["workflow"]["end_epoch"] or cfg["scheduler"]["max_epoch"]
    return f"# plan: {plan.describe()}; {steps}; epochs {epochs}; run folder {work_dir}"


# --------------------------------------------------------------------------------------------- training
def run_training(
    cfg: dict,
    work_dir: Path,
    device: str | None = None,
    resume: str | None = None,
    not_eval: bool = False,
    deterministic: bool = True,
    note: str | None = None,
) -> dict:
    """Train (and validate) with a resolved config in ``work_dir``; returns the trainer's result dict."""
    info = init_distributed(device)
    setup_logging(work_dir, info.rank, "train")
    if note:
        logger.warning(note)
    if info.is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, work_dir / "config.py")
    logger.info(
        "adatad train: %s (rank %d/%d, device %s, torch %s)",
        cfg["_meta"]["config_file"],
        info.rank,
        info.world_size,
        info.device,
        torch.__version__,
    )
    governor = configure_cpu_threads()
    seed = int(cfg["solver"]["seed"])
    _seed_process(seed + info.rank, deterministic=cfg["solver"]["deterministic"] and deterministic)

    check_dataset(cfg, "train")
    train_loader = build_loader(cfg, "train", info, seed)
    logger.info("batch: %s; %d iterations per epoch on each process", batch_plan(cfg, info.world_size).describe(), len(train_loader))
    evaluate_fn = None
    if cfg["workflow"]["val_eval_interval"] > 0:
        evaluate_fn = make_evaluate_fn(cfg, "val", info, work_dir, not_eval=not_eval)
    class_names = load_class_map(cfg["dataset"]["class_map"])
    resume_path = resume_checkpoint(work_dir / "checkpoint", resume) if resume else None
    load_from = cfg["load_from"] if resume_path is None else None
    if resume_path is not None and cfg["load_from"]:
        logger.info("resuming from %s: load_from=%s is not used (it only starts a new run)", resume_path, cfg["load_from"])
    model = build_detector(cfg, load_pretrained=not load_from)
    if load_from:
        logger.info("load_from: initialising the detector from %s (fine-tuning: fresh optimizer and schedule, epoch 0; "
                    "model.backbone.pretrained is not read)", load_from)  # fmt: skip
        init_from_checkpoint(model, load_from, class_names)
    trainer = Trainer(
        cfg,
        model,
        train_loader,
        info,
        work_dir,
        evaluate_fn=evaluate_fn,
        tb_writer=tensorboard_writer(work_dir) if info.is_main else None,
        class_names=class_names,
        gpu_augment=build_gpu_augment(cfg, info.device) if cfg["dataset"]["transform"]["on_gpu"] else None,
        cpu_governor=governor,
    )
    if resume_path is not None:
        trainer.resume(resume_path)
    result = trainer.fit()
    if trainer.tb is not None:
        trainer.tb.close()
    if result.get("interrupted"):
        logger.warning(
            "training stopped at epoch %d iteration %d; resume with --resume (checkpoint: %s)",
            result["epoch"],
            result["iteration"],
            work_dir / "checkpoint" / "latest.pth",
        )
    else:
        logger.info("training finished; best average mAP %.2f; run folder %s", 100 * max(result.get("best_map", -1), 0), work_dir)
    cleanup()
    return result


def configure_cpu_threads() -> ThreadGovernor:
    """Set torch's intra-op threads to the free cores (see :mod:`adatad.cpu`), log the choice, and return the
    governor that re-checks them while training."""
    plan = plan_threads()
    torch.set_num_threads(plan.threads)
    logger.info(plan.describe())
    return ThreadGovernor(plan, torch.set_num_threads, log=logger.info)


def _seed_process(seed: int, deterministic: bool) -> None:
    """Seed the process's own RNGs (model initialisation, drop path, dropout). Data randomness does not use
    them: it comes from per-item seeds (see :mod:`adatad.engine.sampler`)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


# ---------------------------------------------------------------------------------------------- testing
def run_testing(cfg: dict, checkpoint: str | Path, work_dir: Path, device: str | None = None, not_eval: bool = False):
    """Sliding-window test of a checkpoint (adatad or OpenTAD); returns the mAP result on rank 0."""
    info = init_distributed(device)
    setup_logging(work_dir, info.rank, "test")
    configure_cpu_threads()
    _seed_process(int(cfg["solver"]["seed"]), deterministic=True)
    model = build_detector(cfg, load_pretrained=False)
    load_detector_checkpoint(model, checkpoint)
    model.to(info.device)
    evaluate = make_evaluate_fn(cfg, "test", info, work_dir, not_eval=not_eval)
    result = evaluate(model, None)
    cleanup()
    return result
