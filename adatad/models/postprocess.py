"""Test-time post-processing: per-window candidates, seconds conversion, per-video (soft-)NMS, result JSON.

Semantics follow OpenTAD (``opentad/models/detectors/single_stage.py::post_processing``,
``opentad/models/utils/post_processing/{utils.py,nms/nms.py,nms/nms_cpu.cpp}``,
``opentad/cores/test_engine.py::gather_ddp_results``) in plain torch, without compiled extensions:

* per window: sigmoid scores of valid points, flattened point-major (``index = point * K + class``), kept above
  ``pre_nms_thresh``, top ``pre_nms_topk``; segments ``t - d0*stride, t + d1*stride`` in grid units, not clamped;
* seconds: ``(x * snippet_stride + window_start_frame + offset_frames) / fps`` clamped to ``[0, duration]``,
  segments rounded to 2 decimals and scores to 4 (Python ``round``), windows of a video concatenated;
* per video: ``batched_nms`` = Gaussian soft-NMS per class (``multiclass``), or class-agnostic with optional
  voting. **Voting is ignored when multiclass is on**, exactly as in OpenTAD. Each class and then the video are
  capped at ``max_seg_num`` by score.

The soft-NMS reproduces the C++ loop step by step (including the swap-based tie-breaking and the ``min_score``
pruning), vectorised across classes: all classes advance one selection per step as rows of a padded batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = [
    "window_candidates",
    "batched_nms",
    "soft_nms",
    "hard_nms",
    "seg_voting",
    "to_seconds",
    "video_detections",
    "detection_records",
    "to_result_json",
]


# --------------------------------------------------------------------------- per-window decoding


@torch.no_grad()
def window_candidates(
    cls_logits: Sequence[torch.Tensor],
    reg: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor],
    strides: Sequence[int],
    pre_nms_thresh: float = 0.001,
    pre_nms_topk: int = 2000,
) -> list[dict[str, torch.Tensor]]:
    """Decode head outputs of a batch of windows into candidates, per sample (on the CPU).

    ``cls_logits``: per level ``[B, K, T_l]`` raw logits; ``reg``: per level ``[B, 2, T_l]`` offsets in strides;
    ``masks``: per level ``[B, T_l]`` bool. Returns per sample ``dict(segments [N, 2] float32 grid units,
    scores [N] float32, labels [N] int64)``, sorted by descending score. With one class, every valid point is
    kept (no threshold, no top-k), as in OpenTAD.
    """
    if not (len(cls_logits) == len(reg) == len(masks) == len(strides)):
        raise ValueError(f"{len(cls_logits)} / {len(reg)} / {len(masks)} levels for {len(strides)} strides")
    device = cls_logits[0].device
    t = torch.cat([torch.arange(c.shape[-1], dtype=torch.float32, device=device) * float(s) for c, s in zip(cls_logits, strides)])
    st = torch.cat([torch.full((c.shape[-1],), float(s), dtype=torch.float32, device=device) for c, s in zip(cls_logits, strides)])
    off = torch.cat(list(reg), dim=-1).permute(0, 2, 1)  # [B,P,2]
    proposals = torch.stack((t[None] - off[:, :, 0] * st[None], t[None] + off[:, :, 1] * st[None]), dim=-1)
    scores = torch.cat(list(cls_logits), dim=-1).permute(0, 2, 1).sigmoid()  # [B,P,K]
    valid = torch.cat(list(masks), dim=1).bool()
    num_classes = scores.shape[-1]
    out = []
    for prop, score, m in zip(proposals, scores, valid):
        segs = prop[m].detach().cpu()
        sc = score[m].detach().cpu()
        if num_classes == 1:
            out.append(dict(segments=segs, scores=sc.squeeze(-1).contiguous(), labels=torch.zeros(sc.shape[0], dtype=torch.long)))
            continue
        prob = sc.flatten()
        keep = prob > pre_nms_thresh
        prob = prob[keep]
        idx = keep.nonzero(as_tuple=True)[0]
        k = min(int(pre_nms_topk), idx.numel())
        prob, order = prob.sort(descending=True)
        prob = prob[:k].clone()
        idx = idx[order[:k]].clone()
        out.append(
            dict(
                segments=segs[torch.div(idx, num_classes, rounding_mode="floor")],
                scores=prob,
                labels=torch.fmod(idx, num_classes),
            )
        )
    return out


# --------------------------------------------------------------------------- NMS


def _pad_groups(segs: torch.Tensor, scores: torch.Tensor, groups: list[torch.Tensor], fill: float):
    """Pack index groups into padded ``[G, N]`` rows: x1, x2, score (pad ``fill``), original index (pad -1)."""
    G = len(groups)
    n = torch.tensor([g.numel() for g in groups], dtype=torch.long)
    N = int(n.max()) if G else 0
    x1 = segs.new_zeros((G, N))
    x2 = segs.new_zeros((G, N))
    sc = scores.new_full((G, N), fill)
    ind = torch.full((G, N), -1, dtype=torch.long)
    for r, g in enumerate(groups):
        k = g.numel()
        x1[r, :k] = segs[g, 0]
        x2[r, :k] = segs[g, 1]
        sc[r, :k] = scores[g]
        ind[r, :k] = g
    return x1, x2, sc, ind, n


def _weights(ovr: torch.Tensor, iarea: torch.Tensor, method: int, iou_threshold, sigma, t1, t2) -> torch.Tensor:
    """Soft-NMS decay of the C++ op for overlaps ``ovr``; float32 arithmetic, exp evaluated in float64 and rounded
    (closest to the C library's correctly rounded ``expf``)."""
    f32 = torch.float32
    if method == 0:
        return torch.where(ovr >= torch.tensor(iou_threshold, dtype=f32), 0.0, 1.0).to(f32)
    if method == 1:
        return torch.where(ovr >= torch.tensor(iou_threshold, dtype=f32), 1 - ovr, torch.ones_like(ovr))
    gauss = torch.exp((-(ovr * ovr) / torch.tensor(sigma, dtype=f32)).double()).to(f32)
    if method == 2:
        return gauss
    if method == 3:
        thr = torch.tensor(t1, dtype=f32) + torch.tensor(t2, dtype=f32) * iarea
        return torch.where(ovr >= thr, gauss, torch.ones_like(ovr))
    raise ValueError(f"soft-NMS method must be 0 (hard), 1 (linear), 2 (gaussian) or 3 (improved gaussian), got {method}")


def _prune_row(state: torch.Tensor, row: int, i: int, n: int, bad: torch.Tensor) -> int:
    """Drop the ``bad`` positions (``i+1 .. n-1``) of one row exactly as the C++ loop does (swap the last
    remaining element into each hole, scanning forward); returns the new length."""
    region_bad = bad[i + 1 : n]
    good = ~region_bad
    K = int(good.sum())
    perm = torch.arange(state.shape[-1])
    holes = (i + 1) + torch.nonzero(region_bad[:K]).flatten()
    movers = (i + 1 + K) + torch.nonzero(good[K:]).flatten()
    perm[holes] = movers.flip(0)
    state[row] = state[row][:, perm]
    new_n = i + 1 + K
    state[row, 2, new_n:] = float("-inf")
    return new_n


def soft_nms(
    segs: torch.Tensor,
    scores: torch.Tensor,
    groups: list[torch.Tensor],
    iou_threshold: float = 0.0,
    sigma: float = 0.5,
    min_score: float = 0.0,
    method: int = 2,
    t1: float = 0.0,
    t2: float = 0.0,
    max_num: int = 0,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Soft-NMS (OpenTAD's ``softnms_1d_cpu``) run independently on every index group, all groups in parallel.

    ``segs [N, 2]`` float32, ``scores [N]`` float32, ``groups``: list of int64 index tensors into them.
    Returns per group ``(segments [M, 2], scores [M], indices [M])`` in selection order, where ``indices`` are
    positions in ``segs``. Per step the maximum remaining score is selected (first position on ties, positions
    being permuted by the C++ swaps), the others decay by ``exp(-iou^2 / sigma)`` (method 2), and those falling
    below ``min_score`` are dropped. ``max_num > 0`` stops each group after that many selections: selected scores
    never increase, so these are exactly the first ``max_num`` of the full run (what OpenTAD keeps).
    """
    segs = segs.float().cpu()
    scores = scores.float().cpu()
    x1, x2, sc, ind, n = _pad_groups(segs, scores, groups, float("-inf"))
    G, N = sc.shape
    if G == 0 or N == 0:
        return [(segs.new_zeros((0, 2)), scores.new_zeros((0,)), torch.zeros(0, dtype=torch.long)) for _ in groups]
    area = (x2 - x1) + 1e-6
    # float32 state (x1, x2, score, area) permuted by the C++ swaps, with the original indices alongside
    fstate = torch.stack((x1, x2, sc, area), dim=1)  # [G,4,N]
    istate = ind.clone()  # [G,N]
    dets = torch.zeros((G, 3, N), dtype=torch.float32)
    dind = torch.full((G, N), -1, dtype=torch.long)
    n = n.clone()
    rows = torch.arange(G)
    prune = min_score > 0
    ms = torch.tensor(min_score, dtype=torch.float32)
    i = 0
    limit = max_num if max_num > 0 else N
    while i < limit:
        n_max = int(n.max())
        if i >= n_max:
            break
        active = n > i  # [G]
        m = fstate[:, 2, i:n_max].argmax(dim=1) + i
        m = torch.where(active, m, torch.full_like(m, i))
        # swap positions i and m in every row
        col_i = fstate[:, :, i].clone()
        col_m = fstate[rows, :, m]
        fstate[:, :, i] = col_m
        fstate[rows, :, m] = col_i
        ind_i = istate[:, i].clone()
        ind_m = istate[rows, m]
        istate[:, i] = ind_m
        istate[rows, m] = ind_i
        dets[:, :, i] = col_m[:, :3]
        dind[:, i] = ind_m
        if i + 1 < n_max:
            ix1, ix2, iarea = col_m[:, 0:1], col_m[:, 1:2], col_m[:, 3:4]
            rest = fstate[:, :, i + 1 : n_max]
            inter = (torch.minimum(ix2, rest[:, 1]) - torch.maximum(ix1, rest[:, 0])).clamp(min=0)
            ovr = inter / (iarea + rest[:, 3] - inter)
            w = _weights(ovr, iarea, method, iou_threshold, sigma, t1, t2)
            pos = torch.arange(i + 1, n_max)
            alive = (pos[None, :] < n[:, None]) & active[:, None]
            new_sc = torch.where(alive, rest[:, 2] * w, rest[:, 2])
            fstate[:, 2, i + 1 : n_max] = new_sc
            if prune:
                bad_all = alive & (new_sc < ms)
                if bool(bad_all.any()):
                    for r in torch.nonzero(bad_all.any(dim=1)).flatten().tolist():
                        bad = torch.zeros(N, dtype=torch.bool)
                        bad[i + 1 : n_max] = bad_all[r]
                        # permute the float state and the index row together
                        both = torch.cat((fstate[r].double(), istate[r][None].double()), dim=0)[None]
                        n_r = _prune_row(both, 0, i, int(n[r]), bad)
                        fstate[r] = both[0, :4].float()
                        istate[r] = both[0, 4].long()
                        n[r] = n_r
        i += 1
    out = []
    for r in range(G):
        k = min(int(n[r]), limit)
        out.append((dets[r, :2, :k].t().contiguous(), dets[r, 2, :k].clone(), dind[r, :k].clone()))
    return out


def hard_nms(segs: torch.Tensor, scores: torch.Tensor, groups: list[torch.Tensor], iou_threshold: float) -> list[torch.Tensor]:
    """Greedy NMS (OpenTAD's ``nms_1d_cpu``) per index group, groups in parallel. Returns per group the kept
    positions in ``segs``, by descending score (``torch.sort`` order, as the C++ op)."""
    segs = segs.float().cpu()
    scores = scores.float().cpu()
    ordered = [g[scores[g].sort(descending=True)[1]] for g in groups]
    x1, x2, _, ind, n = _pad_groups(segs, scores, ordered, 0.0)
    G, N = x1.shape
    if G == 0 or N == 0:
        return [torch.zeros(0, dtype=torch.long) for _ in groups]
    area = (x2 - x1) + 1e-6
    pos = torch.arange(N)
    suppressed = pos[None, :] >= n[:, None]
    thr = torch.tensor(iou_threshold, dtype=torch.float32)
    for j in range(N - 1):
        keep_j = ~suppressed[:, j]
        if not bool(keep_j.any()):
            continue
        inter = (torch.minimum(x2[:, j : j + 1], x2[:, j + 1 :]) - torch.maximum(x1[:, j : j + 1], x1[:, j + 1 :])).clamp(min=0)
        ovr = inter / (area[:, j : j + 1] + area[:, j + 1 :] - inter)
        suppressed[:, j + 1 :] |= keep_j[:, None] & (ovr >= thr)
    return [ind[r][~suppressed[r]] for r in range(G)]


def seg_voting(nms_segs: torch.Tensor, all_segs: torch.Tensor, all_scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Segment voting: each kept segment becomes the score-weighted mean of all input segments whose IoU with it is
    ``>= iou_threshold`` (OpenTAD's ``seg_voting``; its ``score_offset`` is computed there but never used).

    A kept segment of zero length has no voter (its IoU with itself is 0/0): OpenTAD returns NaN for it, a
    detection that never matches a ground truth; it is returned unchanged here, which scores the same in the
    evaluation (a zero-length detection has IoU 0 with every instance) and keeps the predictions file finite."""
    left = torch.maximum(nms_segs[:, None, 0], all_segs[None, :, 0])
    right = torch.minimum(nms_segs[:, None, 1], all_segs[None, :, 1])
    inter = (right - left).clamp(min=0)
    len_a = nms_segs[:, None, 1] - nms_segs[:, None, 0]
    len_b = all_segs[None, :, 1] - all_segs[None, :, 0]
    iou = inter / (len_a + len_b - inter)
    w = (iou >= iou_threshold).to(all_scores.dtype) * all_scores[None, :]
    total = torch.sum(w, dim=1, keepdim=True)
    return torch.where(total > 0, (w / total) @ all_segs, nms_segs)


def batched_nms(
    segments: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    iou_threshold: float = 0.0,
    min_score: float = 0.0,
    max_seg_num: int = 100,
    use_soft_nms: bool = True,
    multiclass: bool = True,
    sigma: float = 0.5,
    voting_thresh: float = 0.0,
    method: int = 2,
    t1: float = 0.0,
    t2: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """OpenTAD's ``batched_nms``: ``segments [N, 2]``, ``scores [N]``, ``labels [N]`` -> the kept
    ``(segments [M, 2] float32, scores [M] float32, labels [M])`` sorted by descending score, ``M <= max_seg_num``.

    ``multiclass``: NMS per class (classes processed in ascending label order), each class capped at
    ``max_seg_num``, voting ignored. Otherwise one class-agnostic pass, then voting when ``voting_thresh > 0``.
    ``use_soft_nms`` selects soft-NMS (``method`` 2 Gaussian with ``sigma``; 0 hard, 1 linear, 3 improved
    Gaussian with ``t1``/``t2``) or greedy NMS at ``iou_threshold`` (after dropping scores ``<= min_score`` when
    ``min_score > 0``). Note: OpenTAD's default ``sigma`` is 0.5; configs always pass it.
    """
    segs = torch.as_tensor(segments).float().cpu().reshape(-1, 2)
    scores = torch.as_tensor(scores).float().cpu().reshape(-1)
    labels = torch.as_tensor(labels).cpu().reshape(-1)
    if not (segs.shape[0] == scores.shape[0] == labels.shape[0]):
        raise ValueError(f"batched_nms: {segs.shape[0]} segments, {scores.shape[0]} scores, {labels.shape[0]} labels")
    if segs.shape[0] == 0:
        return torch.zeros([0, 2]), torch.zeros([0]), torch.zeros([0], dtype=labels.dtype)

    if multiclass:
        groups = [torch.where(labels == c)[0] for c in torch.unique(labels)]
    else:
        groups = [torch.arange(segs.shape[0])]

    if use_soft_nms:
        res = soft_nms(segs, scores, groups, iou_threshold, sigma, min_score, method, t1, t2, max_num=max_seg_num)
        parts = []
        for s, sc, idx in res:
            k = min(idx.numel(), max_seg_num) if max_seg_num > 0 else idx.numel()
            parts.append((s[:k], sc[:k], labels[idx[:k]]))
    else:
        s_all, sc_all, lab_all = segs, scores, labels
        if min_score > 0:  # greedy NMS never changes scores: OpenTAD filters first
            keep = scores > min_score
            s_all, sc_all, lab_all = segs[keep], scores[keep], labels[keep]
            if multiclass:
                groups = [torch.where(lab_all == c)[0] for c in torch.unique(lab_all)]
            else:
                groups = [torch.arange(s_all.shape[0])]
        kept = hard_nms(s_all, sc_all, groups, iou_threshold)
        parts = []
        for idx in kept:
            if max_seg_num > 0:
                idx = idx[:max_seg_num]
            parts.append((s_all[idx], sc_all[idx], lab_all[idx]))
    if not parts:
        return torch.zeros([0, 2]), torch.zeros([0]), torch.zeros([0], dtype=labels.dtype)
    new_segs = torch.cat([p[0] for p in parts])
    new_scores = torch.cat([p[1] for p in parts])
    new_labels = torch.cat([p[2] for p in parts])
    if not multiclass and voting_thresh > 0:
        new_segs = seg_voting(new_segs, segs, scores, voting_thresh)

    _, order = new_scores.sort(descending=True)
    k = min(max_seg_num, new_segs.shape[0])
    order = order[:k]
    return new_segs[order], new_scores[order], new_labels[order]


# --------------------------------------------------------------------------- seconds, videos, JSON


def _round_list(values: list, ndigits: int) -> list:
    return [round(v, ndigits) for v in values]


def to_seconds(segments: torch.Tensor, meta: Mapping, decimals: int | None = 2) -> torch.Tensor:
    """Grid units of one window -> seconds: ``(x * snippet_stride + window_start_frame + offset_frames) / fps``
    (or ``x / resize_length * duration`` when ``fps == -1``), clamped to ``[0, duration]`` in float32 as OpenTAD.

    ``decimals``: round with Python's ``round`` (OpenTAD's rounding) and return float64 holding exactly those
    decimals; ``None`` returns the unrounded float32 values.
    """
    try:
        fps = float(meta["fps"])
        duration = float(meta["duration"])
        if fps == -1:
            seg = segments.float() / float(meta["resize_length"]) * duration
        else:
            stride = float(meta["snippet_stride"])
            start = float(meta.get("window_start_frame", 0) or 0)
            offset = float(meta.get("offset_frames", 0) or 0)
            seg = (segments.float() * stride + start + offset) / fps
    except KeyError as e:
        raise KeyError(f"video {meta.get('video_name', '?')}: meta lacks {e}; needed to convert to seconds") from None
    seg = seg.detach().cpu().clone()
    if seg.shape[0] > 0:
        seg[seg <= 0.0] *= 0.0
        hi = seg >= duration
        seg[hi] = seg[hi] * 0.0 + duration
    if decimals is None:
        return seg
    flat = _round_list(seg.reshape(-1).tolist(), decimals)
    return torch.tensor(flat, dtype=torch.float64).reshape(seg.shape)


def video_detections(
    windows: Sequence[Mapping[str, torch.Tensor]],
    metas: Sequence[Mapping],
    nms_cfg: Mapping | None,
) -> dict[str, torch.Tensor]:
    """Merge the candidate dicts of all windows of one video (grid units, from :func:`window_candidates`) and
    run the per-video NMS -> ``dict(segments [N, 2], scores [N], labels [N])`` in seconds.

    As OpenTAD: each window is converted to seconds and rounded (2 decimals segments, 4 scores), the windows are
    concatenated in the given order (as float32), ``batched_nms(**nms_cfg)`` runs (skipped when ``nms_cfg`` is
    None), and the result is rounded again. Segments and scores are float64 holding the rounded decimals.
    """
    if len(windows) != len(metas):
        raise ValueError(f"{len(windows)} windows but {len(metas)} metas")
    names = {m.get("video_name") for m in metas}
    if len(names) > 1:
        raise ValueError(f"video_detections got windows of several videos: {sorted(map(str, names))}")
    segs, scores, labels = [], [], []
    for w, meta in zip(windows, metas):
        s = to_seconds(torch.as_tensor(w["segments"]).reshape(-1, 2), meta, decimals=2)
        segs.extend(s.tolist())
        scores.extend(_round_list(torch.as_tensor(w["scores"]).float().reshape(-1).tolist(), 4))
        labels.extend(torch.as_tensor(w["labels"]).reshape(-1).long().tolist())
    seg_t = torch.tensor(segs, dtype=torch.float32).reshape(-1, 2)
    sc_t = torch.tensor(scores, dtype=torch.float32)
    lab_t = torch.tensor(labels, dtype=torch.long)
    if nms_cfg is not None and seg_t.shape[0] > 0:
        seg_t, sc_t, lab_t = batched_nms(seg_t, sc_t, lab_t, **dict(nms_cfg))
    out_segs = torch.tensor([_round_list(r, 2) for r in seg_t.tolist()], dtype=torch.float64).reshape(-1, 2)
    out_scores = torch.tensor(_round_list(sc_t.tolist(), 4), dtype=torch.float64)
    return dict(segments=out_segs, scores=out_scores, labels=lab_t.long())


def detection_records(
    det: Mapping[str, torch.Tensor], class_names: Sequence[str], min_score: float | None = None, video: str = "?"
) -> list[dict]:
    """One video's ``dict(segments, scores, labels)`` -> ``[{"segment": [s, e], "label": name, "score": x}, ...]``
    (numbers as stored: already rounded by :func:`video_detections`), keeping ``score >= min_score`` when given."""
    segs = torch.as_tensor(det["segments"]).reshape(-1, 2).tolist()
    scores = torch.as_tensor(det["scores"]).reshape(-1).tolist()
    labels = torch.as_tensor(det["labels"]).reshape(-1).long().tolist()
    items = []
    for seg, lab, sc in zip(segs, labels, scores):
        if min_score is not None and sc < min_score:
            continue
        if not 0 <= lab < len(class_names):
            raise ValueError(f"video {video}: label index {lab} outside the class map ({len(class_names)} classes)")
        items.append({"segment": [seg[0], seg[1]], "label": class_names[lab], "score": sc})
    return items


def to_result_json(detections: Mapping[str, Mapping[str, torch.Tensor]], class_names: Sequence[str]) -> dict:
    """``{video: dict(segments, scores, labels)}`` -> ``{"results": {video: [{"segment": [s, e], "label": name,
    "score": x}, ...]}}`` (OpenTAD's predictions file)."""
    return {"results": {video: detection_records(det, class_names, video=video) for video, det in detections.items()}}
