"""OpenTAD parity harness: ``python -m adatad.compat.opentad_parity FIXTURE_DIR --out OUT.pt``.

Builds the adatad detector from the fixture's OpenTAD ``model_cfg.json``, loads ``state_dict.pt`` through the
OpenTAD key mapping (a missing or unused tensor is an error), recomputes every key of the contract in
``tests/fixtures/opentad/README.md`` on ``inputs.pt`` (float32, CPU, one thread, no AMP), saves them to OUT.pt and,
when ``outputs.pt`` exists, prints max absolute / relative error per key and exits 1 if any exceeds its
tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

# tolerances of the contract
TOL_FEATURES = 1e-5  # absolute: features and logits
TOL_LOSS = 1e-6  # relative
TOL_GRAD = 1e-4  # relative (to the reference gradient's max magnitude)
TOL_NMS = 1e-4  # grid-unit segments and scores
TOL_SECONDS = (0.01, 1e-4)  # one unit in the last rounded decimal: segments, scores

ADATAD_BACKBONE = "backbone."
OPENTAD_BACKBONE = "backbone.model.backbone."
#: gradients of ``losses_train["cost"]`` w.r.t. the backbone's trainable parameters, by OpenTAD name:
#: ``adapter_grads`` (VisionTransformerAdapter: every ``.adapter.`` parameter) or ``ladder_grads``
#: (VisionTransformerLadder: every ``ladders.*`` parameter); a fixture has one of them
GRAD_KEYS = ("adapter_grads", "ladder_grads")


def build_from_fixture(fixture: Path):
    from adatad.compat.opentad import opentad_config_to_adatad
    from adatad.engine.checkpoint import load_detector_state
    from adatad.models.detector import build_detector

    model_cfg = json.loads((fixture / "model_cfg.json").read_text())
    post_cfg = json.loads((fixture / "post_cfg.json").read_text())
    cfg = opentad_config_to_adatad(model_cfg, post_cfg)
    model = build_detector(cfg, load_pretrained=False)
    state = torch.load(fixture / "state_dict.pt", map_location="cpu", weights_only=True)
    load_detector_state(model, state, str(fixture / "state_dict.pt"))
    return model, cfg, post_cfg


def _zero_dropout(model: nn.Module) -> None:
    """Train mode with every dropout and drop-path rate set to 0 (the contract's ``losses_train``)."""
    for m in model.modules():
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)):
            m.p = 0.0
        for attr in ("drop_prob", "p"):
            if hasattr(m, attr) and type(m).__name__ in ("DropPath", "AffineDropPath"):
                setattr(m, attr, 0.0)


