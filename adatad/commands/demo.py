"""``adatad demo`` / ``make demo``: synthetic videos -> train the tiny AdaTAD -> test -> mAP table + timeline.

Runs the same code paths as the THUMOS recipe (dataset classes, decoding, windows, transforms, model,
losses, engine, post-processing, evaluator) with ``configs/demo/demo_tiny.py``.

The data follow the config: a whole-video config (``dataset.sampling="resize"``, e.g.
``configs/demo/anet_demo.py``: the ActivityNet recipe) gets the "ActivityNet-like" synthetic set instead
(:data:`ANET_DEMO_DATA`: ``generate_dataset(layout="anet")``, one class per video, 1-2 long actions, OpenTAD's
ActivityNet layout and a noisy CUHK-layout video classifier file), in ``demo_data_anet`` unless ``--data`` says.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger("adatad")

DEFAULT_CONFIG = "demo/demo_tiny.py"  # a shipped config (adatad.config.packaged_config)

# the synthetic dataset the demo trains and tests on (cached in --data)
DEMO_DATA: dict[str, Any] = dict(num_train=96, num_test=24, duration_range=(20.0, 32.0), fps=30.0, size=(64, 64), seed=0)


# the "ActivityNet-like" set of whole-video (resize) demo configs: configs/demo/anet_demo.py (32x32 px, 15 fps);
# tests/test_anet_demo.py trains on exactly this set
ANET_DEMO_DATA: dict[str, Any] = dict(
    num_train=32, num_test=16, duration_range=(10.0, 30.0), fps=15.0, size=(32, 32), seed=0, layout="anet"
)


def data_overrides(data_dir: Path, anet: bool = False) -> list[str]:
    """``--cfg-options`` pointing a demo config at the synthetic set in ``data_dir`` (``anet``: the ActivityNet-like
    layout, with the external classifier file)."""
    from adatad.data.synthetic import ANET_ANNOTATION, ANET_CLASSIFIER

    ann = data_dir / "annotations" / (ANET_ANNOTATION if anet else "anno.json")
    out = [
        f"dataset.annotation_path={ann}",
        f"dataset.class_map={data_dir / 'annotations' / 'category_idx.txt'}",
        f"dataset.data_path={data_dir / 'videos'}",
        f"evaluation.ground_truth_filename={ann}",
    ]
    if anet:
        out.append(f"post_processing.external_cls.path={data_dir / 'classifiers' / ANET_CLASSIFIER}")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="adatad demo", description="The main job on built-in synthetic data: generate (cached), train, test, plot."
    )
    p.add_argument("--out", default="exps/demo", help="output folder (default: exps/demo)")
    p.add_argument(
        "--data",
        default=None,
        help="synthetic dataset folder (cached; default: demo_data, or demo_data_anet for a whole-video config)",
    )
    p.add_argument(
        "--config",
        default=None,
        help="demo config (default: the shipped configs/demo/demo_tiny.py; configs/demo/anet_demo.py: ActivityNet recipe)",
    )
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE", help="override config values")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from adatad.config import load_config, packaged_config
    from adatad.data.synthetic import generate_dataset
    from adatad.engine.logs import setup_logging
    from adatad.engine.runner import run_testing, run_training

    t0 = time.time()
    setup_logging()
    config = Path(args.config) if args.config else packaged_config(DEFAULT_CONFIG)
    anet = load_config(config, list(args.cfg_options))["dataset"]["sampling"] == "resize"  # the data follow the config
    data_spec = ANET_DEMO_DATA if anet else DEMO_DATA
    data_dir = Path(args.data or ("demo_data_anet" if anet else "demo_data")).resolve()
    kind = "ActivityNet-like (whole-video config)" if anet else "THUMOS-like"
    logger.info("demo: %s synthetic dataset in %s (generated once, then cached; --data to change)", kind, data_dir)
    generate_dataset(data_dir, **data_spec, progress=True)
    t_data = time.time() - t0

    cfg = load_config(config, data_overrides(data_dir, anet) + list(args.cfg_options))
    work_dir = Path(args.out)
    result = run_training(cfg, work_dir, device="cpu" if not _cuda() else None)
    t_train = time.time() - t0 - t_data
    if result.get("interrupted"):
        return 130
    ckpt = work_dir / "checkpoint" / "latest.pth"
    test = run_testing(cfg, ckpt, work_dir, device="cpu" if not _cuda() else None)
    assert test is not None, "the demo is one process (rank 0), which always gets the mAP result"
    t_total = time.time() - t0

    from adatad.evaluation.detection_map import format_table

    print("\nDemo test split (synthetic videos), EMA weights of the last epoch:")
    print(format_table(test))
    timeline = _timeline(cfg, test["predictions"], work_dir)
    summary = {
        "average_mAP": test["average_mAP"],
        "mAP": dict(zip([f"{t:.2f}" for t in test["tiou_thresholds"]], test["mAP"])),
        "wall_time_s": {"data": round(t_data, 1), "train": round(t_train, 1), "total": round(t_total, 1)},
        "history": result.get("history"),
        "config": _relative(config),
        "data": data_spec | {"duration_range": list(data_spec["duration_range"]), "size": list(data_spec["size"])},
        "machine": f"{platform.platform()} ({platform.processor() or platform.machine()})",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "predictions": test["predictions"],
        "timeline": str(timeline),
    }
    (work_dir / "demo_summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\npredictions: {test['predictions']}\ntimeline:    {timeline}\nsummary:     {work_dir / 'demo_summary.json'}")
    print(f"wall time: {t_total / 60:.1f} min (data {t_data:.0f} s, training {t_train:.0f} s)")
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _timeline(cfg: dict, pred_path: str, work_dir: Path) -> Path:
    """Draw ground truth vs detections for the first test video."""
    from adatad.annotation_io import load_class_map, read_json
    from adatad.viz import plot_timeline

    ann = read_json(cfg["dataset"]["annotation_path"], "annotation file", key="database")["database"]
    classes = load_class_map(cfg["dataset"]["class_map"])
    preds = json.loads(Path(pred_path).read_text())["results"]
    subset = cfg["dataset"]["test"]["subset_name"]
    video = sorted(v for v, info in ann.items() if info["subset"] == subset)[0]
    out = work_dir / f"timeline_{video}.png"
    plot_timeline(
        out,
        ann[video]["duration"],
        classes,
        preds.get(video, []),
        ground_truth=[dict(a, score=1.0) for a in ann[video]["annotations"]],
        title=f"{video}: ground truth vs detections (score >= 0.1)",
        score_threshold=0.1,
    )
    return out


def _relative(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (records carry no machine paths)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
