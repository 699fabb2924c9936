"""The training/testing engine end to end on a tiny synthetic dataset: the seed's entry points (plain and
torchrun DDP on gloo), predictions + mAP table, exact resume after an epoch and after SIGTERM mid-epoch."""

import os
import signal
import subprocess
import sys
import time

import torch
from tinyrun import ROOT, TORCHRUN, assert_same_weights, write_tiny_config

from adatad.config import SCHEMA, load_config, packaged_config
from adatad.data.annotations import thumos14_csv_dir


def run(args, cwd, timeout=300, env=None, **kw):
    env = env or dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


def weights(path):
    ckpt = torch.load(path, weights_only=True)
    return ckpt["state_dict"], ckpt["state_dict_ema"], ckpt


def test_train_then_test_single_process(cfg_file, tmp_path):
    work = tmp_path / "run"
    res = run([str(ROOT / "tools/train.py"), str(cfg_file), "--work-dir", str(work), "--device", "cpu"], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    ckpts = sorted(p.name for p in (work / "checkpoint").iterdir())
    assert ckpts == ["best.pth", "epoch_0.pth", "epoch_1.pth", "latest.pth"]
    assert (work / "config.py").is_file() and (work / "train.log").is_file() and (work / "training_curves.png").is_file()
    saved: dict = {}
    exec((work / "config.py").read_text(), saved)  # the run's resolved config: sections only, no stale helper variables
    assert "window_size" in load_config(cfg_file) and {k for k in saved if not k.startswith("__")} <= set(SCHEMA)
    assert saved["dataset"]["window_size"] == 64
    assert "effective batch is" not in res.stdout  # 1 process x batch 2 is the recipe's effective batch
    assert "cpu: 1 intra-op thread(s), fixed by OMP_NUM_THREADS=1" in res.stdout
    ckpt = torch.load(work / "checkpoint" / "latest.pth", weights_only=True)
    for key in ("state_dict", "state_dict_ema", "optimizer", "scheduler", "rng", "config", "epoch", "class_names"):
        assert key in ckpt
    assert ckpt["class_names"] == ["MoveRight", "MoveLeft", "Grow", "Shrink", "Blink"]

    res = run(
        [
            str(ROOT / "tools/test.py"),
            str(cfg_file),
            "--checkpoint",
            str(work / "checkpoint" / "best.pth"),
            "--work-dir",
            str(work),
            "--device",
            "cpu",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| tIoU | 0.30 | 0.40 | 0.50 | 0.60 | 0.70 | Avg |" in res.stdout
    preds = work / "predictions_test.json"
    assert preds.is_file() and (work / "map_test.json").is_file()
    assert (work / "report.html").stat().st_size > 10_000 and "report: " in res.stderr + res.stdout  # beside the predictions

    # the seed's test script, on this machine's CPU, with an explicit checkpoint
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        OMP_NUM_THREADS="1",
        CONFIG=str(cfg_file),
        PYTHON=sys.executable,
        WORK_DIR=str(tmp_path / "script"),
    )
    res = subprocess.run(
        ["bash", str(ROOT / "scripts/testing/test_e2e_minimal.sh"), str(work / "checkpoint" / "best.pth")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "| mAP |" in res.stdout and (tmp_path / "script" / "predictions_test.json").is_file()


def test_torchrun_ddp_two_processes(cfg_file, tmp_path):
    """Global batch 2 on 2 processes: 1 window per process, effective batch 2, and OpenTAD's iterations per epoch
    (4 training videos: floor(4 / 2) = 2 per rank, batch 1 -> 2 optimizer steps per epoch)."""
    from adatad.engine.batching import optimizer_steps_per_epoch

    work = tmp_path / "ddp"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    res = subprocess.run(
        [*TORCHRUN, str(ROOT / "tools/train.py"), str(cfg_file), "--work-dir", str(work), "--device", "cpu"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "batch: 2 process(es) x batch 1 x accumulate 1 = effective batch 2; 2 iterations per epoch on each process" in res.stdout
    assert "effective batch is" not in res.stdout  # the recipe's own effective batch
    ckpt = torch.load(work / "checkpoint" / "latest.pth", weights_only=True)
    assert ckpt["global_step"] == 2 * optimizer_steps_per_epoch(4, global_batch=2, world_size=2) == 4
    res = subprocess.run(
        [
            *TORCHRUN,
            str(ROOT / "tools/test.py"),
            str(cfg_file),
            "--checkpoint",
            str(work / "checkpoint" / "latest.pth"),
            "--work-dir",
            str(work),
            "--device",
            "cpu",
            "--cfg-options",
            "solver.test.num_workers=2",  # decode once: whole videos per rank and worker
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "| mAP |" in res.stdout and "decode once" in res.stdout
    import json

    preds = json.loads((work / "predictions_test.json").read_text())["results"]
    assert len(preds) == 2  # both test videos gathered on rank 0
    # the oracle: one process decoding window by window gives the same detections
    one = tmp_path / "one"
    ckpt_path = str(work / "checkpoint" / "latest.pth")
    opts = ["--work-dir", str(one), "--device", "cpu", "--cfg-options", "dataset.test.decode_once=False"]
    res = run([str(ROOT / "tools/test.py"), str(cfg_file), "--checkpoint", ckpt_path, *opts], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    ref = json.loads((one / "predictions_test.json").read_text())["results"]
    assert sorted(ref) == sorted(preds)
    for video, dets in ref.items():
        assert len(dets) == len(preds[video]), video
        for a, b in zip(dets, preds[video]):
            assert a["label"] == b["label"] and abs(a["score"] - b["score"]) < 1e-4
            assert max(abs(x - y) for x, y in zip(a["segment"], b["segment"])) < 1e-3


THUMOS = thumos14_csv_dir()
SEED = packaged_config("adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py")


def test_seed_command_plan_under_torchrun(tmp_path):
    """The seed's 2-GPU command (config as written) plans OpenTAD's recipe: batch 1 per process, effective batch 2,
    100 optimizer steps per epoch on THUMOS' 200 training videos (OpenTAD: len(train_loader) = ceil(floor(200/2)/1));
    global batch 3 on 2 processes is refused with one line naming both numbers and the ways out."""
    from adatad.data.annotations import convert_thumos, write_annotations

    data, classes, _ = convert_thumos(csv_dir=THUMOS)
    ann, cmap = write_annotations(data, classes, tmp_path / "anno")
    paths = [f"dataset.annotation_path={ann}", f"dataset.class_map={cmap}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    res = subprocess.run(
        [*TORCHRUN, str(ROOT / "tools/train.py"), str(SEED), "--dry-run", "--cfg-options", *paths],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    plan = [line for line in res.stdout.splitlines() if line.startswith("# plan:")]
    assert len(plan) == 2  # one per process
    assert plan[0].startswith(
        "# plan: 2 process(es) x batch 1 x accumulate 1 = effective batch 2; "
        "100 optimizer steps per epoch (200 training videos); epochs 60;"
    )
    assert "WARNING" not in res.stdout

    # the 1-GPU variant of the seed: effective batch 1 (a warning names the recipe's 2 and the fix)
    res = run([str(ROOT / "tools/train.py"), str(SEED), "--dry-run", "--cfg-options", "solver.train.batch_size=1", *paths], tmp_path)
    assert "200 optimizer steps per epoch" in res.stdout and "effective batch is 1" in res.stdout
    assert "--keep-effective-batch (or --cfg-options solver.train.accumulate=2)" in res.stdout
    res = run(
        [
            str(ROOT / "tools/train.py"),
            str(SEED),
            "--dry-run",
            "--keep-effective-batch",
            "--cfg-options",
            "solver.train.batch_size=1",
            *paths,
        ],
        tmp_path,
    )
    assert "1 process(es) x batch 1 x accumulate 2 = effective batch 2; 100 optimizer steps per epoch" in res.stdout

    # batch 3 on 2 processes: one line (WORLD_SIZE is what torchrun sets), and the same line under torchrun
    res = run(
        [str(ROOT / "tools/train.py"), str(SEED), "--dry-run", "--cfg-options", "solver.train.batch_size=3"],
        tmp_path,
        env=dict(env, WORLD_SIZE="2"),
    )
    expected = (
        "adatad: config error: solver.train.batch_size=3 is the global batch (as in OpenTAD) and must be a multiple "
        "of the 2 processes: either set --cfg-options solver.train.batch_size=2 or 4, or run with a number of "
        "processes that divides 3"
    )
    assert res.returncode == 2 and res.stderr.strip() == expected, res.stderr
    res = subprocess.run(
        [*TORCHRUN, str(ROOT / "tools/train.py"), str(SEED), "--cfg-options", "solver.train.batch_size=3", *paths],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode != 0 and expected in res.stderr


def test_resume_after_epoch_is_exact(cfg_file, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    common = [str(ROOT / "tools/train.py"), str(cfg_file), "--device", "cpu", "--cfg-options", "workflow.end_epoch=3"]
    assert run(common + ["--work-dir", str(full)], tmp_path).returncode == 0
    res = run(
        [str(ROOT / "tools/train.py"), str(cfg_file), "--device", "cpu", "--work-dir", str(part), "--cfg-options", "workflow.end_epoch=1"],
        tmp_path,
    )
    assert res.returncode == 0
    res = run(common + ["--work-dir", str(part), "--resume"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    a, a_ema, a_ck = weights(full / "checkpoint" / "latest.pth")
    b, b_ema, b_ck = weights(part / "checkpoint" / "latest.pth")
    assert a_ck["epoch"] == b_ck["epoch"] == 2 and a_ck["global_step"] == b_ck["global_step"]
    assert_same_weights(a, b)
    assert_same_weights(a_ema, b_ema)


def test_sigterm_mid_epoch_writes_resumable_checkpoint(tmp_path, tiny_dataset):
    cfg_file = write_tiny_config(tmp_path / "tiny.py", tiny_dataset)
    full, part = tmp_path / "full", tmp_path / "part"
    # batch 1: 4 iterations per epoch, so there is a middle of an epoch to stop in
    opts = ["--cfg-options", "solver.train.batch_size=1", "workflow.val_eval_interval=0"]
    base = [str(ROOT / "tools/train.py"), str(cfg_file), "--device", "cpu"]
    assert run(base + ["--work-dir", str(full)] + opts, tmp_path).returncode == 0
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable] + base + ["--work-dir", str(part)] + opts,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = ""
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        seen += line
        if "[train] epoch 1 [1/4]" in line:
            proc.send_signal(signal.SIGTERM)
            break
    out, _ = proc.communicate(timeout=120)
    seen += out
    assert proc.returncode == 130, seen[-3000:]
    ck = torch.load(part / "checkpoint" / "latest.pth", weights_only=True)
    assert ck["epoch"] == 1 and 0 < ck["iteration"] < 4, (ck["epoch"], ck["iteration"])
    res = run(base + ["--work-dir", str(part), "--resume"] + opts, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    a, a_ema, _ = weights(full / "checkpoint" / "latest.pth")
    b, b_ema, _ = weights(part / "checkpoint" / "latest.pth")
    assert_same_weights(a, b)
    assert_same_weights(a_ema, b_ema)


def test_bad_checkpoint_path_is_clear(cfg_file, tmp_path):
    res = run(
        [
            str(ROOT / "tools/test.py"),
            str(cfg_file),
            "--checkpoint",
            str(tmp_path / "nope.pth"),
            "--device",
            "cpu",
            "--work-dir",
            str(tmp_path / "w"),
        ],
        tmp_path,
    )
    assert res.returncode == 1 and "checkpoint not found" in res.stderr and "Traceback" not in res.stderr
