"""VideoMAE backbone: parity with Hugging Face transformers, position-table resize, adapters, modes, checkpointing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adatad.models.videomae import VIT_SIZES, VideoMAEBackbone
from adatad.models.weights import load_pretrained_backbone

torch.set_num_threads(1)

transformers = pytest.importorskip("transformers")


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Give every parameter (biases, norms, zero-inits included) a random value so mistakes cannot hide."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            is_norm_scale = "layernorm" in name and name.endswith("weight")
            p.copy_(1.0 + 0.2 * noise if is_norm_scale else 0.1 * noise)


def _hf_model(tmp_path, image_size=64, depth=2):
    cfg = transformers.VideoMAEConfig(
        image_size=image_size,
        patch_size=16,
        num_frames=16,
        tubelet_size=2,
        hidden_size=384,
        num_hidden_layers=depth,
        num_attention_heads=6,
        intermediate_size=1536,
        layer_norm_eps=1e-6,
        qv_bias=True,
        use_mean_pooling=True,
        hidden_act="gelu",
    )
    torch.manual_seed(0)
    model = transformers.VideoMAEModel(cfg).eval()
    _randomise(model, seed=1)
    model.save_pretrained(tmp_path / "hf")
    return model


def _hf_tokens(model, x_bcthw: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(pixel_values=x_bcthw.permute(0, 2, 1, 3, 4)).last_hidden_state


def _ours(img_size=64, depth=2, **kw) -> VideoMAEBackbone:
    args = dict(
        img_size=img_size,
        embed_dims=384,
        depth=depth,
        num_heads=6,
        num_frames=16,
        total_frames=32,
        adapter_index=None,
        mode="full",
        with_cp=False,
        out_len=None,
        drop_path_rate=0.0,
    )
    args.update(kw)
    return VideoMAEBackbone(**args).eval()


def test_hf_parity_last_hidden_states_and_chunk_order(tmp_path):
    hf = _hf_model(tmp_path)
    ours = _ours()
    report = load_pretrained_backbone(ours, tmp_path / "hf")
    assert report.format == "huggingface" and not report.missing
    # 2 clips x 2 chunks: chunk rows must be batch-major (row = b * chunks + chunk)
    x = torch.randn(2, 3, 32, 64, 64)
    with torch.no_grad():
        tokens = ours.forward_tokens(x)
    assert tokens.shape == (4, 8 * 4 * 4, 384)
    for b in range(2):
        for c in range(2):
            ref = _hf_tokens(hf, x[:, :, 16 * c : 16 * (c + 1)][b : b + 1])[0]
            assert _rel_err(tokens[b * 2 + c], ref) <= 1e-5


def test_hf_parity_pooled_output_against_numpy_interpolation(tmp_path):
    hf = _hf_model(tmp_path)
    out_len = 24
    ours = _ours(out_len=out_len)
    load_pretrained_backbone(ours, tmp_path / "hf")
    x = torch.randn(1, 3, 32, 64, 64)
    with torch.no_grad():
        feats = ours(x)
    assert feats.shape == (1, 384, out_len)
    # oracle: HF tokens per chunk -> mean over the 4x4 grid -> concatenate 16 tubelet steps -> linear
    # interpolation with half-pixel centres (align_corners=False), computed with numpy
    steps = []
    for c in range(2):
        tok = _hf_tokens(hf, x[:, :, 16 * c : 16 * (c + 1)])[0].numpy().astype(np.float64)
        steps.append(tok.reshape(8, 16, 384).mean(1))
    seq = np.concatenate(steps, 0)  # [16, C]
    src = (np.arange(out_len) + 0.5) * (16 / out_len) - 0.5
    src = np.clip(src, 0, None)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, 15)
    frac = (src - lo)[:, None]
    expect = seq[lo] * (1 - frac) + seq[hi] * frac  # [out_len, C]
    assert _rel_err(feats[0].T.double(), torch.from_numpy(expect)) <= 1e-5


def _cubic_weights(t: float, a: float = -0.75) -> list[float]:
    def k(d):
        d = abs(d)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        if d < 2:
            return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
        return 0.0

    return [k(t + 1), k(t), k(1 - t), k(2 - t)]


def _np_bicubic_resize(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Keys cubic (a=-0.75), half-pixel centres, border replicate: PyTorch's bicubic, align_corners=False."""
    c, in_h, in_w = img.shape

    def axis_matrix(n_in, n_out):
        m = np.zeros((n_out, n_in))
        scale = n_in / n_out
        for o in range(n_out):
            src = (o + 0.5) * scale - 0.5
            i0 = math.floor(src)
            w = _cubic_weights(src - i0)
            for j, wj in zip(range(i0 - 1, i0 + 3), w):
                m[o, min(max(j, 0), n_in - 1)] += wj
        return m

    my, mx = axis_matrix(in_h, out_h), axis_matrix(in_w, out_w)
    return np.einsum("yi,cij,xj->cyx", my, img, mx)


