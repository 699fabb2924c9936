"""ActionFormer projection / neck / head: OpenTAD names, masking, shapes, loss normaliser."""

from __future__ import annotations

import math

import pytest
import torch

from adatad.models.actionformer import (
    ActionFormerHead,
    Conv1DTransformerProj,
    FPNIdentity,
    LocalMaskedMHCA,
    MaskedMHCA,
)

torch.set_num_threads(1)


def _randomize_structural(module: torch.nn.Module, seed: int = 0) -> None:
    """Move norms, biases and scales away from 0/1 so that mistakes cannot hide behind them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif name.endswith("scale"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 + 1.0)
            elif "norm" in name or name.split(".")[-2].startswith("ln"):
                p.copy_(torch.rand(p.shape, generator=g) * 1.5 + 0.25)


# ---------------------------------------------------------------- OpenTAD state-dict names


def _opentad_block_keys(prefix: str, C: int) -> dict[str, tuple]:
    """Keys of OpenTAD's TransformerBlock (MaskedMHCA, path_pdrop > 0), read from opentad/models/bricks/
    transformer.py: ln1/ln2 LayerNorms, depthwise q/k/v ConvModules (conv without bias, kernel 3 at stride 1
    and stride+1 = 3 at stride 2), q/k/v LayerNorms, 1x1 key/query/value/proj convs, mlp Sequential
    (Conv1d C->4C at index 0, Conv1d 4C->C at index 3), AffineDropPath scales [1, C, 1]."""
    keys = {
        "ln1.weight": (C,),
        "ln1.bias": (C,),
        "ln2.weight": (C,),
        "ln2.bias": (C,),
        "attn.query_conv.conv.weight": (C, 1, 3),
        "attn.key_conv.conv.weight": (C, 1, 3),
        "attn.value_conv.conv.weight": (C, 1, 3),
        "attn.query_norm.weight": (C,),
        "attn.query_norm.bias": (C,),
        "attn.key_norm.weight": (C,),
        "attn.key_norm.bias": (C,),
        "attn.value_norm.weight": (C,),
        "attn.value_norm.bias": (C,),
        "attn.key.weight": (C, C, 1),
        "attn.key.bias": (C,),
        "attn.query.weight": (C, C, 1),
        "attn.query.bias": (C,),
        "attn.value.weight": (C, C, 1),
        "attn.value.bias": (C,),
        "attn.proj.weight": (C, C, 1),
        "attn.proj.bias": (C,),
        "mlp.0.weight": (4 * C, C, 1),
        "mlp.0.bias": (4 * C,),
        "mlp.3.weight": (C, 4 * C, 1),
        "mlp.3.bias": (C,),
        "drop_path_attn.scale": (1, C, 1),
        "drop_path_mlp.scale": (1, C, 1),
    }
    return {prefix + k: v for k, v in keys.items()}


def _opentad_keys(Cin=6, C=8, K=3, num_convs=2, arch=(2, 1, 2)) -> dict[str, tuple]:
    keys: dict[str, tuple] = {}
    # projection.embed.N: ConvModule(kernel 3, norm LN) -> conv without bias + LayerNorm
    for i in range(arch[0]):
        keys[f"projection.embed.{i}.conv.weight"] = (C, Cin if i == 0 else C, 3)
        keys[f"projection.embed.{i}.norm.weight"] = (C,)
        keys[f"projection.embed.{i}.norm.bias"] = (C,)
    for i in range(arch[1]):
        keys.update(_opentad_block_keys(f"projection.stem.{i}.", C))
    for i in range(arch[2]):
        keys.update(_opentad_block_keys(f"projection.branch.{i}.", C))
    levels = 1 + arch[2]
    for i in range(levels):  # neck.fpn_norms.N: LayerNorm
        keys[f"neck.fpn_norms.{i}.weight"] = (C,)
        keys[f"neck.fpn_norms.{i}.bias"] = (C,)
    keys["rpn_head.loss_normalizer"] = ()
    for tower in ("cls_convs", "reg_convs"):
        for i in range(num_convs):
            keys[f"rpn_head.{tower}.{i}.conv.weight"] = (C, C, 3)
            keys[f"rpn_head.{tower}.{i}.norm.weight"] = (C,)
            keys[f"rpn_head.{tower}.{i}.norm.bias"] = (C,)
    keys["rpn_head.cls_head.weight"] = (K, C, 3)
    keys["rpn_head.cls_head.bias"] = (K,)
    keys["rpn_head.reg_head.weight"] = (2, C, 3)
    keys["rpn_head.reg_head.bias"] = (2,)
    for i in range(levels):
        keys[f"rpn_head.scale.{i}.scale"] = ()
    return keys


def _small_model():
    proj = Conv1DTransformerProj(6, 8, arch=(2, 1, 2), n_head=2, path_pdrop=0.1, max_seq_len=32)
    neck = FPNIdentity(8, 8, num_levels=3)
    head = ActionFormerHead(3, 8, 8, num_convs=2, strides=(1, 2, 4), regression_range=((0, 4), (4, 8), (8, 1000)))
    return torch.nn.ModuleDict({"projection": proj, "neck": neck, "rpn_head": head})


def test_state_dict_names_and_shapes_match_opentad():
    model = _small_model()
    expected = _opentad_keys()
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(got) == sorted(expected)
    assert got == expected


def test_opentad_state_dict_loads_strict_with_int64_normaliser():
    model = _small_model()
    g = torch.Generator().manual_seed(1)
    sd = {k: torch.randn(shape, generator=g) for k, shape in _opentad_keys().items()}
    sd["rpn_head.loss_normalizer"] = torch.tensor(100)  # OpenTAD stores int64 before the first step
    for part in ("projection", "neck", "rpn_head"):
        sub = {k[len(part) + 1 :]: v for k, v in sd.items() if k.startswith(part + ".")}
        model[part].load_state_dict(sub, strict=True)
    head = model["rpn_head"]
    assert head.loss_normalizer.dtype == torch.float32 and head.loss_normalizer.item() == 100.0
    assert torch.equal(head.cls_head.weight, sd["rpn_head.cls_head.weight"])
    assert torch.equal(model["projection"].branch[1].drop_path_mlp.scale, sd["projection.branch.1.drop_path_mlp.scale"])


def test_no_drop_path_scales_without_path_drop():
    proj = Conv1DTransformerProj(6, 8, arch=(1, 1, 1), n_head=2, path_pdrop=0.0)
    assert not any("drop_path" in k for k in proj.state_dict())


def test_initialisation_matches_opentad():
    model = _small_model()
    head = model["rpn_head"]
    assert torch.allclose(head.cls_head.bias, torch.full((3,), -math.log(99.0)))
    assert all(s.scale.item() == 1.0 for s in head.scale)
    blk = model["projection"].stem[0]
    assert torch.all(blk.drop_path_attn.scale == 1e-4)
    assert torch.all(blk.attn.proj.bias == 0) and torch.all(blk.mlp[0].bias == 0)
    assert model["projection"].embed[0].conv.bias is None
    assert model["projection"].embed[0].norm.eps == 1e-6 and blk.ln1.eps == 1e-5
    assert model["neck"].fpn_norms[0].eps == 1e-6


# ---------------------------------------------------------------- masking


def test_stride2_masks_are_nearest_downsampled():
    proj = Conv1DTransformerProj(4, 8, arch=(1, 0, 2), n_head=2, path_pdrop=0.0).eval()
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, :5] = True  # valid 0..4
    with torch.no_grad():
        feats, masks = proj(torch.randn(1, 4, 10), mask)
    # nearest: level-1 step i takes step 2i of level 0 -> [0,2,4,6,8] -> T T T F F
    assert masks[1].tolist() == [[True, True, True, False, False]]
    # level 2: ceil(5/2) = 3 steps, taking [0, 2, 4] of level 1 -> T T F
    assert masks[2].tolist() == [[True, True, False]]
    assert [f.shape[-1] for f in feats] == [10, 5, 3]
    for f, m in zip(feats, masks):  # padded steps are exactly zero
        assert torch.all(f[..., ~m[0]] == 0)


def test_projection_ignores_padded_input_content():
    """Input steps beyond the reach of the first conv (>= valid + 1) can hold anything: every output is
    unchanged and padded outputs are exactly zero."""
    torch.manual_seed(0)
    proj = Conv1DTransformerProj(6, 16, arch=(2, 2, 3), n_head=4, path_pdrop=0.1)
    _randomize_structural(proj)
    proj.eval()
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[0, :48] = True
    mask[1, :30] = True
    x = torch.randn(2, 6, 64)
    y = x.clone()
    y[0, :, 49:] = torch.randn(6, 15) * 100
    y[1, :, 31:] = torch.randn(6, 33) * 100
    with torch.no_grad():
        fa, ma = proj(x, mask)
        fb, mb = proj(y, mask)
    assert len(fa) == 4
    for a, b, m, m2 in zip(fa, fb, ma, mb):
        assert torch.equal(m, m2)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
        assert torch.all(a.transpose(1, 2)[~m] == 0)


def test_global_attention_matches_brute_force_masked_softmax():
    """Oracle: each valid query attends (softmax) over the valid keys only, padded keys having non-zero
    embeddings (LayerNorm bias of a zeroed step)."""
    torch.manual_seed(1)
    attn = MaskedMHCA(8, 2)
    _randomize_structural(attn)
    attn.eval()
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[0, :7] = True
    mask[1, :12] = True
    x = torch.randn(2, 8, 12)
    with torch.no_grad():
        q, k, v, _, kv_mask = attn._qkv(x, mask)
        assert k[0, :, 7:].abs().sum() > 0  # padded keys are not zero: the mask must do the work
        got = attn._attend(q, k, v, kv_mask)
        want = _brute_force_local(q * attn.scale, k, v, kv_mask, half=12)
    valid = kv_mask[:, None, :, None].expand_as(got)
    torch.testing.assert_close(got[valid], want[valid], atol=1e-5, rtol=1e-5)


def _brute_force_local(q, k, v, kv_mask, half):
    """Oracle: per query, softmax over keys j with |i-j| <= half and valid; masked query rows are zero."""
    B, H, T, D = q.shape
    out = torch.zeros_like(q)
    for b in range(B):
        for i in range(T):
            if not kv_mask[b, i]:
                continue
            js = [j for j in range(max(0, i - half), min(T, i + half + 1)) if kv_mask[b, j]]
            logits = torch.stack([(q[b, :, i] * k[b, :, j]).sum(-1) for j in js], -1)  # [H, n]
            w = torch.softmax(logits, -1)
            out[b, :, i] = (w[..., None] * torch.stack([v[b, :, j] for j in js], 1)).sum(1)
    return out


def test_local_attention_matches_brute_force_window():
    torch.manual_seed(2)
    attn = LocalMaskedMHCA(8, 2, window_size=5)
    _randomize_structural(attn)
    attn.eval()
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[0, :16] = True
    mask[1, :11] = True
    x = torch.randn(2, 8, 16) * mask[:, None]
    with torch.no_grad():
        q, k, v, _, kv_mask = attn._qkv(x, mask)
        got = attn._attend(q, k, v, kv_mask)
        want = _brute_force_local(q * attn.scale, k, v, kv_mask, half=2)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- head and losses


def test_full_size_shapes_window_768():
    torch.manual_seed(0)
    proj = Conv1DTransformerProj(384, 512, arch=(2, 2, 5), n_head=4, path_pdrop=0.1, max_seq_len=768).eval()
    neck = FPNIdentity(512, 512, 6)
    head = ActionFormerHead(20, 512, 512).eval()
    x = torch.randn(2, 384, 768)
    mask = torch.ones(2, 768, dtype=torch.bool)
    mask[1, 600:] = False
    with torch.no_grad():
        feats, masks = neck(*proj(x, mask))
        cls, reg = head(feats, masks)
    lengths = [768, 384, 192, 96, 48, 24]
    assert [tuple(f.shape) for f in feats] == [(2, 512, t) for t in lengths]
    assert [tuple(c.shape) for c in cls] == [(2, 20, t) for t in lengths]
    assert [tuple(r.shape) for r in reg] == [(2, 2, t) for t in lengths]
    assert [m.sum(1).tolist() for m in masks] == [[768, 600], [384, 300], [192, 150], [96, 75], [48, 38], [24, 19]]
    assert all(torch.all(r >= 0) for r in reg)
    # the prior: untrained logits sit near log(0.01/0.99)
    assert abs(torch.cat([c.flatten() for c in cls]).mean().item() - math.log(0.01 / 0.99)) < 1.0


def _focal0(target: float) -> float:
    """Focal loss of a zero logit (p = 0.5), by hand: ln2 * 0.25 * alpha_t."""
    return math.log(2) * 0.25 * (0.25 if target == 1 else 0.75)


def test_head_losses_normaliser_eval_and_train():
    head = ActionFormerHead(2, 8, 8, strides=(1, 2), regression_range=((0, 4), (4, 100)))
    # level lengths 16 and 8; one GT [2, 5] label 1 -> positives: level-0 points t=3 and t=4 (see test_losses)
    T0, T1 = 16, 8
    cls = [torch.zeros(1, 2, T0), torch.zeros(1, 2, T1)]
    reg = [torch.zeros(1, 2, T0), torch.zeros(1, 2, T1)]
    reg[0][0, :, 3] = torch.tensor([1.0, 2.0])  # exact targets -> DIoU loss 0 at t=3
    reg[0][0, :, 4] = torch.tensor([1.0, 1.0])  # pred [3, 5] vs gt [2, 5]: IoU 2/3, centre dist 0.5, enclose 3
    masks = [torch.ones(1, T0, dtype=torch.bool), torch.ones(1, T1, dtype=torch.bool)]
    masks[0][0, 12:] = False  # 4 padded level-0 points do not count
    gts, labels = [torch.tensor([[2.0, 5.0]])], [torch.tensor([1])]
    n_valid = 12 + 8
    cls_sum = 2 * (_focal0(1) + _focal0(0)) + (n_valid - 2) * 2 * _focal0(0)
    reg_sum = 0.0 + (1 - (2 / 3 - 0.25 / 9))

    head.eval()
    out = head.losses(cls, reg, masks, gts, labels)
    assert out["cls_loss"].item() == pytest.approx(cls_sum / 2, rel=1e-6)
    assert out["reg_loss"].item() == pytest.approx(reg_sum / 2, rel=1e-6)
    assert out["cost"].item() == pytest.approx((cls_sum + reg_sum) / 2, rel=1e-6)
    assert head.loss_normalizer.item() == 100.0  # untouched in eval

    head.train()
    out = head.losses(cls, reg, masks, gts, labels)
    n1 = 0.9 * 100 + 0.1 * 2
    assert head.loss_normalizer.item() == pytest.approx(n1, rel=1e-6)
    assert out["cls_loss"].item() == pytest.approx(cls_sum / n1, rel=1e-6)
    out = head.losses(cls, reg, masks, [torch.zeros(0, 2)], [torch.zeros(0, dtype=torch.long)])
    n2 = 0.9 * n1 + 0.1 * 1  # no positives: max(num_pos, 1)
    assert head.loss_normalizer.item() == pytest.approx(n2, rel=1e-6)
    assert out["reg_loss"].item() == 0.0
    assert out["cls_loss"].item() == pytest.approx(n_valid * 2 * _focal0(0) / n2, rel=1e-6)


def test_head_losses_backward_and_bad_label():
    head = ActionFormerHead(3, 8, 8, strides=(1, 2), regression_range=((0, 4), (4, 100))).train()
    feats = [torch.randn(2, 8, 16, requires_grad=True), torch.randn(2, 8, 8, requires_grad=True)]
    masks = [torch.ones(2, 16, dtype=torch.bool), torch.ones(2, 8, dtype=torch.bool)]
    cls, reg = head(feats, masks)
    out = head.losses(cls, reg, masks, [torch.tensor([[2.0, 9.0]]), torch.tensor([[1.0, 3.0]])], [torch.tensor([0]), torch.tensor([2])])
    out["cost"].backward()
    assert feats[0].grad is not None and torch.isfinite(feats[0].grad).all()
    assert head.reg_head.weight.grad is not None
    with pytest.raises(ValueError, match="gt label"):
        head.losses(cls, reg, masks, [torch.tensor([[2.0, 9.0]])] * 2, [torch.tensor([3])] * 2)
