"""Realistic predictions for report tests without training: perturbed copies of the ground truth (some with a
wrong label) plus random boxes, every class, scores spread over [0, 1], as a detector's output file looks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def fake_predictions(anno_file: str | Path, subset: str = "validation", seed: int = 0, copies: int = 3, random_boxes: int = 8) -> dict:
    """``{"results": {video: [{"segment", "label", "score"}]}}`` for the videos of ``subset``."""
    db = json.loads(Path(anno_file).read_text())["database"]
    classes = sorted({a["label"] for v in db.values() for a in v["annotations"]})
    rng = np.random.default_rng(seed)
    results = {}
    for video, info in db.items():
        if info["subset"] != subset:
            continue
        dur = float(info["duration"])
        preds = []
        for a in info["annotations"]:
            s, e = a["segment"]
            for _ in range(copies):
                shift = (e - s) * rng.uniform(-0.4, 0.4)
                scale = rng.uniform(0.7, 1.3)
                c = (s + e) / 2 + shift
                half = (e - s) * scale / 2
                label = a["label"] if rng.random() < 0.8 else classes[int(rng.integers(len(classes)))]
                preds.append((c - half, c + half, label, rng.uniform(0.2, 1.0)))
        for _ in range(random_boxes):
            s = rng.uniform(0, dur - 0.5)
            preds.append((s, s + rng.uniform(0.3, 3.0), classes[int(rng.integers(len(classes)))], rng.uniform(0.0, 0.6)))
        preds.sort(key=lambda p: -p[3])
        results[video] = [
            {"segment": [round(max(0.0, s), 2), round(min(dur, e), 2)], "label": lab, "score": round(float(sc), 4)}
            for s, e, lab, sc in preds
        ]
    return {"results": results}
