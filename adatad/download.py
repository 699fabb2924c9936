"""``adatad download``: fetch pretrained backbone weights on explicit request, then load-check them.

Only ``videomae-s`` for now: OpenTAD's converted VideoMAE-S (Kinetics-400 pretrain + finetune), an mmaction2
style checkpoint on Google Drive. ``gdown`` is an optional dependency (``pip install 'adatad[download]'``).
mmaction2 publishes no VideoMAE-S release, so the file has no release hash: it is saved under the name the
seed's configs use, ``vit-small-p16_videomae-k400-pre_16x4x1_kinetics-400_my.pth`` (OpenTAD's name).

Usage: ``adatad download videomae-s [--out pretrained] [--force]`` or ``python -m adatad.download ...``.
Exit status 0 on success, 1 on download / check failure, 2 when ``gdown`` is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["MODELS", "main"]

#: name -> Google Drive file id, file name (as the configs name it), backbone preset
MODELS: dict[str, dict] = {
    "videomae-s": dict(
        drive_id="1BH5BZmdImaZesUfqtW23eBGC341Gui1D",
        filename="vit-small-p16_videomae-k400-pre_16x4x1_kinetics-400_my.pth",
        size="s",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adatad download", description="Download pretrained backbone weights.")
    p.add_argument("model", choices=sorted(MODELS), help="which weights")
    p.add_argument("--out", default="pretrained", help="target folder (default: pretrained)")
    p.add_argument("--force", action="store_true", help="download again even if the file exists")
    p.add_argument("--no-check", action="store_true", help="skip loading the file into the backbone afterwards")
    return p


def _err(msg: str) -> None:
    print(f"adatad download: {msg}", file=sys.stderr)


def _check(path: Path, size: str) -> int:
    from adatad.models.videomae import VideoMAEBackbone
    from adatad.models.weights import WeightLoadError, load_pretrained_backbone

    backbone = VideoMAEBackbone.from_size(size, adapter_index=None, mode="full", with_cp=False)
    try:
        report = load_pretrained_backbone(backbone, path)
    except WeightLoadError as exc:
        _err(f"the downloaded file does not load as a VideoMAE-{size.upper()} backbone: {exc}")
        return 1
    print(report.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    spec = MODELS[args.model]
    out = Path(args.out)
    target = out / spec["filename"]
    url = f"https://drive.google.com/uc?id={spec['drive_id']}"

    if target.is_file() and target.stat().st_size > 0 and not args.force:
        print(f"{target} already exists; not downloading (use --force to fetch again)")
    else:
        try:
            import gdown  # pyright: ignore[reportMissingImports]  # optional extra adatad[download], not always installed
        except ImportError:
            _err(
                "the optional dependency gdown is not installed: `pip install 'adatad[download]'` (or `pip install "
                f"gdown`), or download {url} by hand to {target}"
            )
            return 2
        out.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        print(f"downloading {args.model} from Google Drive ({url}) to {target}")
        try:
            result = gdown.download(id=spec["drive_id"], output=str(partial), quiet=False)
        except Exception as exc:  # gdown raises a variety of errors (network, quota, permission)
            result = None
            _err(f"download failed: {type(exc).__name__}: {exc}")
        if not result or not partial.is_file() or partial.stat().st_size == 0:
            partial.unlink(missing_ok=True)
            _err(
                f"could not download {url} (no network, or Google Drive's quota/permission page). "
                f"Download it in a browser and save it as {target}, then run this command again to check it"
            )
            return 1
        partial.replace(target)

    if args.no_check:
        return 0
    return _check(target, spec["size"])


if __name__ == "__main__":
    sys.exit(main())