def compute(fixture: Path) -> dict:
    from adatad.models.postprocess import batched_nms, video_detections, window_candidates

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, cfg, post_cfg = build_from_fixture(fixture)
    inputs = torch.load(fixture / "inputs.pt", map_location="cpu", weights_only=True)
    x = inputs["inputs"]
    if x.dim() == 6:  # OpenTAD's [B, 1, 3, T, H, W]
        x = x.squeeze(1)
    masks = inputs["masks"].bool()
    gt_segments, gt_labels = inputs["gt_segments"], inputs["gt_labels"]
    metas = inputs["metas"]
    out: dict = {}

    model.eval()
    with torch.no_grad():
        backbone_feats, fpn_feats, fpn_masks = model.features(x, masks)
        cls_logits, reg = model.rpn_head(fpn_feats, fpn_masks)
        out["backbone_feats"] = backbone_feats
        out["fpn_feats"] = list(fpn_feats)
        out["fpn_masks"] = list(fpn_masks)
        out["head_cls_logits"] = list(cls_logits)
        out["head_reg"] = list(reg)
        out["losses_eval"] = model.rpn_head.losses(cls_logits, reg, fpn_masks, gt_segments, gt_labels)
        cands = window_candidates(
            cls_logits,
            reg,
            fpn_masks,
            model.rpn_head.strides,
            pre_nms_thresh=post_cfg["pre_nms_thresh"],
            pre_nms_topk=post_cfg["pre_nms_topk"],
        )
    out["pre_nms_candidates"] = cands
    nms_cfg = post_cfg["nms"]
    grid = []
    for c in cands:
        s, sc, lab = batched_nms(c["segments"].float(), c["scores"].float(), c["labels"].long(), **nms_cfg)
        grid.append({"segments": s, "scores": sc, "labels": lab})
    out["det_nms_grid"] = grid
    per_video: dict[str, list] = defaultdict(list)
    for c, meta in zip(cands, metas):
        per_video[meta["video_name"]].append((c, meta))
    out["det_final_tensors"] = {
        video: video_detections([w[0] for w in wins], [w[1] for w in wins], nms_cfg) for video, wins in per_video.items()
    }

    model.train()
    _zero_dropout(model)
    model.zero_grad(set_to_none=True)
    _, fpn_feats, fpn_masks = model.features(x, masks)
    cls_logits, reg = model.rpn_head(fpn_feats, fpn_masks)
    losses = model.rpn_head.losses(cls_logits, reg, fpn_masks, gt_segments, gt_labels)
    out["losses_train"] = {k: v.detach() for k, v in losses.items()}
    out["loss_normalizer_after"] = model.rpn_head.loss_normalizer.detach().clone()
    losses["cost"].backward()
    from adatad.models.ladder import LadderBackbone

    if isinstance(model.backbone, LadderBackbone):  # the side ladder's parameters: the only trainable backbone part
        out["ladder_grads"] = {
            OPENTAD_BACKBONE + name: p.grad.detach().clone()
            for name, p in model.backbone.named_parameters()
            if model.backbone.is_adapter_param(name) and p.grad is not None
        }
    else:
        out["adapter_grads"] = {
            OPENTAD_BACKBONE + name[len(ADATAD_BACKBONE) :]: p.grad.detach().clone()
            for name, p in model.named_parameters()
            if ".adapter." in name and p.grad is not None
        }
    out["losses_eval"] = {k: v.detach() for k, v in out["losses_eval"].items()}
    return out


