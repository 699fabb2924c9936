"""``adatad test`` / ``tools/test.py`` (torchrun-ready): sliding-window test of a checkpoint and the mAP table."""

from __future__ import annotations

import argparse
import math

from adatad.commands.train import add_common_args, load_run_config, world_size_from_env


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adatad test", description="Test a checkpoint on the config's test split and print the mAP table.")
    add_common_args(p)
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint to test: an adatad .pth or an OpenTAD epoch_K.pth/best.pth (EMA weights preferred)"
    )
    p.add_argument("--not_eval", "--not-eval", action="store_true", help="only save predictions, skip mAP")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from adatad.config import dump_config
    from adatad.engine.runner import resolve_work_dir

    cfg = load_run_config(args)
    world = world_size_from_env()
    work_dir = resolve_work_dir(cfg, world, args.id, args.work_dir)
    if args.dry_run:
        print(dump_config(cfg))
        return 0

    from adatad.engine.runner import run_testing

    result = run_testing(cfg, args.checkpoint, work_dir, device=args.device, not_eval=args.not_eval)
    if result is not None and result.get("average_mAP") is not None and not math.isfinite(result["average_mAP"]):
        return 1
    return 0
