"""Plots: detection timelines and training curves (matplotlib, Agg backend, imported lazily); videos with the
detections drawn on their frames (PyAV + Pillow).

Segments everywhere are dicts ``{"segment": [start_s, end_s], "label": name, "score": x}`` (``score``
optional for ground truth), the format of the prediction / annotation JSON files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["format_mmss", "plot_timeline", "plot_training_curves", "write_annotated_video"]

_ALL_CLASSES_MAX = 8  # with at most this many classes, every class gets a row even if empty


def _figure(width_in: float, height_in: float, dpi: int):
    """A matplotlib Figure with an Agg canvas: no pyplot, no global backend switch, nothing to close."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def format_mmss(seconds: float, _pos: object = None) -> str:
    """``75 -> "1:15"``, ``3725 -> "1:02:05"`` (hours only when needed), ``1.5 -> "0:01.5"`` (tenths only when
    not a whole second); usable as a matplotlib tick formatter."""
    sign = "-" if seconds < 0 else ""
    tenths = int(round(abs(float(seconds)) * 10))
    s, frac = divmod(tenths, 10)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    tail = f".{frac}" if frac else ""
    return f"{sign}{h}:{m:02d}:{sec:02d}{tail}" if h else f"{sign}{m}:{sec:02d}{tail}"


def _tick_step(duration: float, max_ticks: int = 15) -> float:
    """A round tick interval in seconds (1 s ... 1 h) giving at most ``max_ticks`` ticks."""
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if duration / step <= max_ticks:
            return float(step)
    return float(3600 * math.ceil(duration / 3600 / max_ticks))


def _check_segments(items: Sequence[Mapping] | None, what: str) -> list[Mapping]:
    out = []
    for i, d in enumerate(items or []):
        if "segment" not in d or "label" not in d:
            raise ValueError(f"{what}[{i}] must have keys 'segment' and 'label', got {sorted(d)}")
        seg = d["segment"]
        if len(seg) != 2:
            raise ValueError(f"{what}[{i}]['segment'] must be [start, end] in seconds, got {seg}")
        out.append(d)
    return out


