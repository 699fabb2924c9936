"""Clip transforms: shapes, shared per-clip parameters, seeding, and numpy oracles of mmaction's formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adatad.data.transforms import (
    RANDAUG_OPS,
    EvalTransform,
    GPUBatchAugment,
    TrainTransform,
    apply_randaug_op,
    color_jitter,
    rescale_short_side,
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
    y = shift_hue(torch.from_numpy(px.T.reshape(1, 3, 50, 1).copy()), 0.1)[0, :, :, 0].T.numpy()
    for p, q in zip(px, y):
        h, s, v = colorsys.rgb_to_hsv(*(p / 255))
        ref = np.array(colorsys.hsv_to_rgb((h + 0.1) % 1.0, s, v)) * 255
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
    # sample b is what the per-clip policy gives with the same generator state
    g = torch.Generator().manual_seed(3)
    ref0 = aug.policy(x.permute(1, 0, 2, 3), g)
    ref1 = aug.policy(x.permute(1, 0, 2, 3), g)
    assert torch.equal(y[0], ref0) and torch.equal(y[1], ref1)
    with pytest.raises(ValueError, match="uint8"):
        aug(batch.float())


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
