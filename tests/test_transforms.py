"""Clip transforms: shapes, shared per-clip parameters, seeding, and numpy oracles of mmaction's formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as F

from adatad.data.transforms import (
    RANDAUG_OPS,
    BatchParams,
    ClipParams,
    EvalTransform,
    GPUBatchAugment,
    TrainTransform,
    _op_matrix,
    affine_batch,
    apply_randaug_op,
    color_jitter,
    equalize,
    randaug_slot,
    rescale_short_side,
    resized_crop_batch,
    sample_resized_crop,
    shift_hue,
)

torch.set_num_threads(1)


def _clip(t=6, h=180, w=320, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, 3, h, w), generator=g, dtype=torch.uint8)


def test_rescale_short_side_mmcv_rounding():
    assert rescale_short_side(180, 320, 182) == (182, 324)  # 320 * 182 / 180 = 323.6 -> 324
    assert rescale_short_side(180, 320, 160) == (160, 284)  # 284.4 -> 284
    assert rescale_short_side(240, 320, 160) == (160, 213)  # 213.3 -> 213


def test_test_transform_matches_interpolate_and_centre_crop():
    x = _clip(3)
    y = EvalTransform()(x)  # [3, T, 160, 160]
    assert y.shape == (3, 3, 160, 160) and y.dtype == torch.uint8
    ref = torch.nn.functional.interpolate(x.float(), size=(160, 284), mode="bilinear", align_corners=False)
    ref = ref[..., :, 62 : 62 + 160]  # left = (284 - 160) // 2, top = 0
    assert (y.permute(1, 0, 2, 3).float() - ref).abs().max() <= 1.5  # uint8 fixed-point resize
    # numpy [T, H, W, 3] input is accepted too
    assert torch.equal(EvalTransform()(x.permute(0, 2, 3, 1).numpy()), y)


def test_test_transform_in_chunks_equals_frame_by_frame():
    """A clip of several chunks (the last one partial) written chunk by chunk into its output: the frames are
    those of each frame transformed alone, in both layouts."""
    x = _clip(37)  # 2 chunks of 16 and one of 5
    one = torch.stack([EvalTransform()(x[i : i + 1])[:, 0] for i in range(37)], 1)  # [3, T, 160, 160]
    assert torch.equal(EvalTransform()(x), one)
    assert torch.equal(EvalTransform().apply(x, chunk=16), one.transpose(0, 1))


def test_train_shapes_seeding_and_shared_params():
    tt = TrainTransform(seed=0)
    frame = _clip(1)
    x = frame.repeat(8, 1, 1, 1)  # 8 identical frames
    y1 = tt(x, torch.Generator().manual_seed(5))
    y2 = tt(x, torch.Generator().manual_seed(5))
    assert y1.shape == (3, 8, 160, 160) and y1.dtype == torch.uint8
    assert torch.equal(y1, y2)  # same generator state, same output
    assert all(torch.equal(y1[:, 0], y1[:, t]) for t in range(8))  # one set of params for the whole clip
    outs = {tt(x, torch.Generator().manual_seed(s)).float().mean().item() for s in range(6)}
    assert len(outs) > 1


def test_resized_crop_sampler():
    g = torch.Generator().manual_seed(0)
    fallback = 0
    for _ in range(500):
        top, left, h, w = sample_resized_crop(182, 324, g)
        assert 0 <= top and top + h <= 182 and 0 <= left and left + w <= 324
        if (top, left, h, w) == (0, 71, 182, 182):
            fallback += 1
            continue
        # area in [0.08, 1] of the image and ratio in [3/4, 4/3], up to the rounding of the sides
        assert 0.08 * 182 * 324 * 0.95 <= h * w <= 182 * 324
        assert 3 / 4 * 0.95 <= w / h <= 4 / 3 * 1.05
    assert fallback < 50


def _np_jitter(img, b, c, s, order):
    """mmaction ColorJitter (brightness / contrast / saturation) written from its formulas, in numpy."""
    out = []
    for frame in img.astype(np.float32):
        f = frame.copy()
        for k in order:
            grey = 0.2989 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
            if k == 0:
                f = f * b
            elif k == 1:
                f = c * f + (1 - c) * np.mean(grey)
            elif k == 2:
                f = s * f + (1 - s) * np.stack([grey] * 3, -1)
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (2, 3, 1, 0), (1, 0, 3, 2)])
def test_color_jitter_matches_numpy_oracle(order):
    x = _clip(3, 24, 32)
    got = color_jitter(x, 1.3, 0.7, 1.4, 0.0, order=order).permute(0, 2, 3, 1).numpy()
    ref = _np_jitter(x.permute(0, 2, 3, 1).numpy(), 1.3, 0.7, 1.4, order)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1  # float32 summation order


def test_hue_shift_against_colorsys():
    import colorsys

    rng = np.random.default_rng(0)
    px = rng.integers(0, 256, (50, 3)).astype(np.float32)
    # ties of the max channel (R = G, G = B, R = B, all equal) pick the sextant formula; grey has no hue
    ties = [[200, 200, 10], [10, 200, 200], [200, 10, 200], [77, 77, 77], [0, 0, 0], [255, 255, 255], [255, 0, 255]]
    px = np.concatenate([px, np.array(ties, dtype=np.float32)])
    for shift in (0.1, -0.05, 0.4, -0.139):  # the one-wrap path (|shift| <= 1/6) and the general one
        y = shift_hue(torch.from_numpy(px.T.reshape(1, 3, len(px), 1).copy()), shift)[0, :, :, 0].T.numpy()
        for p, q in zip(px, y):
            h, s, v = colorsys.rgb_to_hsv(*(p / 255))
            ref = np.array(colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)) * 255
            np.testing.assert_allclose(q, ref, atol=1e-3)


def test_randaug_ops_hand_values():
    x = torch.tensor([0, 100, 200, 255], dtype=torch.uint8).view(1, 1, 1, 4).expand(1, 3, 2, 4).contiguous()
    assert apply_randaug_op(x, "Invert")[0, 0, 0].tolist() == [255, 155, 55, 0]
    assert apply_randaug_op(x, "Posterize")[0, 0, 0].tolist() == [0, 96, 192, 224]  # keep 3 high bits
    assert apply_randaug_op(x, "Solarize")[0, 0, 0].tolist() == [0, 100, 200, 0]  # invert >= 230.4
    big = torch.full((2, 3, 100, 100), 7, dtype=torch.uint8)
    cut = apply_randaug_op(big, "Cutout", cutout_center=(0.5, 0.5))
    assert (cut == 128).sum().item() == 2 * 3 * 18 * 18  # one 18 x 18 square (0.18 of 100), same in every frame
    for op in RANDAUG_OPS:
        y = apply_randaug_op(_clip(2, 40, 40), op, -1.0, (0.3, 0.6))
        assert y.shape == (2, 3, 40, 40) and y.dtype == torch.uint8


def test_gpu_batch_augment_cpu():
    x = _clip(4, 90, 160).permute(1, 0, 2, 3)  # [3, T, H, W]
    batch = torch.stack([x, x], 0)
    aug = GPUBatchAugment(seed=0)
    g = torch.Generator().manual_seed(3)
    y = aug(batch, generator=g)
    assert y.shape == (2, 3, 4, 160, 160) and y.dtype == torch.uint8
    assert not torch.equal(y[0], y[1])  # per-sample parameters
    # the batch draws what the per-clip policy draws, clip after clip, from the same generator state
    g = torch.Generator().manual_seed(3)
    p0 = aug.policy.sample_params(90, 160, g)
    p1 = aug.policy.sample_params(90, 160, g)
    bp = aug.policy.sample_batch_params(2, 90, 160, torch.Generator().manual_seed(3))
    assert bp.crop.tolist() == [list(p0.crop), list(p1.crop)] and bp.flip.tolist() == [p0.flip, p1.flip]
    assert bp.ops.tolist() == [[RANDAUG_OPS.index(o) for o in p.ops] for p in (p0, p1)]
    assert torch.equal(bp.jitter, torch.tensor([p0.jitter, p1.jitter], dtype=torch.float64))
    # and, with those parameters, each sample is the per-clip path's output (the crop by grid_sample instead of
    # the uint8 resize: the ops after it see at most 1 grey level of difference; checked without ImgAug, whose
    # Posterize / Equalize can turn 1 level into a bucket)
    plain = GPUBatchAugment(seed=0, randaug=False)
    y = plain(batch, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    for b in range(2):
        ref = plain.policy(x.permute(1, 0, 2, 3), g)
        d = (y[b].int() - ref.int()).abs()
        assert d.max() <= 3 and (d > 1).float().mean() < 0.01
    with pytest.raises(ValueError, match="uint8"):
        aug(batch.float())


def _batch_of(clips):
    return torch.stack(clips, 0)  # [N, F, 3, H, W]


def test_batched_geometric_ops_match_torchvision_per_clip():
    """Each clip of a batch gets its own warp (op and direction); equal to torchvision's F.affine / F.rotate on that
    clip alone up to float rounding (at most 1 grey level on rare pixels)."""
    clips = [_clip(3, 40, 40, seed=s) for s in range(5)]
    cases = [("ShearX", 1.0), ("ShearY", -1.0), ("TranslateX", -1.0), ("TranslateY", 1.0), ("Rotate", -1.0)]
    mats = torch.tensor([_op_matrix(op, sign, 40, 40) for op, sign in cases], dtype=torch.float64)
    got = affine_batch(_batch_of(clips), mats)
    for clip, (op, sign), y in zip(clips, cases, got):
        ref = apply_randaug_op(clip, op, sign)
        d = (y.int() - ref.int()).abs()
        assert d.max() <= 1 and (d > 0).float().mean() < 0.01, op
    # the whole slot mechanism: clips with different ops in one call, each as on its own
    bp = BatchParams.stack([ClipParams((0, 0, 40, 40), False, [op], {op: sign}) for op, sign in cases], 40)
    assert torch.equal(randaug_slot(_batch_of(clips), bp, 0), got)


def test_batched_pixel_ops_equal_per_clip_ops():
    """Posterize ... Cutout with a different op (and cutout centre) per clip: exactly the per-clip op."""
    pixel_ops = [op for op in RANDAUG_OPS if op not in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")]
    clips = [_clip(2, 24, 30, seed=s) for s in range(len(pixel_ops) + 1)]
    ops = pixel_ops + ["Cutout"]
    centers = [(0.1 * (i % 10), 1.0 - 0.07 * i) for i in range(len(ops))]
    params = [
        ClipParams((0, 0, 24, 30), False, ["Posterize", op] if op != "Posterize" else ["Posterize"], {}, c) for op, c in zip(ops, centers)
    ]
    bp = BatchParams.stack(params, 24)
    x = _batch_of(clips)
    slot0 = randaug_slot(x, bp, 0)  # every clip: Posterize
    got = randaug_slot(slot0, bp, 1)  # a different op per clip (none for the Posterize-only clip)
    for clip, p, y in zip(clips, params, got):
        ref = clip
        for op in p.ops:
            ref = apply_randaug_op(ref, op, 1.0, p.cutout_center)
        assert torch.equal(y, ref), p.ops


def test_batched_crop_and_color_jitter_equal_per_clip():
    clips = [_clip(3, 90, 160, seed=s) for s in range(3)]
    boxes = torch.tensor([[0, 0, 90, 160], [10, 30, 37, 41], [50, 100, 40, 60]])
    got = resized_crop_batch(_batch_of(clips), boxes, 32)
    for clip, (top, left, h, w), y in zip(clips, boxes.tolist(), got):
        ref = F.resized_crop(clip, top, left, h, w, [32, 32], antialias=False)
        assert (y.int() - ref.int()).abs().max() <= 1  # same sampling points; uint8 fixed-point vs float rounding
    # ColorJitter with per-clip factors == each clip alone with its factors (numbers or one-element tensors)
    j = torch.tensor([[1.3, 0.7, 1.4, 0.05], [0.6, 1.2, 0.5, -0.08], [1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    small = [c[..., :20, :24].contiguous() for c in clips]
    got = color_jitter(_batch_of(small), j[:, 0], j[:, 1], j[:, 2], j[:, 3], order=(2, 3, 1, 0))
    for clip, f, y in zip(small, j, got):
        assert torch.equal(y, color_jitter(clip[None], f[:1], f[1:2], f[2:3], f[3:], order=(2, 3, 1, 0))[0])
        b, c, sat, h = f.tolist()
        assert (y.int() - color_jitter(clip, b, c, sat, h, order=(2, 3, 1, 0)).int()).abs().max() <= 1


def test_batched_policy_equals_per_clip_policy_with_one_crop_box():
    """With the same crop box for every clip (the centre crop) the batch takes the per-clip code path for the crop, so
    flip + ImgAug + ColorJitter with per-clip parameters must give exactly each clip's per-clip result."""
    aug = GPUBatchAugment(short_side=160, size=160, crop="center", flip_ratio=0.5, randaug=True, color_jitter=True, seed=4)
    clips = [_clip(3, 90, 160, seed=s) for s in range(6)]
    batch = torch.stack([c.permute(1, 0, 2, 3) for c in clips], 0)
    y = aug(batch, generator=torch.Generator().manual_seed(11))
    g = torch.Generator().manual_seed(11)
    seen = set()
    for b, clip in enumerate(clips):
        p = aug.policy.sample_params(90, 160, g)
        seen.update(p.ops)
        assert torch.equal(y[b], aug.policy.apply(clip, p).permute(1, 0, 2, 3))
    assert len(seen) >= 6  # the clips drew different ops


