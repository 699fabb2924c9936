"""adatad as a library: :class:`Detector` (a trained checkpoint that detects actions in videos) and
:class:`Detections` (one video's result, with JSON / CSV / SRT / WebVTT writers).

    from adatad import Detector

    detector = Detector.from_checkpoint("exps/.../best.pth")  # the checkpoint's own config and class names
    dets = detector("match.mp4")                               # or a uint8 tensor [T, H, W, 3] with fps=...
    print(dets.to_srt())
    for dets in detector.run(["a.mp4", "b.mp4"], batch_windows=8):  # windows of several videos per forward pass
        dets.to_json(f"{dets.video}.json")

Layering: this module sits between the command line (``adatad infer`` is a thin layer over it) and the engine.
A :class:`Detector` owns everything it uses (model, config, transform, device): no process group, no module-level
caches and no global RNG, so several detectors live in one process and each gives what it gives alone.

Sampling: snippets are taken by time (:func:`adatad.engine.infer.snippet_plan`), sliding windows as in testing
(``dataset.test.window_overlap_ratio``), each video decoded once, forward, with its windows cut from memory
(:func:`adatad.data.stream.stream_windows`), windows merged per video and soft-NMS'd as ``adatad test`` does
(:func:`adatad.models.postprocess.video_detections`). With ``dataset.scale_factor`` s > 1 a window of ``window_size``
snippets reads ``window_size x s`` frames on the finer grid (every ``snippet_stride / s``-th frame), as
:class:`adatad.data.datasets.SlidingWindowDataset` does.

Whole-video models (``dataset.sampling="resize"``, the ActivityNet recipes): each video is sampled uniformly to
``window_size x scale_factor`` frames (:func:`adatad.data.resize.resize_frame_indices`, as
:class:`adatad.data.resize.ResizeDataset`), one forward pass, and OpenTAD's non-sliding post-processing
(:func:`adatad.models.classifier.whole_video_results`), with the external video classifier when the config has
``post_processing.external_cls``. That classifier knows only the videos in its file: the video is looked up by its
name (the file name without extension and without ``dataset.video_prefix``, e.g. ``v_X.mp4`` -> ``X``), and a
video it lacks stops with a :class:`adatad.models.classifier.ClassifierError`. Seconds come from the decoder's
duration (frames / fps), where ``adatad test`` uses the annotation file's (equal for well-probed annotations).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adatad.annotation_io import load_class_map
from adatad.config import load_config, resolve_config
from adatad.data.resize import resize_frame_indices
from adatad.data.stream import stream_windows
from adatad.data.video import VideoError, VideoReader
from adatad.data.windows import sliding_windows
from adatad.engine.amp import amp_context
from adatad.engine.builders import build_test_transform
from adatad.engine.checkpoint import CheckpointError, load_checkpoint, load_detector_checkpoint
from adatad.engine.infer import snippet_plan
from adatad.errors import UserError
from adatad.models.classifier import ClassifierError, ExternalClassifier, build_classifier, whole_video_results
from adatad.models.detector import build_detector
from adatad.models.postprocess import detection_records, video_detections

__all__ = ["Detector", "Detections", "detector_config", "format_timestamp"]

logger = logging.getLogger("adatad")

#: video facts every :class:`Detections` carries (``Detections.info``)
FACTS = ("fps", "num_frames", "duration", "width", "height", "num_windows", "num_snippets")


# -------------------------------------------------------------------------------------------------- results
def _num(x: float) -> float:
    """A plain float with ``-0.0`` (OpenTAD's ``segments[segments <= 0] *= 0``) turned into ``0.0``."""
    return float(x) + 0.0


def format_timestamp(seconds: float, sep: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT; ``sep="."`` for WebVTT's ``HH:MM:SS.mmm``), rounded to the millisecond, never negative."""
    ms = max(0, int(round(float(seconds) * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _write(text: str, path: str | Path | None) -> str:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    return text


@dataclass
class Detections:
    """One video's detections: ``segments`` ``[(start_s, end_s), ...]`` in seconds, ``labels`` (class names) and
    ``scores``, highest score first (soft-NMS order). ``info``: the video's facts (:data:`FACTS`); ``source``: the
    file (None for a tensor). Numbers are plain floats, segments rounded to 2 decimals and scores to 4 (as
    ``adatad test``), ``-0.0`` written ``0.0``."""

    video: str
    segments: list[tuple[float, float]]
    labels: list[str]
    scores: list[float]
    info: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @classmethod
    def from_records(cls, video: str, records: Sequence[dict], info: dict | None = None, source: str | None = None) -> Detections:
        """From ``[{"segment": [s, e], "label": name, "score": x}, ...]`` (the predictions-file format)."""
        return cls(
            video=video,
            segments=[(_num(r["segment"][0]), _num(r["segment"][1])) for r in records],
            labels=[str(r["label"]) for r in records],
            scores=[_num(r["score"]) for r in records],
            info=dict(info or {}),
            source=source,
        )

    def __len__(self) -> int:
        return len(self.scores)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records())

    def __repr__(self) -> str:
        return f"Detections({self.video!r}, {len(self)} detections, duration={self.info.get('duration')})"

    @property
    def fps(self) -> float | None:
        return self.info.get("fps")

    @property
    def duration(self) -> float | None:
        return self.info.get("duration")

    def records(self) -> list[dict]:
        """``[{"segment": [s, e], "label": name, "score": x}, ...]`` (the predictions-file format)."""
        return [{"segment": [s, e], "label": lab, "score": sc} for (s, e), lab, sc in zip(self.segments, self.labels, self.scores)]

    def above(self, min_score: float) -> Detections:
        """The detections with ``score >= min_score``."""
        keep = [r for r in self.records() if r["score"] >= min_score]
        return Detections.from_records(self.video, keep, self.info, self.source)

    def active_at(self, t: float) -> list[dict]:
        """The detections whose segment holds time ``t`` (``start <= t < end``), highest score first."""
        return [r for r in self.records() if r["segment"][0] <= t < r["segment"][1]]

    def _by_start(self) -> list[dict]:
        return sorted(self.records(), key=lambda r: (r["segment"][0], r["segment"][1], -r["score"], r["label"]))

    def to_dict(self) -> dict:
        return {"video": self.video, **self.info, "detections": self.records()}

    def to_json(self, path: str | Path | None = None, indent: int | None = 1) -> str:
        """``{"video", <info>, "detections": [...]}`` as JSON; written to ``path`` when given."""
        return _write(json.dumps(self.to_dict(), indent=indent), path)

    def to_csv(self, path: str | Path | None = None) -> str:
        """``start,end,label,score`` rows (seconds with 2 decimals, score with 4), highest score first."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start", "end", "label", "score"])
        for (s, e), lab, sc in zip(self.segments, self.labels, self.scores):
            w.writerow([f"{s:.2f}", f"{e:.2f}", lab, f"{sc:.4f}"])
        return _write(buf.getvalue(), path)

    def _cues(self, sep: str) -> list[str]:
        return [
            f"{i}\n{format_timestamp(r['segment'][0], sep)} --> {format_timestamp(r['segment'][1], sep)}\n{r['label']} {r['score']:.2f}\n"
            for i, r in enumerate(self._by_start(), 1)
        ]

    def to_srt(self, path: str | Path | None = None) -> str:
        """SubRip subtitles: one cue per detection (``label score``), sorted by start, ``HH:MM:SS,mmm`` times."""
        return _write("\n".join(self._cues(",")), path)

    def to_vtt(self, path: str | Path | None = None) -> str:
        """WebVTT subtitles: as :meth:`to_srt` with the ``WEBVTT`` header and ``HH:MM:SS.mmm`` times."""
        return _write("\n".join(["WEBVTT\n", *self._cues(".")]), path)

    def annotate_video(self, out: str | Path, video: str | Path | None = None) -> int:
        """Write an MP4 of ``video`` (default: :attr:`source`) with the detections active at each frame drawn on it,
        at the source's frame rate (:func:`adatad.viz.write_annotated_video`). Returns the number of frames."""
        from adatad.viz import write_annotated_video

        src = video if video is not None else self.source
        if src is None:
            raise ValueError(f"{self.video}: these detections come from a tensor; pass the video file to draw on")
        return write_annotated_video(src, self.records(), out)


# ------------------------------------------------------------------------------------------- video sources
class _TensorFrames:
    """A uint8 ``[T, H, W, 3]`` tensor/array read like a :class:`~adatad.data.video.VideoReader`."""

    def __init__(self, frames, fps: float | None):
        if fps is None or not float(fps) > 0:
            raise ValueError("a video given as a tensor needs its frame rate: detector(frames, fps=30.0)")
        arr = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
            raise ValueError(f"a video tensor must be uint8 [T, H, W, 3] RGB with T > 0, got {arr.dtype} {tuple(arr.shape)}")
        self.frames = arr
        self.fps = float(fps)
        self.num_frames, self.height, self.width = arr.shape[:3]
        self.duration = self.num_frames / self.fps

    def get_frames(self, indices) -> np.ndarray:
        idx = np.clip(np.asarray(indices, dtype=np.int64).reshape(-1), 0, self.num_frames - 1)
        return self.frames[idx]

    def close(self) -> None:
        pass


@dataclass
class _Job:
    """One video in flight in :meth:`Detector.run`."""

    name: str
    item: Any  # what the caller passed (a path or a tensor)
    source: Any
    snippet_frames: np.ndarray
    windows: list[tuple[int, int]]
    meta_fps: float
    num_snippets: int
    cands: list = field(default_factory=list)
    starts: list = field(default_factory=list)
    pending: int = 0  # windows waiting in the batch
    all_read: bool = False
    failed: bool = False

    @property
    def path(self) -> str | None:
        return None if isinstance(self.item, (torch.Tensor, np.ndarray)) else str(self.item)


# ---------------------------------------------------------------------------------------------- the detector
def _is_opentad_config(raw: dict) -> bool:
    """OpenTAD configs name their model class (``model = dict(type="ActionFormer", ...)``); adatad's do not."""
    return isinstance(raw.get("model"), dict) and "type" in raw["model"]


def detector_config(config: str | Path | dict | None, checkpoint: dict | None = None, overrides=None, source: str = "<checkpoint>") -> dict:
    """The resolved adatad config for a detector: ``config`` an adatad or OpenTAD config file (converted with
    :mod:`adatad.compat.convert_config`), or a config dict; None: the config saved in the (adatad) ``checkpoint``.
    ``overrides``: ``--cfg-options`` style ``["key=value", ...]`` or a dict."""
    if config is None:
        saved = (checkpoint or {}).get("config")
        if not isinstance(saved, dict):
            raise CheckpointError(
                f"checkpoint {source} has no saved config (an OpenTAD checkpoint?): pass the config it was trained with "
                "(Detector.from_checkpoint(path, config=FILE); adatad infer --config FILE), an adatad or OpenTAD config"
            )
        return resolve_config(saved, overrides, source=f"{source} (saved config)", name=Path(source).stem)
    if isinstance(config, dict):
        return resolve_config(config, overrides)
    from adatad.compat.convert_config import convert_opentad_config, load_opentad_config

    path = Path(config)
    raw = load_opentad_config(path)  # plain execution of the file and its _base_ chain (adatad's loader)
    if _is_opentad_config(raw):
        conv = convert_opentad_config(raw, source=str(path))
        logger.info("%s is an OpenTAD config: converted (%d OpenTAD keys ignored, see adatad convert-config)", path, len(conv.ignored))
        return resolve_config(conv.config, overrides, source=str(path.resolve()), name=path.stem)
    return load_config(path, overrides)


def _class_names(given, checkpoint_names, cfg: dict, num_classes: int) -> list[str]:
    """``given`` (a list of names or a class-map file), else the names saved in the checkpoint (adatad), else the
    config's class map file (OpenTAD)."""
    if isinstance(given, (str, Path)):
        names = load_class_map(given)
    elif given is not None:
        names = [str(n) for n in given]
    else:
        names = checkpoint_names
        cmap = cfg["dataset"]["class_map"]
        if not names and cmap and Path(cmap).is_file():
            names = load_class_map(cmap)
    if not names:
        raise UserError(
            "no class names: the checkpoint has none and the config's class map is not found; pass them "
            "(Detector.from_checkpoint(..., class_names=FILE or [names]); adatad infer --class-map FILE)"
        )
    if len(names) != num_classes:
        raise CheckpointError(
            f"class map has {len(names)} classes but the model/checkpoint has {num_classes}; "
            "use the class map the checkpoint was trained with"
        )
    return list(names)


def _uses_classifier(cfg: dict) -> bool:
    return cfg["dataset"].get("sampling") == "resize" and bool(cfg["post_processing"].get("external_cls"))


def classifier_for(cfg: dict, num_classes: int) -> ExternalClassifier | None:
    """The external video classifier of a whole-video (resize) config, or None for a model that names its own
    classes (the ``_cls`` variants); a class-agnostic 1-class model without one is refused (it cannot label)."""
    if _uses_classifier(cfg):
        return build_classifier(cfg["post_processing"]["external_cls"])
    _refuse_unlabelled(cfg, num_classes)
    return None


def _refuse_unlabelled(cfg: dict, num_classes: int) -> None:
    if cfg["dataset"].get("sampling") == "resize" and cfg["dataset"].get("class_agnostic") and num_classes == 1:
        raise UserError(
            "this model is class-agnostic (dataset.class_agnostic, a 1-class head): its detections are labelled by an "
            "external video classifier, and the config has none; set post_processing.external_cls (e.g. --cfg-options "
            "post_processing.external_cls.type=CUHKANETClassifier post_processing.external_cls.path=FILE)"
        )


class Detector:
    """A trained detector on one device. Call it on a video (a file, or a uint8 ``[T, H, W, 3]`` tensor with
    ``fps``) to get :class:`Detections`; :meth:`run` goes through many videos, batching windows across them.

    ``score_threshold``: detections below it are left out (0 keeps all of soft-NMS's output, up to
    ``post_processing.nms.max_seg_num`` per video). ``batch_windows``: windows per forward pass."""

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: dict,
        class_names: Sequence[str],
        device: str | torch.device | None = None,
        score_threshold: float = 0.3,
        batch_windows: int = 1,
    ):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.cfg = cfg
        self.class_names = list(class_names)
        self.score_threshold = float(score_threshold)
        self.batch_windows = int(batch_windows)
        self.transform = build_test_transform(cfg)
        d = cfg["dataset"]
        self.resize = d.get("sampling", "windows") == "resize"  # whole videos resized to window_size x scale_factor
        self.snippet_stride = int(d["feature_stride"]) * int(d["sample_stride"])
        self.window_size = int(d["window_size"])
        self.scale_factor = int(d.get("scale_factor", 1))
        if not self.resize and (self.scale_factor < 1 or self.snippet_stride % self.scale_factor):
            raise UserError(f"dataset.scale_factor={self.scale_factor} must be a positive divisor of the snippet stride "
                            f"{self.snippet_stride} (dataset.feature_stride x dataset.sample_stride)")  # fmt: skip
        self.classifier: ExternalClassifier | None = classifier_for(cfg, int(getattr(model, "num_classes", 0))) if self.resize else None
        if self.classifier is not None:
            self.class_names = list(self.classifier.classes)
        self.checkpoint: str | None = None
        self.load_info: dict = {}

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        config: str | Path | dict | None = None,
        device: str | torch.device | None = None,
        *,
        class_names: str | Path | Sequence[str] | None = None,
        cfg_options: Sequence[str] | dict | None = None,
        score_threshold: float = 0.3,
        batch_windows: int = 1,
        prefer_ema: bool = True,
    ) -> Detector:
        """Load an adatad or OpenTAD checkpoint (EMA weights preferred).

        ``config``: the checkpoint's saved config when None (adatad checkpoints), else an adatad or OpenTAD config
        file or a dict. ``class_names``: a list or a class-map file; default the checkpoint's, else the config's
        class map. ``device``: default cuda when available."""
        ckpt = load_checkpoint(path)
        cfg = detector_config(config, ckpt if isinstance(ckpt, dict) else None, cfg_options, source=str(path))
        with torch.random.fork_rng(devices=[]):  # the throw-away initialisation leaves the caller's RNG stream alone
            model = build_detector(cfg, load_pretrained=False)
        info = load_detector_checkpoint(model, path, prefer_ema=prefer_ema, ckpt=ckpt)
        if _uses_classifier(cfg):  # labels come from the external classifier's file (a 1-class head has no names)
            names = []
        else:
            _refuse_unlabelled(cfg, model.num_classes)
            names = _class_names(class_names, info["class_names"], cfg, model.num_classes)
        det = cls(model, cfg, names, device, score_threshold=score_threshold, batch_windows=batch_windows)
        det.checkpoint, det.load_info = str(path), info
        return det

    def __repr__(self) -> str:
        return (
            f"Detector({self.checkpoint or 'model'}, {len(self.class_names)} classes, device={self.device}, "
            f"window={self.window_size} snippets, score_threshold={self.score_threshold})"
        )

    def __call__(self, video, fps: float | None = None, *, name: str | None = None, progress: bool = False) -> Detections:
        """Detect actions in one video: a file path, or a uint8 ``[T, H, W, 3]`` RGB tensor/array with its ``fps``."""
        return next(iter(self.run([video], fps=fps, names=[name] if name else None, progress=progress)))

    def run(
        self,
        videos: Iterable,
        batch_windows: int | None = None,
        progress: bool = True,
        *,
        fps: float | None = None,
        names: Sequence[str] | None = None,
        on_error: Callable[[Any, Exception], None] | None = None,
    ) -> Iterator[Detections]:
        """Yield the :class:`Detections` of each video, in order, batching ``batch_windows`` windows (default: the
        detector's) of consecutive videos per forward pass. Videos are opened as their windows are needed (at most
        the videos of one batch at a time). ``fps``: the rate of tensor videos. ``on_error(video, exc)``: called for a
        video that cannot be opened or decoded, which is then skipped; without it the error is raised."""
        n_batch = int(batch_windows or self.batch_windows)
        if n_batch < 1:
            raise ValueError(f"batch_windows must be >= 1, got {n_batch}")
        from tqdm.auto import tqdm

        bar = tqdm(total=0, desc="detect", unit="win", dynamic_ncols=True, leave=False, disable=not progress)
        jobs: deque[_Job] = deque()
        batch: list[tuple[_Job, int, torch.Tensor, torch.Tensor]] = []
        try:
            for i, item in enumerate(videos):
                name = names[i] if names else None
                try:
                    job = self._open(item, fps, name or (f"video_{i}" if isinstance(item, (torch.Tensor, np.ndarray)) else None))
                except (VideoError, OSError) as exc:
                    if on_error is None:
                        raise
                    on_error(item, exc)
                    continue
                jobs.append(job)
                bar.total += len(job.windows)
                bar.refresh()
                try:  # one forward decode of the video, its windows cut from memory (adatad.data.stream)
                    for start, clip, mask in self._items(job):
                        batch.append((job, start, clip, mask))
                        job.pending += 1
                        if len(batch) == n_batch:
                            self._forward(batch)
                            bar.update(len(batch))
                            batch = []
                            yield from self._finished(jobs)
                except (VideoError, OSError) as exc:
                    if on_error is None:
                        raise
                    job.failed = True
                    on_error(item, exc)
                job.all_read = True
                yield from self._finished(jobs)
            if batch:
                self._forward(batch)
                bar.update(len(batch))
            yield from self._finished(jobs)
        finally:
            bar.close()
            for job in jobs:
                job.source.close()

    # ------------------------------------------------------------------------------------------- internals
    def _open(self, item, fps: float | None, name: str | None) -> _Job:
        if isinstance(item, (torch.Tensor, np.ndarray)):
            source: Any = _TensorFrames(item, fps)
            name = name or "video"
        else:
            source = VideoReader(item, backend=self.cfg["dataset"]["backend"])
            name = name or Path(item).stem
        if self.resize:  # one item: the whole video on the resize grid (ResizeDataset's frames)
            prefix = str(self.cfg["dataset"].get("video_prefix") or "")
            if prefix and name.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix) :]  # ActivityNet: v_X.mp4 is video X (annotation and classifier ids)
            if self.classifier is not None:
                try:  # before decoding: a clear error naming the file and the video
                    self.classifier.check_videos([name])
                except ClassifierError as e:
                    source.close()
                    raise ClassifierError(
                        f"{e}. A class-agnostic model labels only the videos of its classifier file: add this video's "
                        "scores to the file, or use a model with its own class head (OpenTAD's _cls configs)"
                    ) from None
                except Exception:
                    source.close()
                    raise
            idx = resize_frame_indices(source.num_frames, self.window_size, self.scale_factor)
            return _Job(name, item, source, idx, [(0, self.window_size)], -1.0, self.window_size)
        reference_fps = self.cfg["inference"]["reference_fps"]
        s = self.scale_factor  # frames the backbone sees per snippet: the grid is every snippet_stride / s frames
        plan, meta_fps = snippet_plan(source.num_frames, source.fps, self.snippet_stride // s, reference_fps)
        n_snippets = len(plan) if s == 1 else len(snippet_plan(source.num_frames, source.fps, self.snippet_stride, reference_fps)[0])
        windows = sliding_windows(n_snippets, self.window_size, self.cfg["dataset"]["test"]["window_overlap_ratio"])
        return _Job(name, item, source, np.asarray(plan, dtype=np.int64), windows, meta_fps, n_snippets)

    def _items(self, job: _Job) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(window start snippet, clip [3, window_size x s, H, W], mask bool [window_size])`` of each window."""
        if self.resize:
            frames = job.source.get_frames(job.snippet_frames)
            yield 0, self._clip(frames), torch.ones(self.window_size, dtype=torch.bool)
            return
        s = self.scale_factor
        spans = [(a * s, b * s) for a, b in job.windows]
        per_frame = getattr(self.transform, "per_frame", None)  # transform each decoded frame once (EvalTransform)
        for k, frames, frame_mask in stream_windows(job.source, job.snippet_frames, spans, self.window_size * s, frame_fn=per_frame):
            mask = torch.zeros(self.window_size, dtype=torch.bool)
            mask[: int(frame_mask.sum()) // s] = True  # valid snippets = valid frames // s (SlidingWindowDataset)
            clip = frames if isinstance(frames, torch.Tensor) else self._clip(frames)  # a tensor: per_frame's output
            yield job.windows[k][0], clip, mask

    def _clip(self, frames: np.ndarray) -> torch.Tensor:
        return self.transform(torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous())

    @torch.no_grad()
    def _forward(self, batch: list) -> None:
        live = [b for b in batch if not b[0].failed]
        if live:
            pp = self.cfg["post_processing"]
            inputs = torch.stack([b[2] for b in live]).to(self.device)
            masks = torch.stack([b[3] for b in live]).to(self.device)
            with amp_context(self.cfg["solver"], self.device):
                out = self.model(inputs, masks, return_loss=False, pre_nms_thresh=pp["pre_nms_thresh"], pre_nms_topk=pp["pre_nms_topk"])
            for (job, start, _, _), cand in zip(live, out):
                job.cands.append({k: v.cpu() for k, v in cand.items()})
                job.starts.append(start)
        for job, *_ in batch:
            job.pending -= 1

    def _finished(self, jobs: deque) -> Iterator[Detections]:
        """Pop (and yield the detections of) the leading videos whose windows are all done."""
        while jobs and (jobs[0].failed or (jobs[0].all_read and jobs[0].pending == 0)):
            job = jobs.popleft()
            job.source.close()
            if not job.failed:
                yield self._merge(job)

    def _merge(self, job: _Job) -> Detections:
        src = job.source
        duration = src.num_frames / src.fps if src.fps > 0 else src.duration
        info = dict(
            fps=src.fps,
            num_frames=src.num_frames,
            duration=duration,
            width=src.width,
            height=src.height,
            num_windows=len(job.windows),
            num_snippets=job.num_snippets,
        )
        if self.resize:
            cand = job.cands[0]
            meta = dict(video_name=job.name, fps=-1, duration=duration, resize_length=self.window_size)
            nms = self.cfg["post_processing"]["nms"]
            records = whole_video_results(cand["segments"], cand["scores"], cand["labels"], meta, nms, self.classifier, self.class_names)
            records = [r for r in records if r["score"] >= self.score_threshold]
            return Detections.from_records(job.name, records, info, job.path)
        metas = [
            dict(
                video_name=job.name,
                fps=job.meta_fps,
                duration=duration,
                snippet_stride=self.snippet_stride,
                window_start_frame=start * self.snippet_stride,
                window_size=self.window_size,
                offset_frames=0,
            )
            for start in job.starts
        ]
        det = video_detections(job.cands, metas, self.cfg["post_processing"]["nms"])
        records = detection_records(det, self.class_names, min_score=self.score_threshold, video=job.name)
        return Detections.from_records(job.name, records, info, job.path)
