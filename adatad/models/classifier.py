"""External video-level classifiers fused with class-agnostic detections (ActivityNet-1.3 recipe).

A class-agnostic detector (1-class head) finds *where* actions are; a separate video classifier says *what*
the video shows. OpenTAD (``opentad/models/utils/post_processing/classifier.py``) copies every detection of a
video once per top-k class of that video and multiplies in the class score:

* ``CUHKANETClassifier`` (``cuhk_val_simp_7.json``: ``{"results": {video: [score per class]}, "class": [names]}``):
  classes ranked by ``np.argsort(-scores)``; copy ``k`` gets label ``class[k]`` and score ``score * cls_score[k]``.
* ``StandardClassifier`` (same layout; the class list under ``"class"`` or else ``"classes"``; InternVideo /
  InternVideo2 files): optional softmax of the video's scores (``apply_softmax``), classes ranked by
  ``np.argsort(scores)[::-1]``; copy ``k`` gets ``sqrt(score * cls_score[k])``.

Copies are concatenated class-rank-major (all detections with the top class, then all with the second, ...).
Video keys are the annotation ids (ActivityNet: without ``v_``), compared exactly as OpenTAD does.

Unlike OpenTAD (a ``KeyError`` deep in testing, or a silent mAP of 0 when names do not match), a missing or
malformed file, or a file without one of the test videos, stops with a :class:`ClassifierError` naming the
file and the video: :meth:`ExternalClassifier.check_videos` checks every test video before inference.

:func:`whole_video_results` is OpenTAD's non-sliding post-processing of one video (resize datasets): NMS in grid
units, seconds (``x / resize_length * duration``, clamped), the classifier (or the class map), rounding.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adatad.errors import UserError

from .postprocess import batched_nms, to_seconds

__all__ = ["CLASSIFIER_TYPES", "ClassifierError", "ExternalClassifier", "build_classifier", "whole_video_results"]

CLASSIFIER_TYPES = ("CUHKANETClassifier", "StandardClassifier")


class ClassifierError(UserError, ValueError):
    """The external classifier file is missing, malformed, or lacks a video."""


class ExternalClassifier:
    """Video-level class scores from a JSON file, fused with class-agnostic detections as OpenTAD does.

    Args:
        path: the JSON file ``{"results": {video: [one score per class]}, "class" | "classes": [names]}``.
        topk: how many classes each detection is copied to.
        kind: ``"CUHKANETClassifier"`` (score product) or ``"StandardClassifier"`` (square root of the product).
        apply_softmax: StandardClassifier only: softmax over the video's scores first.

    Attributes:
        classes: class names; the labels returned by :meth:`__call__` index into it.
    """

    def __init__(self, path: str | Path, topk: int = 1, kind: str = "CUHKANETClassifier", apply_softmax: bool = False):
        if kind not in CLASSIFIER_TYPES:
            raise ClassifierError(f"unknown external classifier type {kind!r}; adatad supports {list(CLASSIFIER_TYPES)}")
        if apply_softmax and kind != "StandardClassifier":
            raise ClassifierError(f"apply_softmax is an option of StandardClassifier only (got it for {kind})")
        self.path = Path(path)
        self.kind = kind
        self.apply_softmax = bool(apply_softmax)
        self.topk = int(topk)
        what = f"external classifier file {self.path} ({kind})"
        if not self.path.is_file():
            raise ClassifierError(f"{what} does not exist; the config's post_processing.external_cls.path must name it")
        try:
            data = json.loads(self.path.read_text(encoding="utf8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ClassifierError(f"{what} cannot be read as JSON: {e}") from None
        layout = '{"results": {video: [score per class]}, "class": [class names]}'
        if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
            raise ClassifierError(f'{what} has no "results" mapping; expected {layout}')
        names = data.get("class") if "class" in data or kind == "CUHKANETClassifier" else data.get("classes")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            key = '"class"' if kind == "CUHKANETClassifier" else '"class" or "classes"'
            raise ClassifierError(f"{what} needs {key}: a non-empty list of class names; expected {layout}")
        self.classes: list[str] = list(names)
        if not 1 <= self.topk <= len(self.classes):
            raise ClassifierError(f"{what}: topk={self.topk} must lie in [1, {len(self.classes)}] (the file's classes)")
        self._scores: dict[str, Any] = data["results"]
        self._checked: set[str] = set()

    def __repr__(self) -> str:
        return f"ExternalClassifier({str(self.path)!r}, topk={self.topk}, kind={self.kind!r}, {len(self.classes)} classes)"

    @property
    def videos(self) -> list[str]:
        return list(self._scores)

    def _video_scores(self, video: str) -> np.ndarray:
        """The video's class scores as float64 ``[C]``; ClassifierError naming the file and the video."""
        if video not in self._scores:
            alt = video[2:] if video.startswith("v_") else "v_" + video
            hint = f' (the file has "{alt}": its names differ by the "v_" prefix)' if alt in self._scores else ""
            raise ClassifierError(
                f"external classifier file {self.path} has no scores for video {video!r}{hint}; "
                "every test video needs a line in it (detections cannot be labelled without it)"
            )
        raw = self._scores[video]
        ok = isinstance(raw, list) and len(raw) == len(self.classes)
        ok = ok and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in raw)
        if not ok:
            got = f"{len(raw)} values" if isinstance(raw, list) else type(raw).__name__
            raise ClassifierError(
                f"external classifier file {self.path}: video {video!r} must have {len(self.classes)} finite scores "
                f"(one per class), got {got}"
            )
        return np.asarray(raw, dtype=np.float64)

    def check_videos(self, videos: Iterable[str]) -> None:
        """Raise :class:`ClassifierError` unless every video has valid scores (names the first bad one and the count)."""
        videos = list(videos)
        missing = [v for v in videos if v not in self._scores]
        if missing:
            try:
                self._video_scores(missing[0])
            except ClassifierError as e:
                more = f" ({len(missing)} of the {len(videos)} test videos are missing)" if len(missing) > 1 else ""
                raise ClassifierError(f"{e}{more}") from None
        for v in videos:
            self._video_scores(v)

    def ranked(self, video: str) -> tuple[np.ndarray, np.ndarray]:
        """``(class indices [topk], class scores [topk] float64)`` of ``video``, in OpenTAD's order."""
        s = self._video_scores(video)
        if self.kind == "CUHKANETClassifier":
            order = np.argsort(-s)  # numpy's default sort, as OpenTAD (tie order follows numpy)
        else:
            if self.apply_softmax:
                s = np.exp(s) / np.sum(np.exp(s))
            order = np.argsort(s)[::-1]
        order = order[: self.topk]
        return order, s[order]

    def __call__(self, video: str, segments: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``segments [N, 2]``, ``scores [N]`` (one video, class-agnostic) -> ``(segments [kN, 2], labels [kN]
        int64 into :attr:`classes`, scores [kN])``, copy-major, scores in the dtype of ``scores``."""
        if segments.shape[0] != scores.shape[0]:
            raise ValueError(f"video {video}: {segments.shape[0]} segments but {scores.shape[0]} scores")
        cls_idx, cls_score = self.ranked(video)
        n = scores.shape[0]
        new_scores = []
        for c in cls_score.tolist():
            fused = scores * c  # a Python float: computed in the dtype of `scores`, as OpenTAD's tensor * np.float64
            if self.kind == "StandardClassifier":  # numpy's float32 sqrt, as OpenTAD's np.sqrt on the tensor
                fused = torch.from_numpy(np.sqrt(fused.detach().cpu().numpy()))  # (torch.sqrt differs in the last bit)
            new_scores.append(fused)
        labels = torch.as_tensor(np.repeat(cls_idx, n), dtype=torch.long)
        return segments.repeat(len(cls_score), 1), labels, torch.cat(new_scores) if new_scores else scores[:0]


def build_classifier(cfg: Mapping[str, Any] | None) -> ExternalClassifier | None:
    """``post_processing.external_cls`` of an OpenTAD config (``dict(type=..., path=..., topk=...)``) -> classifier."""
    if cfg is None:
        return None
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    path = cfg.pop("path", None)
    if kind not in CLASSIFIER_TYPES:
        raise ClassifierError(f"post_processing.external_cls.type must be one of {list(CLASSIFIER_TYPES)}, got {kind!r}")
    if path is None:
        raise ClassifierError("post_processing.external_cls needs 'path' (the classifier's JSON file)")
    unknown = set(cfg) - {"topk", "apply_softmax"}
    if unknown:
        raise ClassifierError(f"post_processing.external_cls: unknown keys {sorted(unknown)} for {kind}")
    return ExternalClassifier(path, topk=int(cfg.get("topk", 1)), kind=kind, apply_softmax=bool(cfg.get("apply_softmax", False)))


def whole_video_results(
    segments: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    meta: Mapping[str, Any],
    nms_cfg: Mapping[str, Any] | None,
    classifier: ExternalClassifier | None = None,
    class_names: Sequence[str] | None = None,
) -> list[dict]:
    """OpenTAD's non-sliding post-processing of one video (``SingleStageDetector.post_processing`` with
    ``sliding_window=False``): candidates in grid units -> ``batched_nms(**nms_cfg)`` -> seconds (float32, clamped
    to ``[0, duration]``, unrounded) -> the external classifier (or ``class_names[label]``) -> records
    ``{"segment": [s, e], "label": name, "score": x}`` rounded to 2 / 4 decimals.
    """
    segs = torch.as_tensor(segments).float().reshape(-1, 2)
    sc = torch.as_tensor(scores).float().reshape(-1)
    lab = torch.as_tensor(labels).reshape(-1)
    if nms_cfg is not None:
        segs, sc, lab = batched_nms(segs, sc, lab, **dict(nms_cfg))
    secs = to_seconds(segs, meta, decimals=None)
    video = str(meta["video_name"])
    if classifier is not None:
        secs, lab, sc = classifier(video, secs, sc)
        names: Sequence[str] = classifier.classes
    elif class_names is not None:
        names = class_names
    else:
        raise ValueError("whole_video_results needs a classifier or class_names")
    return [
        {"segment": [round(a, 2), round(b, 2)], "label": names[int(k)], "score": round(s, 4)}
        for (a, b), k, s in zip(secs.tolist(), lab.tolist(), sc.tolist())
    ]