def plot_timeline(
    path_png: str | os.PathLike,
    duration: float,
    class_names: Sequence[str],
    detections: Sequence[Mapping],
    ground_truth: Sequence[Mapping] | None = None,
    title: str = "",
    score_threshold: float = 0.0,
    max_per_class: int | None = None,
    width_px: int = 1600,
    dpi: int = 100,
) -> str:
    """Draw detections (and ground truth) of one video on a time axis, one row per class.

    Each class row has two lanes: ground truth on top (black bars, when given) and detections below,
    coloured by score (``viridis``, with a colour bar; overlapping detections are drawn lowest score first
    so the best stay visible). Every segment is at least one pixel wide, so short actions stay visible on
    a 30-minute video. Rows: classes present in the ground truth or the kept detections, in ``class_names``
    order (labels missing from ``class_names`` are appended); all classes when there are at most 8.

    Args:
        path_png: output file (parent folders are created).
        duration: video duration in seconds (the x range).
        class_names: class names, in class-index order.
        detections: ``[{"segment": [s, e], "label": name, "score": x}, ...]``.
        ground_truth: same without ``score``, or None.
        score_threshold: detections scoring below this are not drawn.
        max_per_class: keep only the best-scoring N detections per class.
        width_px, dpi: image width in pixels and resolution; the height grows with the number of rows.

    Returns:
        ``str(path_png)``.
    """
    duration = float(duration)
    if not duration > 0 or not math.isfinite(duration):
        raise ValueError(f"duration must be a positive number of seconds, got {duration}")
    dets = [d for d in _check_segments(detections, "detections") if float(d.get("score", 1.0)) >= score_threshold]
    gts = _check_segments(ground_truth, "ground_truth")
    if max_per_class is not None:
        by_cls: dict[str, list[Mapping]] = {}
        for d in sorted(dets, key=lambda d: -float(d.get("score", 1.0))):
            by_cls.setdefault(d["label"], []).append(d)
        dets = [d for lst in by_cls.values() for d in lst[: max(0, int(max_per_class))]]

    names = list(class_names)
    present = {d["label"] for d in dets} | {g["label"] for g in gts}
    extra = sorted(present - set(names))
    if len(names) + len(extra) <= _ALL_CLASSES_MAX:
        rows = names + extra
    else:
        rows = [c for c in names if c in present] + extra
    if not rows:
        rows = names[:1] or ["(none)"]

    from matplotlib import cm, colormaps, colors
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    n = len(rows)
    height_in = 1.3 + 0.42 * n
    fig = _figure(width_px / dpi, height_in, dpi)
    ax = fig.add_subplot(1, 1, 1)
    cmap = colormaps["viridis"]
    max_score = max([float(d.get("score", 1.0)) for d in dets], default=1.0)
    norm = colors.Normalize(vmin=0.0, vmax=max(1.0, max_score))
    # the axes span at least 70% of the image width: this is at least one pixel
    min_w = duration / (width_px * 0.7)
    row_of = {c: i for i, c in enumerate(rows)}
    has_gt = ground_truth is not None
    lane_h = 0.38 if has_gt else 0.76

    def bars(items: list[Mapping], y0: float, h: float, face) -> None:
        """One collection per lane: cheap even with thousands of detections."""
        if not items:
            return
        spans, faces = [], []
        for d in items:
            s, e = float(d["segment"][0]), float(d["segment"][1])
            s, e = max(0.0, min(s, duration)), max(0.0, min(e, duration))
            spans.append((min(s, duration - min_w), max(e - s, min_w)))
            faces.append(face(d))
        ax.broken_barh(spans, (y0, h), facecolors=faces, edgecolors="none")

    for c in rows:
        i = row_of[c]
        y_top = n - 1 - i  # first class at the top
        if has_gt:
            bars([g for g in gts if g["label"] == c], y_top + 0.52, lane_h, lambda d: (0.1, 0.1, 0.1, 1.0))
        cls_dets = sorted((d for d in dets if d["label"] == c), key=lambda d: float(d.get("score", 1.0)))
        y_det = y_top + 0.10 if has_gt else y_top + 0.12
        bars(cls_dets, y_det, lane_h, lambda d: cmap(norm(float(d.get("score", 1.0)))))
        if i:
            ax.axhline(y_top + 1.0, color="0.85", linewidth=0.6)

    ax.set_ylim(0.0, n)
    ax.set_yticks([n - 1 - i + 0.5 for i in range(n)])
    ax.set_yticklabels(rows)
    ax.set_xlim(0.0, duration)
    ax.xaxis.set_major_formatter(FuncFormatter(format_mmss))
    ax.xaxis.set_major_locator(MultipleLocator(_tick_step(duration)))
    ax.set_xlabel("time (m:ss)")
    ax.grid(axis="x", color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    sub = "ground truth (black, top of each row) / detections (by score)" if has_gt else "detections (by score)"
    ax.set_title(f"{title}\n{sub}" if title else sub, fontsize=10)
    sm = cm.ScalarMappable(norm=norm, cmap=cmap)
    sm.set_array([])
    cbar = fig.colorbar(sm, ax=ax, pad=0.01, fraction=0.03)
    cbar.set_label("score")
    fig.subplots_adjust(left=0.12, right=0.94, bottom=0.6 / height_in, top=1 - 0.55 / height_in)
    path = Path(path_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return str(path_png)


def plot_training_curves(path_png: str | os.PathLike, history: Sequence[Mapping], title: str = "") -> str:
    """Plot training loss (left axis) and validation mAP in percent (right axis) against epoch.

    Args:
        path_png: output file.
        history: one dict per epoch: ``{"epoch": int, "loss": float, "mAP": float (optional, percent)}``;
            entries without ``loss`` (or with a non-finite one) are skipped for the loss curve.

    Returns:
        ``str(path_png)``.
    """
    for i, h in enumerate(history):
        if "epoch" not in h:
            raise ValueError(f"history[{i}] has no 'epoch' key: {dict(h)}")
    loss_pts = [(float(h["epoch"]), float(h["loss"])) for h in history if h.get("loss") is not None and math.isfinite(float(h["loss"]))]
    map_pts = [(float(h["epoch"]), float(h["mAP"])) for h in history if h.get("mAP") is not None]

    fig = _figure(8, 4.5, 100)
    ax = fig.add_subplot(1, 1, 1)
    if loss_pts:
        ax.plot(*zip(*loss_pts), color="tab:blue", marker="." if len(loss_pts) < 50 else None, label="loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.tick_params(axis="y", labelcolor="tab:blue")
    ax.grid(color="0.9")
    if map_pts:
        ax2 = ax.twinx()
        ax2.plot(*zip(*map_pts), color="tab:red", marker="o", label="mAP")
        ax2.set_ylabel("validation mAP (%)", color="tab:red")
        ax2.tick_params(axis="y", labelcolor="tab:red")
        best = max(map_pts, key=lambda p: p[1])
        ax2.plot([best[0]], [best[1]], marker="*", markersize=12, color="tab:red", linestyle="none")
        title = f"{title + ': ' if title else ''}best mAP {best[1]:.2f}% at epoch {best[0]:g}"
    if not loss_pts and not map_pts:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center")
    ax.set_title(title or "training curves")
    fig.tight_layout()
    path = Path(path_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return str(path_png)


# --------------------------------------------------------------------------------------------- annotated video
_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230)]


def write_annotated_video(video: str | os.PathLike, detections: Sequence[Mapping], out: str | os.PathLike, max_labels: int = 5) -> int:
    """Re-encode ``video`` (H.264 MP4, PyAV) with the detections active at each frame drawn on it: a border in the
    class's colour and ``label score`` lines, highest score first (at most ``max_labels``). Frame ``i`` is at
    ``i / fps`` seconds (the time adatad gives a frame); a detection is active on ``[start, end)``. Every decoded
    frame is written, at the source's frame rate. Returns the number of frames written."""
    import av
    import numpy as np
    from PIL import ImageDraw, ImageFont

    from adatad.data.synthetic import as_fraction, write_video

    dets = sorted(_check_segments(detections, "detections"), key=lambda d: -float(d.get("score", 1.0)))
    colour = {lab: _PALETTE[i % len(_PALETTE)] for i, lab in enumerate(sorted({str(d["label"]) for d in dets}))}
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise ValueError(f"{video}: no frame rate in the stream header")
        fps = as_fraction(rate)

        def frames():
            font = None
            for i, frame in enumerate(container.decode(stream)):
                img = frame.to_image()  # RGB
                if font is None:
                    font = ImageFont.load_default(size=max(10, img.height // 16))
                t = i / float(fps)
                active = [d for d in dets if float(d["segment"][0]) <= t < float(d["segment"][1])]
                if active:
                    draw = ImageDraw.Draw(img, "RGBA")
                    w, h = img.size
                    border = max(2, min(w, h) // 60)
                    draw.rectangle([0, 0, w - 1, h - 1], outline=colour[str(active[0]["label"])], width=border)
                    y = 2 * border
                    for d in active[:max_labels]:
                        text = f"{d['label']} {float(d.get('score', 1.0)):.2f}"
                        box = draw.textbbox((2 * border, y), text, font=font)
                        draw.rectangle([box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2], fill=(0, 0, 0, 170))
                        draw.text((2 * border, y), text, font=font, fill=colour[str(d["label"])] + (255,))
                        y = box[3] + 4
                arr = np.asarray(img)
                if arr.shape[0] % 2 or arr.shape[1] % 2:  # H.264 4:2:0 needs even sizes: repeat the last row/column
                    arr = np.pad(arr, ((0, arr.shape[0] % 2), (0, arr.shape[1] % 2), (0, 0)), mode="edge")
                yield arr

        return write_video(out, frames(), fps)
