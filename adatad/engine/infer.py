"""Sliding-window inference over the windows of a dataset loader (testing/validation, distributed), and the
time-based snippet plan of any video (:func:`snippet_plan`; any video file or tensor is run by
:class:`adatad.api.Detector`, which ``adatad infer`` uses)."""

from __future__ import annotations

import logging
from collections import defaultdict

import torch

from adatad.engine.amp import amp_context
from adatad.engine.dist import DistInfo, all_gather_objects
from adatad.models.classifier import ExternalClassifier, whole_video_results
from adatad.models.postprocess import detection_records, video_detections

logger = logging.getLogger("adatad")


@torch.no_grad()
def window_predictions(
    model, loader, cfg: dict, device: torch.device, progress: bool = True, desc: str = "test", bad_videos: dict | None = None
):
    """Run the model on every window of ``loader``; -> {video: [(candidates in grid units, meta), ...]}.
    Windows that failed to decode (``meta["decode_error"]``) are left out and their video goes into ``bad_videos``
    (``{video: first decode_error}``); the caller drops such videos entirely."""
    pp = cfg["post_processing"]
    model.eval()
    per_video: dict[str, list] = defaultdict(list)
    seen: set = set()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(loader), desc=desc, dynamic_ncols=True, leave=False)
    for batch in loader:
        inputs = batch["inputs"].to(device, non_blocking=True)
        masks = batch["masks"].to(device, non_blocking=True)
        with amp_context(cfg["solver"], device):
            candidates = model(inputs, masks, return_loss=False, pre_nms_thresh=pp["pre_nms_thresh"], pre_nms_topk=pp["pre_nms_topk"])
        for cand, meta in zip(candidates, batch["metas"]):
            if meta.get("decode_error") is not None:
                if bad_videos is not None:
                    err = meta["decode_error"]
                    old = bad_videos.get(meta["video_name"])
                    if old is None or (err["frame"] is not None and (old["frame"] is None or err["frame"] < old["frame"])):
                        bad_videos[meta["video_name"]] = err
                continue
            key = (meta["video_name"], int(meta["index"]))
            if key in seen:  # a distributed sampler pads with repeated windows (OpenTAD's own repeats are kept)
                continue
            seen.add(key)
            per_video[meta["video_name"]].append(({k: v.cpu() for k, v in cand.items()}, meta))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return per_video


def merge_windows(
    per_video: dict, cfg: dict, class_names: list[str], classifier: ExternalClassifier | None = None
) -> dict[str, list[dict]]:
    """Per video: windows -> seconds -> multiclass soft-NMS -> result-format detections. A whole-video item
    (``fps == -1``, :class:`adatad.data.resize.ResizeDataset`) takes OpenTAD's non-sliding path instead: NMS in
    grid units, seconds, then the external ``classifier`` (if any) labels the detections."""
    nms = cfg["post_processing"]["nms"]
    results: dict[str, list[dict]] = {}
    for video, windows in per_video.items():
        if windows[0][1].get("fps") == -1:
            cand, meta = windows[0]
            results[video] = whole_video_results(cand["segments"], cand["scores"], cand["labels"], meta, nms, classifier, class_names)
            continue
        windows = sorted(windows, key=lambda w: (int(w[1]["window_start_frame"]), int(w[1]["index"])))
        det = video_detections([w[0] for w in windows], [w[1] for w in windows], nms)
        results[video] = detection_records(det, class_names, video=video)
    return results


def predict_loader(
    model,
    loader,
    cfg: dict,
    info: DistInfo,
    class_names: list[str],
    bad_videos: dict | None = None,
    classifier: ExternalClassifier | None = None,
) -> dict[str, list[dict]]:
    """Distributed sliding-window inference; every rank runs its share, rank 0 merges and returns all videos.

    A video with a window that failed to decode is left out of the result (never scored as "no detections");
    on rank 0 ``bad_videos`` (if given) receives ``{video: {"path", "frame", "error", ...}}`` from every rank."""
    bad: dict = {}
    per_video = window_predictions(model, loader, cfg, info.device, progress=info.is_main, bad_videos=bad)
    gathered = all_gather_objects((dict(per_video), bad))
    if not info.is_main:
        return {}
    merged: dict[str, list] = defaultdict(list)
    seen: set = set()
    all_bad: dict = {}
    for _, part_bad in gathered:
        for video, err in part_bad.items():
            old = all_bad.get(video)
            if old is None or (err["frame"] is not None and (old["frame"] is None or err["frame"] < old["frame"])):
                all_bad[video] = err
    if bad_videos is not None:
        bad_videos.update(all_bad)
    for part, _ in gathered:
        for video, windows in part.items():
            if video in all_bad:
                continue
            for cand, meta in windows:
                key = (video, int(meta["index"]))
                if key not in seen:
                    seen.add(key)
                    merged[video].append((cand, meta))
    return merge_windows(merged, cfg, class_names, classifier)


# --------------------------------------------------------------------------------------------- any video
def snippet_plan(num_frames: int, fps: float, snippet_stride: int, reference_fps: float | None) -> tuple[list[int], float]:
    """Frames to read for each snippet of a video, sampled by time.

    The model was trained on snippets every ``snippet_stride`` frames of ``reference_fps`` video (THUMOS: 4 frames
    at 30 fps = 7.5 snippets/s). A video at another rate is sampled at the same times: snippet ``k`` reads the frame
    nearest to ``k * snippet_stride / reference_fps`` seconds. With ``reference_fps`` None (or equal to the
    video's rate) this is exactly the training rule ``arange(0, num_frames, snippet_stride)``.
    Returns (frame index per snippet, the frame rate in which window metas are expressed)."""
    if not reference_fps or abs(reference_fps - fps) < 1e-3:
        return list(range(0, num_frames, snippet_stride)), fps
    duration = num_frames / fps
    n_ref = max(1, int(round(duration * reference_fps)))
    frames = [min(num_frames - 1, int(round(k * snippet_stride / reference_fps * fps))) for k in range(0, -(-n_ref // snippet_stride))]
    return frames, reference_fps
