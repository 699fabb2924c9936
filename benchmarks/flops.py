"""FLOPs of the AdaTAD detector per window: forward, and a training step with and without checkpointing recompute.

Counting tool: ``torch.utils.flop_counter.FlopCounterMode`` (matrix multiplies, convolutions and attention;
elementwise work, norms, softmax and the optimizer are not counted; one multiply-add = 2 FLOPs).

Method, chosen so that the seed's full shape (768 frames, 160x160) is counted exactly on a small CPU machine:

* the **backbone** (VideoMAE ViT + TIA adapters, > 98% of the FLOPs) runs on the ``meta`` device: tensors
  have shapes but no data, so FlopCounterMode sees every operator of forward, backward and the
  checkpointing recompute at the full shape in about a second;
* the **detector** (projection, FPN, head, losses) has data-dependent steps (label assignment), so it runs on
  the CPU with real tensors at the full temporal length (its input is only ``[B, 384, 768]``), forward and
  backward including the gradient into the backbone features;
* the two counts add up to the whole model; ``--check`` verifies this at a small shape (default 32 frames,
  160 px, batch 1) against a full real CPU run of the whole detector in one FlopCounterMode, and the
  backbone's forward is compared with a closed-form count (below);
* the backbone is also counted at 64/128/256 frames to show that FLOPs grow linearly with the window
  (attention stays inside 16-frame chunks; the adapters' temporal conv is local).

Closed form of the backbone forward per window (``T`` frames, ``S`` px, ``C`` channels, depth ``D``, tubelet 2,
patch 16, ``L = 8 (S/16)^2`` tokens per 16-frame chunk, ``N = T/16 * L`` tokens, MLP hidden ``4C``, adapter
hidden ``h = C/4``, kernel 3)::

    2 N [3*2*16*16*C  +  D (12 C^2  +  2 L C  +  A (2 C h + h^2 + 3 h))]      (A = 1 with adapters)

Usage::

    python benchmarks/flops.py                 # seed model, 768x160, batch 1 and 2 -> results/flops.{json,md}
    python benchmarks/flops.py --tiny --out flops_out
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from train_step import SEED_CONFIG, TINY_OVERRIDES, machine_info  # noqa: E402

ISSUE_CLAIM = {"forward_tflop_per_window": 1.7, "train_step_tflop_per_window_with_cp": 5.0}


def load(args, frames: int, with_cp: bool = True):
    from adatad.config import load_config
    from adatad.models.detector import build_detector

    overrides = dict(TINY_OVERRIDES) if args.tiny else {}
    overrides.update({"dataset.window_size": frames, "model.backbone.with_cp": with_cp})
    cfg = load_config(args.config, overrides)
    return cfg, build_detector(cfg, load_pretrained=False)


def analytic_backbone_forward(cfg: dict, frames: int, size: int, batch: int) -> int:
    """Closed-form backbone forward FLOPs (see the module docstring)."""
    b = cfg["model"]["backbone"]
    c, depth, p, tub, nf = b["embed_dims"], b["depth"], b["patch_size"], b["tubelet_size"], b["num_frames"]
    hidden = int(c * b["mlp_ratio"])
    tokens_chunk = (nf // tub) * (size // p) ** 2
    tokens = frames // nf * tokens_chunk
    h = int(c * b["adapter_mlp_ratio"])
    k = b["adapter_kernel"]
    adapters = len(b["adapter_index"] or [])
    per_block = 4 * c * c + 2 * c * hidden + 2 * tokens_chunk * c
    adapter = 2 * c * h + h * h + k * h
    macs = tokens * (3 * tub * p * p * c + depth * per_block + adapters * adapter)
    return 2 * macs * batch


def _count(fn) -> tuple[int, dict]:
    """FLOPs of ``fn()``. Attention runs on the math backend while counting: FlopCounterMode has formulas for
    the CUDA attention kernels but not for the CPU flash kernel, which it would silently count as zero."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, sdpa_kernel(SDPBackend.MATH):
        fn()
    return int(fc.get_total_flops()), {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()}


def backbone_counts(model, batch: int, frames: int, size: int) -> dict:
    """Backbone on the meta device: forward, fwd+bwd with checkpointing, fwd+bwd without."""
    import torch

    bb = copy.deepcopy(model.backbone).to("meta")
    bb.train()
    x = torch.empty(batch, 3, frames, size, size, device="meta")
    cp_blocks = set(range(len(bb.blocks)))
    out = {}
    bb.cp_blocks = cp_blocks
    out["forward"], out["forward_by_op"] = _count(lambda: bb(x))

    def fwd_bwd():
        bb(x).sum().backward()

    out["train_cp_on"], out["train_cp_on_by_op"] = _count(fwd_bwd)
    bb.cp_blocks = set()
    out["train_cp_off"], out["train_cp_off_by_op"] = _count(fwd_bwd)
    with torch.no_grad():
        bb.eval()
        out["inference"], _ = _count(lambda: bb(x))
    return out