def test_position_table_resize_against_hf_with_numpy_bicubic(tmp_path):
    # pretraining size 64 px (4x4 grid), run at 48 px (3x3 grid), like 224 -> 160 (14 -> 10)
    hf64 = _hf_model(tmp_path, image_size=64)
    ours = _ours(img_size=64)
    load_pretrained_backbone(ours, tmp_path / "hf")
    table = hf64.embeddings.position_embeddings[0].double().numpy()  # [8*4*4, C]
    grid = table.reshape(8, 4, 4, 384).transpose(0, 3, 1, 2)  # [t, C, 4, 4]
    resized = np.stack([_np_bicubic_resize(g, 3, 3) for g in grid])  # [t, C, 3, 3]
    new_table = torch.from_numpy(resized.transpose(0, 2, 3, 1).reshape(1, 8 * 9, 384)).float()

    cfg48 = hf64.config.__class__(**{**hf64.config.to_dict(), "image_size": 48})
    hf48 = transformers.VideoMAEModel(cfg48).eval()
    hf48.load_state_dict(hf64.state_dict())
    hf48.embeddings.position_embeddings = new_table

    x = torch.randn(1, 3, 16, 48, 48)
    with torch.no_grad():
        tokens = ours.forward_tokens(x)
    assert tokens.shape == (1, 8 * 9, 384)
    assert _rel_err(tokens[0], _hf_tokens(hf48, x)[0]) <= 1e-5


def _tiny(**kw) -> VideoMAEBackbone:
    args = dict(
        img_size=32,
        patch_size=16,
        embed_dims=32,
        depth=2,
        num_heads=2,
        num_frames=4,
        tubelet_size=2,
        total_frames=12,
        adapter_index=[0, 1],
        adapter_mlp_ratio=0.25,
        mode="adapter",
        with_cp=False,
        out_len=12,
        drop_path_rate=0.1,
    )
    args.update(kw)
    return VideoMAEBackbone(**args)


def _randomise_adapters(model: VideoMAEBackbone, seed: int = 3) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".adapter." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_adapter_mode_gradients_and_frozen_children_eval():
    torch.manual_seed(0)
    model = _tiny()
    _randomise_adapters(model)  # zero-init up_proj would zero every upstream adapter gradient
    model.train()
    for block in model.blocks:
        for name in ("norm1", "attn", "mlp", "norm2"):
            assert not getattr(block, name).training, name
        assert block.adapter.training
        assert block.drop_path.training  # OpenTAD keeps stochastic depth active in frozen blocks
    assert not model.patch_embed.training
    x = torch.randn(2, 3, 12, 32, 32)
    out = model(x)
    assert out.shape == (2, 32, 12)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in model.named_parameters():
        if ".adapter." in name:
            assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert not p.requires_grad and p.grad is None, name
    model.eval()
    model.train()  # still frozen after a mode round-trip
    assert not model.blocks[0].attn.training and not model.patch_embed.training


def test_parameter_counts_vit_s_adapter_hand_computed():
    model = VideoMAEBackbone.from_size("s", adapter_index=list(range(12)), with_cp=False)
    c, hid, a = 384, 1536, 96
    block = 2 * c + 2 * c + c * 3 * c + (c * c + c) + 2 * c + (c * hid + hid) + (hid * c + c)
    adapter = (c * a + a) + (a * c + c) + (a * 3 + a) + (a * a + a) + 1
    vit = (3 * 2 * 16 * 16 * c + c) + 12 * block + 2 * c  # + fc_norm
    assert model.count_parameters() == {"trainable": 12 * adapter, "frozen": vit}
    assert VIT_SIZES["s"] == dict(embed_dims=384, depth=12, num_heads=6)


