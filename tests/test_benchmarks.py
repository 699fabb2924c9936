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


def _opentad_json(path: Path, split: str, cpu: list[float]) -> None:
    """A measure_pipeline.py-shaped result (../shared/opentad_pipeline) with known per-window CPU times."""
    items = [dict(cpu_s=c, wall_s=2 * c, decode_s=c / 2, transforms_s=c / 2) for c in cpu]
    path.write_text(json.dumps(dict(split=split, affinity=[0], items=items)))


def test_data_pipeline_modes_tiny(tmp_path):
    """Every --modes path at a tiny window on a synthetic video: per-window times with spread and core, each window
    of the test video once per decode-once pass, ratios = OpenTAD's median / adatad's figure, the projection."""
    import statistics

    from adatad.data.windows import num_snippets, sliding_windows

    _opentad_json(tmp_path / "ot_train.json", "train", [2.0, 3.0, 4.0])  # median 3.0
    _opentad_json(tmp_path / "ot_test.json", "test", [1.0, 1.5, 2.0, 9.0])  # median 1.75
    frames, ws = 400, 32
    proc = _run("data_pipeline.py", "--modes", "--window-size", str(ws), "--synthetic-frames", str(frames), "--windows", "2",
                "--opentad-train", str(tmp_path / "ot_train.json"), "--opentad-test", str(tmp_path / "ot_test.json"),
                "--malloc-reuse", "--out", str(tmp_path), "--name", "m", timeout=240)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "m.json").read_text())
    assert "data_pipeline.py --modes" in r["command"] and r["date"] and r["machine"]["cpu_model"]
    assert "M_MMAP_MAX=0" in r["malloc"]
    modes = r["modes"]
    assert set(modes) == {"train_cache_device", "train_cache_cpu", "train_video_device", "train_video_cpu",
                          "test_cache_once", "test_cache_window", "test_video_once", "test_video_window"}  # fmt: skip
    n_windows = len(sliding_windows(num_snippets(frames, 4), ws, 0.5))
    for name, m in modes.items():
        cpu = m["cpu_per_window_s"]
        assert len(cpu) >= 2 and all(c >= 0 for c in cpu) and len(m["wall_per_window_s"]) == len(cpu)
        s = m["cpu_s"]
        assert s["min"] <= s["p25"] <= s["median"] <= s["p75"] <= s["max"]
        assert s["median"] == pytest.approx(statistics.median(cpu))
        assert m["cores"] and set(m["cores"]) <= set(r["machine"]["affinity"])
        tf = m["transform_cpu_per_window_s"]  # the transform runs inside its window
        assert len(tf) == len(cpu) and all(0 <= t <= c + 1e-3 for t, c in zip(tf, cpu))
        if name.endswith("_once"):  # whole passes: every window of the video once per pass
            assert all(p["windows"] == n_windows for p in m["passes"]) and len(cpu) == n_windows * len(m["passes"])
            assert m["amortised"]["cpu_s"] == pytest.approx(sum(p["cpu_s"] for p in m["passes"]) / len(cpu))
    aug = modes["train_cache_device"]["device_augment_on_cpu"]
    assert aug["cpu_s"]["n"] >= 1 and aug["cpu_s"]["median"] > 0
    rows = {row["mode"]: row for row in r["comparison"]}
    for name, row in rows.items():
        ot = 3.0 if name.startswith("train") else 1.75
        own = modes[name]["amortised"]["cpu_s"] if name.endswith("_once") else statistics.median(modes[name]["cpu_per_window_s"])
        assert row["speedup_cpu"] == pytest.approx(ot / own)
        assert row["s_equivalent"] == pytest.approx((3.95 if name.startswith("train") else 2.91) * own / ot)
    need = {"train_cache_device": 10.0, "train_cache_cpu": 3.95, "train_video_device": 3.95 / 1.5, "test_cache_once": 8.0,
            "test_video_once": 2.91 / 0.7}  # fmt: skip
    for name, x in need.items():
        assert rows[name]["required_speedup"] == pytest.approx(x) and rows[name]["pass"] == (rows[name]["speedup_cpu"] >= x)
    assert "pass" not in rows["train_video_cpu"] and "pass" not in rows["test_video_window"]
    # THUMOS-14 facts: 200 annotated validation videos train, 211 test videos evaluate (213 less the 2 OpenTAD drops);
    # the seed recipe validates after epochs 41, 43, ..., 59 (val_start_epoch 40, every 2, 60 epochs)
    sch = r["schedule"]
    assert (sch["train_videos"], sch["val_videos"], sch["epochs"], sch["validations"]) == (200, 211, 60, 10)
    ot_row = r["projection"]["rows"][0]
    assert ot_row["path"].startswith("OpenTAD")
    assert ot_row["hours"] == pytest.approx((200 * 60 * 3.0 + sch["val_windows"] * 10 * 1.75) / 16 / 3600)
    # scaled to the machine where OpenTAD takes 3.95 / 2.91 s, OpenTAD's own row is exactly that machine's
    assert ot_row["hours_at_reference_machine"] == pytest.approx((200 * 60 * 3.95 + sch["val_windows"] * 10 * 2.91) / 16 / 3600)
    md = (tmp_path / "m.md").read_text()
    assert md.count("| train_") == 4 and md.count("| test_") == 4 and "a GPU must show its real time" in md