def random_gt(batch: int, frames: int, num_classes: int):
    import torch

    g = torch.Generator().manual_seed(0)
    segs, labels = [], []
    for _ in range(batch):
        start = torch.rand(4, generator=g) * 0.8 * frames
        segs.append(torch.stack([start, (start + 2 + torch.rand(4, generator=g) * 0.15 * frames).clamp(max=frames)], 1))
        labels.append(torch.randint(0, num_classes, (4,), generator=g))
    return segs, labels


def detector_counts(model, batch: int, frames: int) -> dict:
    """Projection + FPN + head (+ losses and backward into the features) on the CPU with real tensors."""
    import torch

    model.train()
    c = model.backbone.embed_dims
    feats = torch.randn(batch, c, frames, requires_grad=True)
    masks = torch.ones(batch, frames, dtype=torch.bool)
    segs, labels = random_gt(batch, frames, model.num_classes)

    def head(train: bool):
        fpn, fm = model.projection(feats if train else feats.detach(), masks)
        fpn, fm = model.neck(fpn, fm)
        cls, reg = model.rpn_head(fpn, fm)
        return model.rpn_head.losses(cls, reg, fm, segs, labels)["cost"] if train else (cls, reg)

    out = {}
    out["forward"], _ = _count(lambda: head(False))
    out["train"], out["train_by_op"] = _count(lambda: head(True).backward())
    model.eval()
    with torch.no_grad():
        out["inference"], _ = _count(lambda: head(False))
    model.train()
    return out