def test_zero_init_adapter_is_identity_and_gamma_scales_bias():
    torch.manual_seed(0)
    plain = _tiny(adapter_index=None, mode="full", drop_path_rate=0.0).eval()
    adapted = _tiny(drop_path_rate=0.0).eval()
    missing, unexpected = adapted.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(".adapter." in k for k in missing)
    x = torch.randn(1, 3, 12, 32, 32)
    with torch.no_grad():
        assert torch.equal(adapted(x), plain(x))
    # up_proj weight 0, bias b, gamma g -> every token of the block output moves by exactly g * b
    one = _tiny(depth=1, adapter_index=[0], drop_path_rate=0.0).eval()
    ref = _tiny(depth=1, adapter_index=None, mode="full", drop_path_rate=0.0).eval()
    ref.load_state_dict(one.state_dict(), strict=False)
    b = torch.randn(32)
    with torch.no_grad():
        one.blocks[0].adapter.up_proj.bias.copy_(b)
        one.blocks[0].adapter.gamma.fill_(-1.7)
        diff = one.forward_tokens(x) - ref.forward_tokens(x)
    torch.testing.assert_close(diff, (-1.7 * b).expand_as(diff), atol=1e-5, rtol=0)


def test_checkpointing_on_off_identical_outputs_and_grads():
    x = torch.randn(1, 3, 12, 32, 32)
    results = []
    for with_cp in (False, True, [1]):
        torch.manual_seed(0)
        model = _tiny(with_cp=with_cp, drop_path_rate=0.3)
        _randomise_adapters(model)
        model.train()
        torch.manual_seed(123)  # same drop-path draws; checkpoint recomputation must replay them
        out = model(x)
        out.square().sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((out.detach(), grads))
    for out, grads in results[1:]:
        assert torch.equal(out, results[0][0])
        assert grads.keys() == results[0][1].keys()
        for n in grads:
            torch.testing.assert_close(grads[n], results[0][1][n], rtol=1e-6, atol=1e-7)


def test_temporal_conv_crosses_chunk_borders_and_not_batches():
    torch.manual_seed(0)
    # one block + adapter, 3 chunks of 4 frames = 2 tubelets each; attention stays inside a chunk
    model = _tiny(depth=1, adapter_index=[0], drop_path_rate=0.0).eval()
    _randomise_adapters(model)
    x = torch.randn(2, 3, 12, 32, 32)
    x2 = x.clone()
    x2[0, :, 4:8] += torch.randn(3, 4, 32, 32)  # perturb chunk 1 of clip 0 only
    with torch.no_grad():
        a = model.forward_tokens(x).reshape(2, 3, 2, 4, 32)  # [B, chunk, tubelet, h*w, C]
        b = model.forward_tokens(x2).reshape(2, 3, 2, 4, 32)
    changed = (a - b).abs().amax(dim=(-1, -2))  # [B, chunk, tubelet]
    assert torch.all(changed[0, 1] > 1e-4)  # the perturbed chunk
    assert changed[0, 0, 1] > 1e-4 and changed[0, 2, 0] > 1e-4  # neighbours' border tubelets
    assert changed[0, 0, 0] == 0 and changed[0, 2, 1] == 0  # kernel 3 reaches one tubelet only
    assert torch.all(changed[1] == 0)  # the other clip is untouched
    # without adapters nothing leaks out of the chunk
    plain = _tiny(depth=1, adapter_index=None, mode="full", drop_path_rate=0.0).eval()
    with torch.no_grad():
        d = (plain.forward_tokens(x) - plain.forward_tokens(x2)).reshape(2, 3, -1).abs().amax(-1)
    assert d[0, 0] == 0 and d[0, 2] == 0 and d[0, 1] > 0


def test_frozen_and_full_modes():
    frozen = _tiny(adapter_index=None, mode="frozen")
    frozen.train()
    assert all(not m.training for m in frozen.modules())
    assert frozen.count_parameters()["trainable"] == 0
    out = frozen(torch.randn(1, 3, 12, 32, 32))
    assert not out.requires_grad
    full = _tiny(mode="full")
    full.train()
    assert full.count_parameters()["frozen"] == 0
    assert all(m.training for m in full.modules())
    with pytest.raises(ValueError, match="adapter_index"):
        _tiny(adapter_index=None, mode="adapter")
    with pytest.raises(ValueError, match="multiple of"):
        _tiny(total_frames=10)
    with pytest.raises(ValueError, match="num_frames"):
        _tiny()(torch.randn(1, 3, 6, 32, 32))
