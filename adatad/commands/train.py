"""``adatad train`` / ``tools/train.py`` (torchrun-ready): train a detector from a config."""

from __future__ import annotations

import argparse
import os

DESCRIPTION = """\
Train a detector. Works plainly or under torchrun (reads LOCAL_RANK/RANK/WORLD_SIZE).
solver.train.batch_size is the GLOBAL batch, as in OpenTAD: each of N processes takes batch_size // N
windows per step (the seed's 2-GPU command: 1 window per GPU, effective batch 2)."""


def add_common_args(p: argparse.ArgumentParser) -> None:
    """Arguments ``adatad train`` and ``adatad test`` share."""
    p.add_argument("config", help="path to a config file, e.g. configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: solver.seed of the config, 42)")
    p.add_argument("--id", type=int, default=0, help="repeat-experiment id: the run folder is gpu<N>_id<ID>")
    p.add_argument("--work-dir", default=None, help="override the run folder")
    p.add_argument(
        "--cfg-options",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config values, e.g. solver.train.batch_size=1 (typed: ints, floats, bools, None, lists)",
    )
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adatad train", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        help="resume training: no value for latest.pth of the run folder (a corrupt one fails naming the newest good "
        "epoch_K.pth); 'auto' for the newest good checkpoint (latest.pth, else the newest good epoch_K.pth; none yet: "
        "start from the beginning); or a checkpoint path",
    )
    p.add_argument(
        "--load-from",
        "--load_from",
        dest="load_from",
        default=None,
        metavar="CKPT",
        help="fine-tune: start from this detector checkpoint's weights (adatad or OpenTAD; sets load_from). Not a resume: "
        "fresh optimizer and schedule from epoch 0; the classifier is re-initialised when the class set differs",
    )
    p.add_argument("--not_eval", "--not-eval", action="store_true", help="validate by inference only (skip mAP)")
    p.add_argument(
        "--disable_deterministic", "--disable-deterministic", action="store_true", help="allow non-deterministic kernels for speed"
    )
    p.add_argument(
        "--keep-effective-batch",
        action="store_true",
        help="raise solver.train.accumulate so that the effective batch (global batch x accumulate) equals "
        "the config file's own (the recipe's), e.g. after --cfg-options solver.train.batch_size=1",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and the run plan, then exit")
    return p


def load_run_config(args) -> dict:
    from adatad.config import load_config

    cfg = load_config(args.config, args.cfg_options)
    if args.seed is not None:
        cfg["solver"]["seed"] = args.seed
    if getattr(args, "load_from", None):
        cfg["load_from"] = args.load_from
    return cfg


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from adatad.config import dump_config
    from adatad.engine.runner import effective_batch_check, plan_text, resolve_work_dir

    cfg = load_run_config(args)
    world = world_size_from_env()
    note = effective_batch_check(cfg, world, args.keep_effective_batch)
    work_dir = resolve_work_dir(cfg, world, args.id, args.work_dir)
    if args.dry_run:
        print(dump_config(cfg))
        if note:
            print(note if note.startswith("effective batch restored") else f"WARNING: {note}")
        print(plan_text(cfg, world, work_dir))
        return 0

    from adatad.engine.runner import run_training

    result = run_training(
        cfg,
        work_dir,
        device=args.device,
        resume=args.resume,
        not_eval=args.not_eval,
        deterministic=not args.disable_deterministic,
        note=note,
    )
    return 130 if result.get("interrupted") else 0
