"""The ActivityNet recipe end to end on CPU (issue #22, item 6): the "ActivityNet-like" synthetic set
(``generate_dataset(layout="anet")``: OpenTAD's ActivityNet layout, ``v_`` video names, a noisy CUHK-layout video
classifier file) trained with ``configs/demo/anet_demo.py`` through the whole-video resize dataset
(``scale_factor=2``), the class-agnostic 1-class head and the classifier fusion, scored at tIoU 0.5:0.05:0.95.
This is exactly ``adatad demo --config configs/demo/anet_demo.py`` (same data, config and seed), without the
validations.

Chance, measured on the same test videos with the same classifier file, two ways: the same pipeline with the
untrained model, and random proposals (100 per video, uniform start/end and score) fused with the classifier and
scored by the same evaluator (a strong baseline here: actions cover 20-60 % of a video, so long random segments
often overlap them).
"""

import json
import time
from pathlib import Path

import numpy as np
import torch
from tinyrun import save_tiny_checkpoint

from adatad.commands.demo import ANET_DEMO_DATA, data_overrides
from adatad.config import load_config, packaged_config
from adatad.data.synthetic import generate_dataset
from adatad.evaluation.detection_map import evaluate_detections, load_ground_truth, load_predictions
from adatad.models.classifier import ExternalClassifier

TIOUS = [round(0.5 + 0.05 * i, 2) for i in range(10)]
ABSOLUTE_BAR = 0.08  # average mAP@0.5:0.95 the trained model must reach (measured 0.127, see the test)


def random_proposal_map(data: dict, topk: int = 2, n: int = 100, seed: int = 0) -> float:
    """Average mAP@0.5:0.95 of uniformly random proposals labelled by the classifier file (chance localization)."""
    ann = json.loads(Path(data["anno_file"]).read_text())["database"]
    cls = ExternalClassifier(data["classifier_file"], topk=topk)
    rng = np.random.default_rng(seed)
    results = {}
    for video, info in ann.items():
        if info["subset"] != "validation":
            continue
        ends = np.sort(rng.uniform(0, info["duration"], size=(n, 2)), axis=1)
        segs, labels, scores = cls(video, torch.from_numpy(ends).float(), torch.from_numpy(rng.uniform(size=n)).float())
        results[video] = [
            {"segment": s, "label": cls.classes[k], "score": x} for s, k, x in zip(segs.tolist(), labels.tolist(), scores.tolist())
        ]
    gt = load_ground_truth(data["anno_file"], "validation")
    return evaluate_detections(gt, load_predictions({"results": results}), TIOUS)["average_mAP"]


def test_anet_demo_learns_well_above_chance(tmp_path):
    """Trains configs/demo/anet_demo.py on ANET_DEMO_DATA (32 train / 16 test videos; resize 32 x 2 frames, 1-class
    head, CUHK fusion top-2, 10 epochs of 8 steps).

    Measured 2026-11-30 on the 2-core machine shared by 7 agents (the whole test: 180 s; training + test 163 s, twice
    as long under heavier load): trained 0.1269 average mAP@0.5:0.95 (0.42 at tIoU 0.5; the same value in two runs,
    training is deterministic), untrained model 0.0000, random proposals 0.0578 (seeds 0-2: 0.058, 0.054, 0.085).
    Asserted: trained >= max(3 x untrained, 1.5 x random proposals, 0.08)."""
    from adatad.engine.runner import run_testing, run_training

    data = generate_dataset(tmp_path / "data", **ANET_DEMO_DATA, progress=False)
    config = packaged_config("demo/anet_demo.py")
    overrides = data_overrides(Path(data["root"]), anet=True) + [
        "workflow.val_start_epoch=1000",  # no validation during training: the test below is the measure
        "solver.train.num_workers=0",
        "solver.test.num_workers=0",
    ]
    cfg = load_config(config, overrides)
    d = cfg["dataset"]
    assert d["sampling"] == "resize" and d["scale_factor"] == 2 and d["class_agnostic"] and d["video_prefix"] == "v_"
    assert cfg["model"]["head"]["num_classes"] == 1 and cfg["post_processing"]["external_cls"]["type"] == "CUHKANETClassifier"
    assert cfg["evaluation"]["tiou_thresholds"] == TIOUS

    untrained = save_tiny_checkpoint(tmp_path / "untrained.pth", config, seed=0, cfg_options=overrides)
    chance_model = run_testing(cfg, untrained, tmp_path / "untrained", device="cpu")
    assert chance_model is not None
    t0 = time.time()
    work = tmp_path / "run"
    run_training(cfg, work, device="cpu", not_eval=True)
    res = run_testing(cfg, work / "checkpoint" / "latest.pth", work, device="cpu")
    assert res is not None and res["tiou_thresholds"] == TIOUS
    preds = json.loads(Path(res["predictions"]).read_text())["results"]
    assert {r["label"] for recs in preds.values() for r in recs} <= set(ExternalClassifier(data["classifier_file"]).classes)
    chance_random = random_proposal_map(data)
    trained, untrained_map = res["average_mAP"], chance_model["average_mAP"]
    print(f"anet demo: trained {trained:.4f} (mAP@0.5 {res['mAP'][0]:.4f}, {time.time() - t0:.0f} s), "
          f"untrained {untrained_map:.4f}, random proposals {chance_random:.4f}")  # fmt: skip
    assert trained >= max(3 * untrained_map, 1.5 * chance_random, ABSOLUTE_BAR), (trained, untrained_map, chance_random)
