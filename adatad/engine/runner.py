"""``adatad train`` / ``tools/train.py`` and ``adatad test`` / ``tools/test.py``: config, run folder, logging,
datasets, model, training and testing wired together."""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

from adatad.config import dump_config, load_config

logger = logging.getLogger("adatad")


# ---------------------------------------------------------------------------------------- set-up helpers
def setup_logging(work_dir: Path | None = None, rank: int = 0, name: str = "train") -> None:
    root = logging.getLogger()
    if not getattr(root, "_adatad_console", False):
        root.setLevel(logging.INFO)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        if rank != 0:
            handler.setLevel(logging.WARNING)
        root.addHandler(handler)
        root._adatad_console = True  # type: ignore[attr-defined]
    if work_dir is not None and rank == 0:
        work_dir.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(work_dir / f"{name}.log")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)


def resolve_work_dir(cfg: dict, world_size: int, run_id: int, override: str | None = None) -> Path:
    """``exps/<dataset.name>/<config name>/gpu<N>_id<run>`` unless the config or the command line names one."""
    if override:
        return Path(override)
    if cfg.get("work_dir"):
        return Path(cfg["work_dir"]) / f"gpu{world_size}_id{run_id}"
    return Path("exps") / cfg["dataset"]["name"] / cfg["_meta"]["config_name"] / f"gpu{world_size}_id{run_id}"


def effective_batch_check(cfg: dict, world_size: int, keep: bool) -> str | None:
    """Warn (and with ``keep`` fix by accumulation) when GPUs x batch x accumulate != solver.reference_batch."""
    solver = cfg["solver"]
    batch, accum = solver["train"]["batch_size"], solver["train"].get("accumulate", 1)
    ref = solver.get("reference_batch")
    if not ref:
        return None
    effective = world_size * batch * accum
    if effective == ref:
        return None
    need = ref / (world_size * batch)
    if keep:
        if need != int(need) or need < 1:
            raise ValueError(f"--keep-effective-batch: reference batch {ref} is not a multiple of "
                             f"{world_size} process(es) x batch {batch}; choose solver.train.batch_size so that it is")
        solver["train"]["accumulate"] = int(need)
        return (f"effective batch restored to {ref}: {world_size} process(es) x batch {batch} x accumulate {int(need)} "
                "(--keep-effective-batch)")
    fix = (f"--keep-effective-batch (or --cfg-options solver.train.accumulate={int(need)})"
           if need == int(need) and need >= 1 else "a batch size that divides it")
    return (f"effective batch is {effective} ({world_size} process(es) x batch {batch} x accumulate {accum}) "
            f"but this recipe was tuned for {ref}; results (e.g. the seed's 69.03 mAP) may differ. "
            f"To restore it use {fix}.")


def _load_cfg(args) -> dict:
    cfg = load_config(args.config, args.cfg_options)
    if getattr(args, "seed", None) is not None:
        cfg["solver"]["seed"] = args.seed
    return cfg


def _world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def _class_names(cfg: dict) -> list[str]:
    from adatad.data.annotations import load_class_map

    return load_class_map(cfg["dataset"]["class_map"])


def _tb_writer(work_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(work_dir / "tensorboard"))
    except Exception as exc:  # tensorboard is optional at run time
        logger.warning("TensorBoard disabled: %s", exc)
        return None


# ----------------------------------------------------------------------------------------------- train
def train_main(args) -> int:
    cfg = _load_cfg(args)
    world = _world_size_from_env()
    note = effective_batch_check(cfg, world, args.keep_effective_batch)
    work_dir = resolve_work_dir(cfg, world, args.id, args.work_dir)
    if args.dry_run:
        print(dump_config(cfg))
        if note:
            print(note if note.startswith("effective batch restored") else f"WARNING: {note}")
        solver = cfg["solver"]
        print(f"# plan: {world} process(es) x batch {solver['train']['batch_size']} x accumulate "
              f"{solver['train'].get('accumulate', 1)}; epochs {cfg['workflow'].get('end_epoch') or cfg['scheduler']['max_epoch']}; "
              f"run folder {work_dir}")
        return 0

    return 130 if run_training(cfg, work_dir, device=args.device, resume=args.resume, not_eval=args.not_eval,
                        deterministic=not args.disable_deterministic, note=note).get("interrupted") else 0


