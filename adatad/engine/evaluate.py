"""Validation and testing: sliding-window inference on a split, the predictions file, and the mAP table."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from adatad.annotation_io import load_class_map
from adatad.engine.builders import build_loader
from adatad.engine.dist import DistInfo
from adatad.engine.infer import predict_loader
from adatad.evaluation.detection_map import evaluate_detections, format_table, load_ground_truth, load_predictions

logger = logging.getLogger("adatad")


def make_evaluate_fn(cfg: dict, split: str, info: DistInfo, work_dir: Path, not_eval: bool = False):
    """-> ``evaluate(model, epoch)``: sliding-window inference on ``split``, predictions JSON, mAP (rank 0).
    The loader is built on first use and kept (validation runs many times)."""
    state: dict = {}

    def evaluate(model, epoch):
        if "loader" not in state:
            state["loader"] = build_loader(cfg, split, info, int(cfg["solver"]["seed"]))
            state["classes"] = load_class_map(cfg["dataset"]["class_map"])
        results = predict_loader(model, state["loader"], cfg, info, state["classes"])
        if not info.is_main:
            return None
        tag = f"epoch_{epoch}" if epoch is not None else "test"
        pred_path = Path(work_dir) / f"predictions_{tag}.json"
        pred_path.write_text(json.dumps({"results": results}))
        logger.info("predictions: %s (%d videos)", pred_path, len(results))
        if not_eval:
            return {"average_mAP": None, "predictions": str(pred_path)}
        ecfg = cfg["evaluation"]
        # the split's own subset (THUMOS: val and test are both "validation", as OpenTAD evaluates)
        gt = load_ground_truth(
            ecfg["ground_truth_filename"] or cfg["dataset"]["annotation_path"],
            cfg["dataset"][split]["subset_name"],
            blocked_videos=cfg["dataset"]["block_list"],
        )
        preds = load_predictions({"results": results}, state["classes"])
        result = evaluate_detections(gt, preds, tiou_thresholds=ecfg["tiou_thresholds"])
        logger.info("%s mAP (%s):\n%s", split, tag, format_table(result))
        out = dict(result)
        out["predictions"] = str(pred_path)
        (Path(work_dir) / f"map_{tag}.json").write_text(json.dumps(out, indent=1, default=float))
        if epoch is None:  # the test run: an HTML report next to the predictions
            write_test_report(Path(work_dir) / "report.html", {"results": results}, cfg, split, state["classes"])
        return out

    return evaluate


def write_test_report(out: Path, predictions: dict, cfg: dict, split: str, class_names: list[str]) -> Path | None:
    """``report.html`` (mAP, error analysis, timelines with the videos of ``dataset.data_path``) after a test run.
    A report that cannot be written is a warning: it never fails the test run."""
    try:
        from adatad.report import write_report

        ecfg = cfg["evaluation"]
        write_report(
            out,
            predictions,
            ecfg["ground_truth_filename"] or cfg["dataset"]["annotation_path"],
            subset=cfg["dataset"][split]["subset_name"],
            class_names=class_names,
            blocked_videos=cfg["dataset"]["block_list"],
            tiou_thresholds=ecfg["tiou_thresholds"],
            videos_dir=cfg["dataset"]["data_path"] if Path(cfg["dataset"]["data_path"] or "").is_dir() else None,
            title=f"adatad test: {out.parent.name}",
            sources=f"predictions: {out.parent / 'predictions_test.json'}",
        )
    except Exception as exc:  # the report is a by-product: log it, keep the run's result
        logger.warning("could not write the HTML report %s: %s: %s", out, type(exc).__name__, exc)
        return None
    logger.info("report: %s", out)
    return out
