"""The ``adatad`` command line: train, test, eval, infer, prepare, demo, download, convert-config.

Heavy modules (torch, PyAV) are imported only inside the sub-command that needs them, so that
``adatad --help`` and ``adatad eval`` start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from adatad import __version__


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="path to a config file, e.g. configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: solver.seed of the config, 42)")
    p.add_argument("--id", type=int, default=0, help="repeat-experiment id: the run folder is gpu<N>_id<ID>")
    p.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        help="resume training: a checkpoint path, or no value for latest.pth of the run folder",
    )
    p.add_argument("--not_eval", "--not-eval", action="store_true", help="validate by inference only (skip mAP)")
    p.add_argument(
        "--disable_deterministic", "--disable-deterministic", action="store_true", help="allow non-deterministic kernels for speed"
    )
    p.add_argument("--work-dir", default=None, help="override the run folder")
    p.add_argument(
        "--cfg-options",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config values, e.g. solver.train.batch_size=1 (typed: ints, floats, bools, None, lists)",
    )
    p.add_argument(
        "--keep-effective-batch",
        action="store_true",
        help="raise solver.train.accumulate so that GPUs x batch x accumulate equals solver.reference_batch",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and the run plan, then exit")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")


def _add_test_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="path to a config file")
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint to test: an adatad .pth or an OpenTAD epoch_K.pth/best.pth (EMA weights preferred)"
    )
    p.add_argument("--id", type=int, default=0, help="repeat-experiment id of the run folder")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--not_eval", "--not-eval", action="store_true", help="only save predictions, skip mAP")
    p.add_argument("--work-dir", default=None, help="override the run folder")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config values")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adatad",
        description="End-to-end temporal action detection (AdaTAD: VideoMAE + TIA adapters + ActionFormer) in plain PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"adatad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train a detector from a config (also: tools/train.py, torchrun-ready)",
        description="Train a detector. Works under torchrun (reads LOCAL_RANK/RANK/WORLD_SIZE).",
    )
    _add_train_args(p)
    p = sub.add_parser(
        "test",
        help="test a checkpoint: sliding-window inference + mAP (also: tools/test.py)",
        description="Test a checkpoint on the config's test split and print the mAP table.",
    )
    _add_test_args(p)

    sub.add_parser("eval", help="compute detection mAP from a predictions JSON and an annotation JSON", add_help=False)
    sub.add_parser("prepare", help="prepare datasets: thumos, check, custom", add_help=False)
    sub.add_parser("infer", help="detect actions in any video(s) and draw timelines", add_help=False)
    sub.add_parser("download", help="download pretrained weights (videomae-s)", add_help=False)
    sub.add_parser("convert-config", help="convert an OpenTAD config file (with its _base_ chain) into an adatad config",
                   add_help=False)  # fmt: skip
    p = sub.add_parser(
        "demo",
        help="generate synthetic videos, train the tiny demo model, test it, print mAP",
        description="The main job on built-in synthetic data: generate (cached), train, test, plot.",
    )
    p.add_argument("--out", default="exps/demo", help="output folder (default: exps/demo)")
    p.add_argument("--data", default="demo_data", help="synthetic dataset folder (cached, default: demo_data)")
    p.add_argument("--config", default=None, help="demo config (default: configs/demo/demo_tiny.py)")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config values")
    return parser


def _delegate(module: str, func: str = "main") -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        import importlib

        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("adatad"):
                print(f"adatad: this command is not implemented yet ({module} is missing)", file=sys.stderr)
                return 2
            raise
        return int(getattr(mod, func)(argv) or 0)

    return run


# sub-commands whose argument parsing lives with their implementation
_DELEGATED = {
    "eval": _delegate("adatad.evaluation.cli"),
    "prepare": _delegate("adatad.data.prepare"),
    "infer": _delegate("adatad.engine.infer", "cli_main"),
    "download": _delegate("adatad.download"),
    "convert-config": _delegate("adatad.compat.convert_config"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        return _guard(lambda: _DELEGATED[argv[0]](argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "train":
        return _guard(lambda: _run("adatad.engine.runner", "train_main", args))
    if args.command == "test":
        return _guard(lambda: _run("adatad.engine.runner", "test_main", args))
    if args.command == "demo":
        return _guard(lambda: _run("adatad.engine.demo", "demo_main", args))
    parser.error(f"unknown command {args.command}")
    return 2


def _run(module: str, func: str, args: argparse.Namespace) -> int:
    import importlib

    return int(getattr(importlib.import_module(module), func)(args) or 0)


def _guard(fn: Callable[[], int]) -> int:
    """Turn errors a user can cause into one clear line instead of a traceback."""
    from adatad.config import ConfigError

    try:
        return fn()
    except ConfigError as exc:
        print(f"adatad: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adatad: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # user-facing errors carry a message; anything else keeps its traceback
        if getattr(exc, "user_facing", False) or type(exc).__name__ in _USER_ERRORS:
            print(f"adatad: error: {exc}", file=sys.stderr)
            return 1
        raise


# exception classes (by name, to avoid importing their modules here) whose message is the whole story
_USER_ERRORS = {
    "MissingVideosError",
    "VideoError",
    "WeightLoadError",
    "AnnotationError",
    "CheckpointError",
    "FileNotFoundError",
    "UnsupportedOpenTADConfig",
    "NonFiniteLossError",
}


if __name__ == "__main__":
    sys.exit(main())