def whole_model_check(args, frames: int, size: int, batch: int) -> dict:
    """Whole detector on CPU with real tensors in one FlopCounterMode vs the split (meta backbone + CPU head)."""
    import torch

    torch.manual_seed(0)
    res = {"frames": frames, "size": size, "batch": batch}
    for cp in (True, False):
        cfg, model = load(args, frames, with_cp=cp)
        model.train()
        inputs = torch.randint(0, 256, (batch, 3, frames, size, size), dtype=torch.uint8)
        masks = torch.ones(batch, frames, dtype=torch.bool)
        segs, labels = random_gt(batch, frames, model.num_classes)
        t = time.perf_counter()
        total, _ = _count(lambda m=model, x=inputs, k=masks, s=segs, y=labels: m(x, k, s, y)["cost"].backward())
        res[f"whole_train_cp_{'on' if cp else 'off'}"] = total
        res[f"whole_seconds_cp_{'on' if cp else 'off'}"] = time.perf_counter() - t
        if cp:
            model.eval()
            with torch.no_grad():
                res["whole_forward"], _ = _count(lambda m=model, x=inputs, k=masks: m(x, k, return_loss=False))
            model.train()
            bb = backbone_counts(model, batch, frames, size)
            det = detector_counts(model, batch, frames)
            res["split_train_cp_on"] = bb["train_cp_on"] + det["train"]
            res["split_train_cp_off"] = bb["train_cp_off"] + det["train"]
            res["split_forward"] = bb["inference"] + det["inference"]
    res["match"] = all(res[f"whole_{k}"] == res[f"split_{k}"] for k in ("train_cp_on", "train_cp_off", "forward"))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(SEED_CONFIG))
    ap.add_argument("--tiny", action="store_true", help="the --tiny model of train_step.py (64 frames, 64 px)")
    ap.add_argument("--frames", type=int, help="window length (default 768; --tiny 64)")
    ap.add_argument("--size", type=int, help="frame side (default 160; --tiny 64)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--scaling-frames", type=int, nargs="*", help="extra window lengths for the linearity check (default 64 128 256; --tiny 32)"
    )
    ap.add_argument("--check-frames", type=int, help="window length of the whole-model check (default 32; --tiny 32)")
    ap.add_argument("--no-check", action="store_true", help="skip the whole-model CPU check")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--name", default="flops")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    frames = args.frames or (64 if args.tiny else 768)
    size = args.size or (64 if args.tiny else 160)
    scaling = args.scaling_frames if args.scaling_frames is not None else ([32] if args.tiny else [64, 128, 256])
    t0 = time.perf_counter()
    cfg, model = load(args, frames)
    rows = []
    for b in args.batches:
        bb = backbone_counts(model, b, frames, size)
        det = detector_counts(model, b, frames)
        analytic = analytic_backbone_forward(cfg, frames, size, b)
        rows.append(
            {
                "batch": b,
                "frames": frames,
                "size": size,
                "forward": bb["inference"] + det["inference"],
                "train_step_cp_on": bb["train_cp_on"] + det["train"],
                "train_step_cp_off": bb["train_cp_off"] + det["train"],
                "backbone": {k: v for k, v in bb.items()},
                "detector": det,
                "backbone_forward_analytic": analytic,
                "backbone_forward_matches_analytic": analytic == bb["forward"],
            }
        )
    scaling_rows = []
    for f in sorted(set(scaling) | {frames}):
        _, m = load(args, f)
        fwd = backbone_counts(m, 1, f, size)["forward"]
        scaling_rows.append({"frames": f, "backbone_forward": fwd, "per_frame": fwd / f})
    per_frame = {r["per_frame"] for r in scaling_rows}
    check = None if args.no_check else whole_model_check(args, args.check_frames or 32, size, 1)
    r1 = next((r for r in rows if r["batch"] == 1), rows[0])
    per_window = {k: r1[k] / r1["batch"] / 1e12 for k in ("forward", "train_step_cp_on", "train_step_cp_off")}
    result = {
        "benchmark": "flops",
        "command": " ".join(["python", "benchmarks/flops.py", *argv]),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info("cpu"),
        "seconds": time.perf_counter() - t0,
        "setup": {"config": str(Path(args.config).resolve().relative_to(ROOT)), "tiny": args.tiny, "parameters": model.count_parameters()},
        "method": "FlopCounterMode; backbone on the meta device at full shape, detector on CPU with real tensors "
        "at full length; FLOPs = 2 x multiply-adds of matmul/conv/attention",
        "rows": rows,
        "tflop_per_window": per_window,
        "scaling": scaling_rows,
        "linear_in_frames": max(per_frame) - min(per_frame) <= 1e-9 * max(per_frame),
        "check": check,
        "issue_claim": ISSUE_CLAIM,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(result) + "\n")
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    t = 1e12
    lines = [
        f"# FLOPs per step: {'tiny model' if r['setup']['tiny'] else 'VideoMAE-S + TIA adapters (seed model)'}",
        "",
        f"- command: `{r['command']}`",
        f"- date: {r['date']}; machine: {r['machine']['platform']}, {r['machine']['cpu']}, torch {r['machine']['torch']}",
        f"- config: `{r['setup']['config']}`{' with --tiny overrides' if r['setup']['tiny'] else ''}; "
        f"parameters {r['setup']['parameters']}",
        f"- method: {r['method']}. One multiply-add = 2 FLOPs; elementwise ops, norms, softmax and the optimizer are not counted.",
        "- train step = forward + backward (backbone frozen except the adapters, so its weights get no gradient; "
        "the gradient still flows through every block because each block has an adapter). "
        "cp on = with the checkpointing recompute (what runs), cp off = useful FLOPs.",
        "",
        "| batch | frames x px | forward TFLOP | train step TFLOP, cp on | train step TFLOP, cp off (useful) | "
        "backbone share of fwd | backbone fwd = closed form |",
        "|---:|---|---:|---:|---:|---:|:---:|",
    ]
    for row in r["rows"]:
        share = row["backbone"]["inference"] / row["forward"]
        lines.append(
            f"| {row['batch']} | {row['frames']}x{row['size']} | {row['forward'] / t:.4g} | "
            f"{row['train_step_cp_on'] / t:.4g} | {row['train_step_cp_off'] / t:.4g} | {100 * share:.2f}% | "
            f"{'yes' if row['backbone_forward_matches_analytic'] else 'NO'} |"
        )
    b1 = r["rows"][0]
    ops = b1["backbone"]["forward_by_op"]
    lin = sum(v for k, v in ops.items() if k in ("aten.addmm", "aten.mm"))
    att = sum(v for k, v in ops.items() if "bmm" in k or "attention" in k)
    conv = sum(v for k, v in ops.items() if "conv" in k)
    lines += [
        "",
        f"Backbone forward by operator, batch {b1['batch']}: linear layers {lin / t:.4g} TFLOP, "
        f"attention (QK^T and AV) {att / t:.4g}, convolutions (patch embedding, adapter convs) {conv / t:.4g}.",
        "",
        "Linearity in the window length (backbone forward, batch 1):",
        "",
        "| frames | TFLOP | GFLOP per frame |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {s['frames']} | {s['backbone_forward'] / t:.4g} | {s['per_frame'] / 1e9:.4f} |" for s in r["scaling"]]
    lines += ["", f"Exactly linear: {'yes' if r['linear_in_frames'] else 'no'}."]
    c = r.get("check")
    if c:
        lines += [
            "",
            f"Check at {c['frames']} frames x {c['size']} px, batch {c['batch']}: the whole detector run for real on the "
            "CPU in one FlopCounterMode vs the split count (meta backbone + CPU detector):",
            "",
            "| quantity | whole model (TFLOP) | split (TFLOP) |",
            "|---|---:|---:|",
        ]
        for k in ("forward", "train_cp_on", "train_cp_off"):
            lines.append(f"| {k} | {c['whole_' + k] / t:.6g} | {c['split_' + k] / t:.6g} |")
        lines += ["", f"Identical: {'yes' if c['match'] else 'NO'}."]
    if not r["setup"]["tiny"]:
        pw = r["tflop_per_window"]
        lines += [
            "",
            f"Issue 9's estimate: about {r['issue_claim']['forward_tflop_per_window']} TFLOP forward per window and roughly "
            f"{r['issue_claim']['train_step_tflop_per_window_with_cp']} TFLOP per training step with checkpointing. "
            f"Counted: {pw['forward']:.3g} TFLOP forward and {pw['train_step_cp_on']:.3g} TFLOP per step with "
            f"checkpointing ({pw['train_step_cp_off']:.3g} without). The estimate counts the linear layers only "
            f"({lin / b1['batch'] / t:.3g} TFLOP per window); attention inside each 16-frame chunk (800 tokens) "
            f"adds {att / b1['batch'] / t:.3g}.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
