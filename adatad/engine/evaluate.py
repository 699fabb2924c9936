"""Validation and testing: sliding-window inference on a split, the predictions file, and the mAP table."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from adatad.annotation_io import load_class_map
from adatad.data.resize import load_resize_annotations
from adatad.engine.builders import build_loader
from adatad.engine.dist import DistInfo
from adatad.engine.infer import predict_loader
from adatad.errors import UserError
from adatad.evaluation.detection_map import (
    evaluate_detections,
    format_table,
    load_ground_truth,
    load_predictions,
    read_blocked_videos,
)
from adatad.models.classifier import ExternalClassifier, build_classifier

logger = logging.getLogger("adatad")


def make_evaluate_fn(cfg: dict, split: str, info: DistInfo, work_dir: Path, not_eval: bool = False):
    """-> ``evaluate(model, epoch)``: sliding-window inference on ``split``, predictions JSON, mAP (rank 0).
    The loader is built on first use and kept (validation runs many times).

    A video that cannot be decoded fully is left out of the evaluation, its ground truth included (scoring it
    as "no detections" would silently lower the mAP): a warning names it and its first bad frame, the mAP table
    says over how many videos it was computed, and ``undecodable_videos`` in the result lists them."""
    state: dict = {"classifier": external_classifier(cfg, split)}  # checked now: before training, not at its first evaluation

    def evaluate(model, epoch):
        if "loader" not in state:
            state["loader"] = build_loader(cfg, split, info, int(cfg["solver"]["seed"]))
            state["classes"] = load_class_map(cfg["dataset"]["class_map"])
        bad: dict = {}
        results = predict_loader(model, state["loader"], cfg, info, state["classes"], bad_videos=bad, classifier=state["classifier"])
        if not info.is_main:
            return None
        n_videos = len(getattr(state["loader"].dataset, "videos", ())) or len(results) + len(bad)
        coverage = ""
        if bad:
            listing = ", ".join(f"{v} (frame {e['frame']})" for v, e in sorted(bad.items()))
            coverage = f"mAP over {n_videos - len(bad)} of {n_videos} videos: {len(bad)} could not be decoded ({listing})"
            for v, e in sorted(bad.items()):
                logger.warning(
                    "%s: video %s cannot be decoded from frame %s (%s): left out of the evaluation", split, v, e["frame"], e["path"]
                )
            if len(bad) == n_videos:
                raise UserError(f"no {split} video could be decoded: {listing}; run `adatad prepare check --decode`")
        tag = f"epoch_{epoch}" if epoch is not None else "test"
        pred_path = Path(work_dir) / f"predictions_{tag}.json"
        pred_path.write_text(json.dumps({"results": results}))
        logger.info("predictions: %s (%d videos)", pred_path, len(results))
        if not_eval:
            return {"average_mAP": None, "predictions": str(pred_path)}
        ecfg = cfg["evaluation"]
        # the split's own subset (THUMOS: val and test are both "validation", as OpenTAD evaluates)
        blocked = _blocked_videos(ecfg["blocked_videos"] or cfg["dataset"]["block_list"]) + sorted(bad)
        gt = load_ground_truth(
            ecfg["ground_truth_filename"] or cfg["dataset"]["annotation_path"],
            cfg["dataset"][split]["subset_name"],
            blocked_videos=blocked,
        )
        preds = load_predictions({"results": results}, state["classes"])
        result = evaluate_detections(gt, preds, tiou_thresholds=ecfg["tiou_thresholds"])
        table = format_table(result) + (f"\n{coverage}" if coverage else "")
        logger.info("%s mAP (%s):\n%s", split, tag, table)
        out = dict(result)
        out["predictions"] = str(pred_path)
        out["undecodable_videos"] = {v: {"path": e["path"], "frame": e["frame"]} for v, e in sorted(bad.items())}
        (Path(work_dir) / f"map_{tag}.json").write_text(json.dumps(out, indent=1, default=float))
        if epoch is None:  # the test run: an HTML report next to the predictions
            write_test_report(Path(work_dir) / "report.html", {"results": results}, cfg, split, state["classes"], blocked)
        return out

    return evaluate


def external_classifier(cfg: dict, split: str) -> ExternalClassifier | None:
    """``post_processing.external_cls`` -> the classifier, checked against every video of ``split`` whose file
    exists (a missing or malformed file, or a missing video, stops here, naming both). Only whole-video
    (``dataset.sampling="resize"``) testing fuses it, as in OpenTAD's ActivityNet configs."""
    ext = cfg["post_processing"].get("external_cls")
    if ext is None:
        return None
    if cfg["dataset"]["sampling"] != "resize":
        raise UserError(
            "post_processing.external_cls is applied to whole-video (resize) testing only; "
            'set dataset.sampling="resize" (ActivityNet) or remove post_processing.external_cls'
        )
    classifier = build_classifier(ext)
    assert classifier is not None
    d = cfg["dataset"]
    names = (d["annotation_path"], d["class_map"], d[split]["subset_name"], d["window_size"], d["block_list"])
    videos = load_resize_annotations(*names, d["data_path"], d["video_ext"], d["video_prefix"], test_mode=True)
    present = [v.name for v in videos if v.path is None or v.path.is_file()]
    classifier.check_videos(present)
    logger.info(
        "external classifier: %s, top-%d classes per video (%d %s videos checked)", classifier.path, classifier.topk, len(present), split
    )
    return classifier


def _blocked_videos(block_list) -> list[str]:
    if not block_list:
        return []
    if isinstance(block_list, (str, Path)):
        return read_blocked_videos(block_list)
    return list(block_list)


def write_test_report(
    out: Path, predictions: dict, cfg: dict, split: str, class_names: list[str], blocked: list[str] | None = None
) -> Path | None:
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
            blocked_videos=blocked if blocked is not None else cfg["dataset"]["block_list"],
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