def test_batch_chunking_does_not_change_the_result():
    batch = torch.stack([_clip(5, 60, 80, seed=s).permute(1, 0, 2, 3) for s in range(2)], 0)
    a = GPUBatchAugment(seed=1, size=48, short_side=56, chunk=2)(batch, generator=torch.Generator().manual_seed(0))
    b = GPUBatchAugment(seed=1, size=48, short_side=56, chunk=5)(batch, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_center_crop_train_transform_is_the_test_transform():
    """OpenTAD's frozen recipe trains on Resize(-1, 160) + CenterCrop(160) only: crop="center" without flip, ImgAug or
    ColorJitter gives exactly the test transform, on any generator state (and on the GPU batch path too)."""
    x = _clip(5, 180, 320)
    tt = TrainTransform(short_side=160, size=160, crop="center", flip_ratio=0.0, randaug=False, color_jitter=False, seed=1)
    ref = EvalTransform(160, 160)(x)
    for s in range(3):
        assert torch.equal(tt(x, torch.Generator().manual_seed(s)), ref)
    batch = torch.stack([x.permute(1, 0, 2, 3)] * 2, 0)
    y = GPUBatchAugment(short_side=160, size=160, crop="center", flip_ratio=0.0, randaug=False, color_jitter=False)(batch)
    assert torch.equal(y[0], ref) and torch.equal(y[1], ref)
    flipped = TrainTransform(short_side=160, size=160, crop="center", flip_ratio=1.0, randaug=False, color_jitter=False)(x)
    assert torch.equal(flipped, ref.flip(-1))
    with pytest.raises(ValueError, match="crop must be one of"):
        TrainTransform(crop="corner")
    with pytest.raises(ValueError, match="short side >= 160"):
        TrainTransform(short_side=128, size=160, crop="center")


def test_on_gpu_workers_only_decode_and_the_device_runs_the_seed_policy():
    """dataset.transform.on_gpu: the worker transform does no pixel work (a view of the decoded array), and the
    batched module built from the config runs the seed's train policy (same draws as the CPU transform)."""
    from pathlib import Path

    from adatad.config import load_config
    from adatad.data.datasets import collate
    from adatad.engine.builders import build_gpu_augment, build_transform

    cfg = load_config(Path(__file__).parents[1] / "configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py")
    cfg["dataset"]["transform"]["on_gpu"] = True
    worker = build_transform(cfg, "train")
    frames = _clip(4, 90, 160).permute(0, 2, 3, 1).contiguous().numpy()  # decoder output [T, H, W, 3]
    item = worker(frames, torch.Generator().manual_seed(0))
    assert item.shape == (3, 4, 90, 160) and item.data_ptr() == frames.ctypes.data  # no copy, no transform
    batch = collate([{"inputs": item, "masks": torch.ones(4, dtype=torch.bool), "gt_segments": None, "gt_labels": None, "metas": {}}] * 2)
    aug = build_gpu_augment(cfg, torch.device("cpu"))
    y = aug(batch["inputs"], generator=torch.Generator().manual_seed(1))
    assert y.shape == (2, 3, 4, 160, 160)
    cpu = build_transform(dict(cfg, dataset=dict(cfg["dataset"], transform=dict(cfg["dataset"]["transform"], on_gpu=False))), "train")
    assert isinstance(cpu, TrainTransform) and vars(cpu).keys() == vars(aug.policy).keys()
    assert all(vars(cpu)[k] == vars(aug.policy)[k] for k in vars(cpu))  # same policy, signs and jitter order


def test_device_augmentation_draws_are_a_function_of_seed_epoch_iteration_rank():
    """The trainer's generator for the device augmentation: a resumed run (same seed, epoch, iteration, rank) draws the
    same parameters; another iteration or rank draws others."""
    from types import SimpleNamespace

    from adatad.engine.train import Trainer

    def draws(seed, epoch, it, rank):
        fake = SimpleNamespace(cfg={"solver": {"seed": seed}}, dist=SimpleNamespace(rank=rank))
        return torch.rand(4, generator=Trainer._augment_generator(fake, epoch, it)).tolist()  # type: ignore[arg-type]

    assert draws(0, 3, 7, 0) == draws(0, 3, 7, 0)
    assert len({tuple(draws(*k)) for k in [(0, 3, 7, 0), (0, 3, 8, 0), (0, 4, 7, 0), (0, 3, 7, 1), (1, 3, 7, 0)]}) == 5


def test_rewritten_ops_equal_torchvision():
    """Equalize (one bincount) and Sharpness (channels-last conv) are torchvision's formulas: equal outputs."""
    from adatad.data.transforms import _PIXEL_OPS

    x = _clip(4, 33, 41, seed=9)[None]
    assert torch.equal(_PIXEL_OPS["EnhanceSharpness"](x), F.adjust_sharpness(x, 1.8 * 0.9 + 0.1))
    real = _clip(3, 40, 48, seed=2) // 3 + 40  # a narrow histogram
    flat = torch.full((2, 3, 10, 12), 77, dtype=torch.uint8)  # one value: torchvision leaves it unchanged
    two = torch.zeros((1, 3, 10, 12), dtype=torch.uint8)
    two[..., :3, :] = 200  # two values
    for x in (real, _clip(2, 17, 23, seed=5), flat, two, real[None]):
        assert torch.equal(equalize(x), F.equalize(x))