# ------------------------------------------------------------------------------------------- comparison
def _abs_rel(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    a, b = a.double(), b.double()
    if a.shape != b.shape:
        return float("inf"), float("inf")
    if a.numel() == 0:
        return 0.0, 0.0
    diff = (a - b).abs().max().item()
    return diff, diff / max(b.abs().max().item(), 1e-12)


def _sorted_dets(d: dict) -> torch.Tensor:
    """Detections as rows (label, start, end, score), sorted lexicographically: a multiset comparison."""
    rows = torch.cat(
        [d["labels"].double().reshape(-1, 1), d["segments"].double().reshape(-1, 2), d["scores"].double().reshape(-1, 1)], dim=1
    )
    if rows.shape[0] == 0:
        return rows
    order = sorted(range(rows.shape[0]), key=lambda i: tuple(rows[i].tolist()))
    return rows[order]


def _det_errors(mine: dict, ref: dict) -> tuple[float, float, str]:
    a, b = _sorted_dets(mine), _sorted_dets(ref)
    if a.shape != b.shape:
        return float("inf"), float("inf"), f"{a.shape[0]} vs {b.shape[0]} detections"
    if a.shape[0] == 0:
        return 0.0, 0.0, "0 detections"
    if not torch.equal(a[:, 0], b[:, 0]):
        return float("inf"), float("inf"), "labels differ"
    return (a[:, 1:3] - b[:, 1:3]).abs().max().item(), (a[:, 3] - b[:, 3]).abs().max().item(), f"{a.shape[0]} detections"


def compare(mine: dict, ref: dict) -> list[tuple[str, float, float, float, bool, str]]:
    """-> rows (key, max abs err, max rel err, tolerance, ok, note)."""
    rows = []

    def add(key, abs_err, rel_err, tol, use_rel=False, note=""):
        err = rel_err if use_rel else abs_err
        rows.append((key, abs_err, rel_err, tol, err <= tol, note))

    a, r = _abs_rel(mine["backbone_feats"], ref["backbone_feats"])
    add("backbone_feats", a, r, TOL_FEATURES)
    for key in ("fpn_feats", "head_cls_logits", "head_reg"):
        errs = [_abs_rel(m, f) for m, f in zip(mine[key], ref[key])]
        n_ok = len(mine[key]) == len(ref[key])
        add(key, max(e[0] for e in errs) if n_ok else float("inf"), max(e[1] for e in errs), TOL_FEATURES, note=f"{len(ref[key])} levels")
    same = len(mine["fpn_masks"]) == len(ref["fpn_masks"]) and all(
        torch.equal(m.bool(), f.bool()) for m, f in zip(mine["fpn_masks"], ref["fpn_masks"])
    )
    rows.append(("fpn_masks", 0.0 if same else float("inf"), 0.0 if same else float("inf"), 0.0, same, "exact"))
    for key in ("losses_eval", "losses_train"):
        for term in ("cls_loss", "reg_loss", "cost"):
            a, r = _abs_rel(mine[key][term].reshape(1), ref[key][term].reshape(1))
            add(f"{key}.{term}", a, r, TOL_LOSS, use_rel=True)
    a, r = _abs_rel(mine["loss_normalizer_after"].reshape(1).float(), ref["loss_normalizer_after"].reshape(1).float())
    add("loss_normalizer_after", a, r, TOL_LOSS, use_rel=True)
    for key in GRAD_KEYS:
        if key not in ref:
            continue
        names, got = set(ref[key]), set(mine.get(key, {}))
        if names != got:
            rows.append(
                (
                    key,
                    float("inf"),
                    float("inf"),
                    TOL_GRAD,
                    False,
                    f"names differ: missing {sorted(names - got)[:3]}, extra {sorted(got - names)[:3]}",
                )
            )
        else:
            errs = [_abs_rel(mine[key][n], ref[key][n]) for n in names]
            add(key, max(e[0] for e in errs), max(e[1] for e in errs), TOL_GRAD, use_rel=True, note=f"{len(names)} tensors")
    for key in ("pre_nms_candidates", "det_nms_grid"):
        seg_err, score_err, notes = 0.0, 0.0, []
        for m, f in zip(mine[key], ref[key]):
            s, sc, note = _det_errors(m, f)
            seg_err, score_err = max(seg_err, s), max(score_err, sc)
            notes.append(note.split()[0])
        if len(mine[key]) != len(ref[key]):
            seg_err = score_err = float("inf")
        err = max(seg_err, score_err)
        rows.append((key, err, err, TOL_NMS, err <= TOL_NMS, "per window: " + "/".join(notes)))
    seg_err, score_err, notes = 0.0, 0.0, []
    if set(mine["det_final_tensors"]) != set(ref["det_final_tensors"]):
        seg_err = score_err = float("inf")
    else:
        for video in sorted(ref["det_final_tensors"]):
            s, sc, note = _det_errors(mine["det_final_tensors"][video], ref["det_final_tensors"][video])
            seg_err, score_err = max(seg_err, s), max(score_err, sc)
            notes.append(f"{video}: {note}")
    ok = seg_err <= TOL_SECONDS[0] + 1e-9 and score_err <= TOL_SECONDS[1] + 1e-9
    rows.append(("det_final_tensors", seg_err, score_err, TOL_SECONDS[0], ok, f"segments/scores errors; {'; '.join(notes)}"))
    return rows


def format_rows(rows) -> str:
    lines = [f"{'key':<24} {'max abs':>11} {'max rel':>11} {'tol':>8}  ok  note", "-" * 90]
    for key, a, r, tol, ok, note in rows:
        lines.append(f"{key:<24} {a:>11.3e} {r:>11.3e} {tol:>8.0e}  {'yes' if ok else 'NO '} {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adatad.compat.opentad_parity", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("fixture", type=Path, help="fixture folder (model_cfg.json, post_cfg.json, state_dict.pt, inputs.pt)")
    parser.add_argument("--out", type=Path, required=True, help="where to save adatad's outputs (.pt)")
    args = parser.parse_args(argv)
    for name in ("model_cfg.json", "post_cfg.json", "state_dict.pt", "inputs.pt"):
        if not (args.fixture / name).is_file():
            print(f"opentad_parity: {args.fixture / name} is missing", file=sys.stderr)
            return 2
    mine = compute(args.fixture)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(mine, args.out)
    ref_path = args.fixture / "outputs.pt"
    if not ref_path.is_file():
        print(f"saved {args.out}; no reference outputs.pt to compare with")
        return 0
    ref = torch.load(ref_path, map_location="cpu", weights_only=True)
    rows = compare(mine, ref)
    print(f"OpenTAD parity: {args.fixture}")
    print(format_rows(rows))
    bad = [r[0] for r in rows if not r[4]]
    if bad:
        print(f"FAILED: {', '.join(bad)}")
        return 1
    print("all keys within tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
