"""The ``adatad`` command line. Every sub-command is a module with ``main(argv) -> exit status`` (its own
argument parser included), imported only when that command runs, so that ``adatad --help`` and each
``adatad COMMAND --help`` start without importing torch.

Errors a user can cause (:class:`adatad.errors.UserError`, missing files, and any other ``OSError`` naming a file:
a directory where a file should be, no permission) print one line, no traceback.
"""

from __future__ import annotations

import importlib
import sys

from adatad import __version__
from adatad.errors import UserError

# name -> (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("adatad.commands.train", "train a detector from a config (also: tools/train.py, torchrun-ready)"),
    "test": ("adatad.commands.test", "test a checkpoint: sliding-window inference + mAP (also: tools/test.py)"),
    "eval": ("adatad.evaluation.cli", "compute detection mAP from a predictions JSON and an annotation JSON"),
    "infer": ("adatad.commands.infer", "detect actions in any video(s) and draw timelines"),
    "report": ("adatad.commands.report", "one HTML page of a predictions file: mAP, error analysis, timelines + video player"),
    "prepare": ("adatad.data.prepare", "prepare datasets: thumos, anet, check, custom"),
    "demo": ("adatad.commands.demo", "generate synthetic videos, train the tiny demo model, test it, print mAP"),
    "download": ("adatad.download", "download pretrained weights (videomae-s)"),
    "convert-config": ("adatad.compat.convert_config", "convert an OpenTAD config file (with its _base_ chain) into an adatad config"),
}

USAGE = "usage: adatad [--version] [--help] COMMAND [ARGS]"


def _help() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        USAGE,
        "",
        "End-to-end temporal action detection (AdaTAD: VideoMAE + TIA adapters + ActionFormer) in plain PyTorch.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "'adatad COMMAND --help' describes a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_help())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"adatad {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"{USAGE}\nadatad: unknown command {argv[0]!r} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return run_guarded(lambda: int(module.main(argv[1:]) or 0))


def run_guarded(fn) -> int:
    """Run a command; an error the user caused becomes one clear line instead of a traceback."""
    try:
        return fn()
    except KeyboardInterrupt:
        print("adatad: interrupted", file=sys.stderr)
        return 130
    except (UserError, FileNotFoundError) as exc:
        from adatad.config import ConfigError

        kind = "config error" if isinstance(exc, ConfigError) else "error"
        print(f"adatad: {kind}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named: a bug or the machine; keep the traceback
            raise
        # a file the command was pointed at cannot be read or written (a directory, no permission, ...)
        print(f"adatad: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
