"""The speed/FLOP benchmarks run at the tiny size on CPU and report sane, cross-checked numbers.

Oracle for the FLOP counts: a hand derivation for the --tiny model (below), independent of FlopCounterMode and of
the scripts' own closed-form helper.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

# --tiny model: embed C=64, depth 2, both blocks with adapters (hidden C/4 = 16, kernel 3), MLP hidden 4C = 256,
# 64 frames at 64x64 px, tubelet 2, patch 16 -> 4x4 patches x 8 tubelets = 128 tokens per 16-frame chunk,
# 4 chunks = 512 tokens per window. Multiply-adds per token:
C, H, MLP, L, TOKENS, DEPTH = 64, 16, 256, 128, 512, 2
BLOCK_MACS = 3 * C * C + C * C + 2 * C * MLP + 2 * L * C  # qkv, proj, MLP, QK^T + AV = 65,536
ADAPTER_MACS = C * H + H * C + H * H + 3 * H  # down, up, 1x1 conv, depthwise k=3 conv = 2,352
PATCH_MACS = 3 * 2 * 16 * 16 * C  # tubelet conv = 98,304
BLOCKS_FWD_FLOPS_PER_WINDOW = 2 * TOKENS * DEPTH * (BLOCK_MACS + ADAPTER_MACS)  # 139,034,624
BACKBONE_FWD_FLOPS_PER_WINDOW = BLOCKS_FWD_FLOPS_PER_WINDOW + 2 * TOKENS * PATCH_MACS  # 239,697,920


def _run(script: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc


def test_hand_derivation_constants():
    # the derivation above, spelled out once more as numbers
    assert BLOCK_MACS == 65_536 and ADAPTER_MACS == 2_352 and PATCH_MACS == 98_304
    assert BACKBONE_FWD_FLOPS_PER_WINDOW == 239_697_920


def test_train_step_tiny_cpu(tmp_path):
    proc = _run(
        "train_step.py",
        "--tiny",
        "--device",
        "cpu",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--with-inference",
        "--measure-peak",
        "--out",
        str(tmp_path),
        "--name",
        "t",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "train_step_t.json").read_text())
    assert "train_step.py --tiny" in r["command"] and r["date"]
    for key in ("platform", "cpu", "torch", "device"):
        assert r["machine"][key]
    s = r["setup"]
    assert (s["batch"], s["frames"], s["size"], s["dtype"], s["checkpointing"]) == (2, 64, 64, "fp32", "on")
    tr = r["train"]
    assert len(tr["all_s"]) == 2 and all(t > 0 for t in tr["all_s"])
    assert min(tr["all_s"]) <= tr["median_s"] <= max(tr["all_s"])
    assert tr["windows_per_s"] == pytest.approx(2 / tr["median_s"])
    assert tr["loss_finite"]
    assert tr["memory"]["peak_rss_mib"] > 0 and "CPU" in tr["memory"]["method"]
    f = r["flops"]
    # checkpointing recomputes exactly the blocks' forward (not the patch embedding, not the detector)
    assert f["train_step_executed"] - f["train_step_useful"] == 2 * BLOCKS_FWD_FLOPS_PER_WINDOW
    # inference: the backbone forward plus a (smaller, non-zero) detector forward
    assert 2 * BACKBONE_FWD_FLOPS_PER_WINDOW < f["inference_forward"] < 2 * 2 * BACKBONE_FWD_FLOPS_PER_WINDOW
    # a training step costs more than a forward pass but less than 4 of them
    assert f["inference_forward"] < f["train_step_useful"] < 4 * f["inference_forward"]
    assert tr["tflops_useful"] == pytest.approx(f["train_step_useful"] / tr["median_s"] / 1e12)
    assert r["peak"]["tflops"] > 0 and tr["utilisation_useful"] > 0
    inf = r["inference"]
    assert inf["s_per_window"] > 0 and inf["s_per_window"] == pytest.approx(inf["median_batch_s"] / 2)
    md = (tmp_path / "train_step_t.md").read_text()
    assert "| batch |" in md and "train_step.py --tiny" in md


def test_train_step_rejects_bad_shape(tmp_path):
    proc = _run("train_step.py", "--tiny", "--device", "cpu", "--frames", "40", "--out", str(tmp_path))
    assert proc.returncode == 2 and "multiple of 16" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_flops_tiny(tmp_path):
    proc = _run("flops.py", "--tiny", "--batches", "1", "2", "--out", str(tmp_path), "--name", "f")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "f.json").read_text())
    rows = {row["batch"]: row for row in r["rows"]}
    assert set(rows) == {1, 2}
    for b, row in rows.items():
        bb = row["backbone"]
        assert bb["forward"] == b * BACKBONE_FWD_FLOPS_PER_WINDOW
        assert bb["inference"] == bb["forward"]
        assert bb["train_cp_on"] - bb["train_cp_off"] == b * BLOCKS_FWD_FLOPS_PER_WINDOW
        assert row["forward"] > bb["forward"] and row["train_step_cp_on"] > row["train_step_cp_off"] > row["forward"]
    for key in ("forward", "train_step_cp_on", "train_step_cp_off"):
        assert rows[2][key] == 2 * rows[1][key]
    assert r["linear_in_frames"]
    per_frame = {s["frames"]: s["backbone_forward"] for s in r["scaling"]}
    assert per_frame[64] == 2 * per_frame[32] == BACKBONE_FWD_FLOPS_PER_WINDOW
    # the split count (meta backbone + CPU detector) equals a real whole-model run
    assert r["check"]["match"]
    assert r["check"]["whole_train_cp_on"] > r["check"]["whole_train_cp_off"] > r["check"]["whole_forward"] > 0
    assert (tmp_path / "f.md").read_text().count("| 1 | 64x64 |") == 1