def run_training(cfg: dict, work_dir: Path, device: str | None = None, resume: str | None = None, not_eval: bool = False,
          deterministic: bool = True, note: str | None = None) -> dict:
    """Train (and validate) with a resolved config in ``work_dir``; returns the trainer's result dict."""
    import torch

    from adatad.engine.builders import build_loader, check_dataset, make_evaluate_fn
    from adatad.engine.dist import cleanup, init_distributed
    from adatad.engine.train import Trainer
    from adatad.models.detector import build_detector

    info = init_distributed(device)
    setup_logging(work_dir, info.rank, "train")
    if note:
        logger.warning(note)
    if info.is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, work_dir / "config.py")
    logger.info("adatad train: %s (rank %d/%d, device %s, torch %s)", cfg["_meta"]["config_file"], info.rank,
                info.world_size, info.device, torch.__version__)
    seed = int(cfg["solver"]["seed"])
    _seed_everything(seed + info.rank, deterministic=cfg["solver"]["deterministic"] and deterministic)

    check_dataset(cfg, "train")
    train_loader = build_loader(cfg, "train", info, seed)
    evaluate_fn = None
    if cfg["workflow"]["val_eval_interval"] > 0:
        evaluate_fn = make_evaluate_fn(cfg, "val", info, work_dir, not_eval=not_eval)
    model = build_detector(cfg)
    trainer = Trainer(cfg, model, train_loader, info, work_dir, evaluate_fn=evaluate_fn,
                      tb_writer=_tb_writer(work_dir) if info.is_main else None)
    trainer.class_names = _class_names(cfg)
    if cfg["dataset"]["transform"].get("on_gpu"):
        from adatad.engine.builders import build_gpu_augment

        trainer.gpu_augment = build_gpu_augment(cfg, info.device)
    if resume:
        path = work_dir / "checkpoint" / "latest.pth" if resume == "latest" else Path(resume)
        trainer.resume(path)
    result = trainer.fit()
    if trainer.tb is not None:
        trainer.tb.close()
    if result.get("interrupted"):
        logger.warning("training stopped at epoch %d iteration %d; resume with --resume (checkpoint: %s)",
                       result["epoch"], result["iteration"], work_dir / "checkpoint" / "latest.pth")
    else:
        logger.info("training finished; best average mAP %.2f; run folder %s",
                    100 * max(result.get("best_map", -1), 0), work_dir)
    cleanup()
    return result


def _seed_everything(seed: int, deterministic: bool) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


# ------------------------------------------------------------------------------------------------ test
def test_main(args) -> int:
    cfg = _load_cfg(args)
    world = _world_size_from_env()
    work_dir = resolve_work_dir(cfg, world, args.id, args.work_dir)
    if args.dry_run:
        print(dump_config(cfg))
        return 0

    result = run_testing(cfg, args.checkpoint, work_dir, device=args.device, not_eval=args.not_eval)
    if result is not None and result.get("average_mAP") is not None and not math.isfinite(result["average_mAP"]):
        return 1
    return 0


def run_testing(cfg: dict, checkpoint: str | Path, work_dir: Path, device: str | None = None, not_eval: bool = False):
    """Sliding-window test of a checkpoint (adatad or OpenTAD); returns the mAP result on rank 0."""
    from adatad.engine.builders import make_evaluate_fn
    from adatad.engine.checkpoint import load_detector_checkpoint
    from adatad.engine.dist import cleanup, init_distributed
    from adatad.models.detector import build_detector

    info = init_distributed(device)
    setup_logging(work_dir, info.rank, "test")
    _seed_everything(int(cfg["solver"]["seed"]), deterministic=True)
    model = build_detector(cfg, load_pretrained=False)
    load_detector_checkpoint(model, checkpoint)
    model.to(info.device)
    evaluate = make_evaluate_fn(cfg, "test", info, work_dir, not_eval=not_eval)
    result = evaluate(model, None)
    cleanup()
    return result
