"""The AdaTAD detector: VideoMAE backbone (+ TIA adapters, or a side ladder) -> ActionFormer projection -> FPN -> head.

This is the one place where a config maps onto the model's constructors (:func:`build_detector`).
Sub-module names (``backbone``, ``projection``, ``neck``, ``rpn_head``) follow OpenTAD so that its
checkpoints map with a short key table (``adatad.models.weights``).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from adatad.models.actionformer import (
    ActionFormerHead,
    Conv1DTransformerProj,
    FPNIdentity,
    max_div_factor,
    pad_to_max_seq_len,
)
from adatad.models.ladder import LadderBackbone
from adatad.models.layers import count_parameters
from adatad.models.postprocess import window_candidates
from adatad.models.videomae import VideoMAEBackbone
from adatad.models.weights import load_pretrained_backbone

logger = logging.getLogger(__name__)


class AdaTAD(nn.Module):
    """End-to-end detector. ``inputs`` are uint8 (or float, 0..255) frames ``[B, 3, T, H, W]``; they are
    normalised here, on the inputs' device, with the configured mean/std.

    As OpenTAD's ``ActionFormer`` detector, the backbone features are zero-padded (mask False) to the projection's
    ``max_seq_len`` (longer sequences: to the next multiple of :func:`~adatad.models.actionformer.max_div_factor`)
    before the projection, so the neck/head levels have ``max_seq_len / stride`` points. Valid points get the
    same values either way (masked convs, -inf / -1e4 key masks); the padding matters for local attention, whose
    banded windows need a length divisible by ``stride x window`` (EPIC: window 768 = max_seq_len, no padding;
    Ego4D: window 1800 padded to 2048), and for the absolute position table (``use_abs_pe``)."""

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(
        self,
        backbone: VideoMAEBackbone | LadderBackbone,
        projection: Conv1DTransformerProj,
        neck: FPNIdentity,
        head: ActionFormerHead,
        mean,
        std,
        scale_factor: int = 1,
    ):
        super().__init__()
        self.scale_factor = int(scale_factor)  # frames per snippet: inputs hold masks.shape[-1] x scale_factor frames
        self.backbone = backbone
        self.projection = projection
        self.neck = neck
        self.rpn_head = head
        self.max_div_factor = max_div_factor(head.strides, projection.mha_win_size, projection.max_seq_len)
        self.register_buffer("pixel_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1), persistent=False)

    @property
    def num_classes(self) -> int:
        return self.rpn_head.num_classes

    def normalize(self, inputs: torch.Tensor) -> torch.Tensor:
        return (inputs.float() - self.pixel_mean) / self.pixel_std

    def features(self, inputs: torch.Tensor, masks: torch.Tensor):
        """-> (backbone features ``[B,C,T]``, neck features per level ``[B,C,T_l]``, masks per level ``[B,T_l]``).

        ``inputs`` ``[B, 3, T x scale_factor, H, W]``, ``masks`` ``[B, T]``."""
        if inputs.shape[2] != masks.shape[-1] * self.scale_factor:
            raise ValueError(f"inputs hold {inputs.shape[2]} frames for {masks.shape[-1]} snippets; the model expects "
                             f"{self.scale_factor} frame(s) per snippet (dataset.scale_factor)")  # fmt: skip
        feats = self.backbone(self.normalize(inputs))
        padded, masks = pad_to_max_seq_len(feats, masks, self.projection.max_seq_len, self.max_div_factor)
        fpn_feats, fpn_masks = self.projection(padded, masks)
        fpn_feats, fpn_masks = self.neck(fpn_feats, fpn_masks)
        return feats, fpn_feats, fpn_masks

    def forward(
        self,
        inputs: torch.Tensor,
        masks: torch.Tensor,
        gt_segments=None,
        gt_labels=None,
        return_loss: bool = True,
        pre_nms_thresh: float = 0.001,
        pre_nms_topk: int = 2000,
    ):
        """Training/validation: a dict of losses (``cls_loss``, ``reg_loss``, ``cost``).
        Testing (``return_loss=False``): per-sample candidate dicts in grid units (see
        :func:`adatad.models.postprocess.window_candidates`); callers pass ``post_processing.pre_nms_*``."""
        _, fpn_feats, fpn_masks = self.features(inputs, masks)
        cls_logits, reg = self.rpn_head(fpn_feats, fpn_masks)
        if return_loss:
            if gt_segments is None or gt_labels is None:
                raise ValueError("AdaTAD.forward(return_loss=True) needs gt_segments and gt_labels")
            return self.rpn_head.losses(cls_logits, reg, fpn_masks, gt_segments, gt_labels)
        return window_candidates(
            [c.float() for c in cls_logits],
            [r.float() for r in reg],
            fpn_masks,
            self.rpn_head.strides,
            pre_nms_thresh=pre_nms_thresh,
            pre_nms_topk=pre_nms_topk,
        )

    def count_parameters(self) -> dict[str, int]:
        return count_parameters(self)


BACKBONE_TYPES = ("VisionTransformerAdapter", "VisionTransformerLadder")


def build_backbone(bcfg: dict, window: int, scale_factor: int = 1) -> VideoMAEBackbone | LadderBackbone:
    """``model.backbone`` (without ``pretrained``/``allow_missing``) -> the backbone its ``type`` names, seeing
    ``window x scale_factor`` frames and returning features interpolated to ``window`` steps:
    ``"VisionTransformerAdapter"`` (default; :class:`VideoMAEBackbone`, any ``mode``) or
    ``"VisionTransformerLadder"`` (:class:`LadderBackbone`: frozen ViT + side ladder; ``mode`` must be
    ``"adapter"``, i.e. only the ladder trains)."""
    b = dict(bcfg)
    kind = b.pop("type", "VisionTransformerAdapter")
    adapter_index = b.pop("adapter_index", None)
    adapter_index = list(adapter_index) if adapter_index else []
    if kind == "VisionTransformerAdapter":
        return VideoMAEBackbone(**b, adapter_index=adapter_index, total_frames=window * scale_factor, out_len=window)
    if kind == "VisionTransformerLadder":
        mode = b.pop("mode", "adapter")
        if mode != "adapter":
            raise ValueError(
                f"model.backbone.mode={mode!r} is not available with type='VisionTransformerLadder': its ViT is always "
                "frozen and only the side ladder trains (mode='adapter')"
            )
        return LadderBackbone(**b, adapter_index=adapter_index, total_frames=window * scale_factor, out_len=window)
    raise ValueError(f"model.backbone.type={kind!r} is unknown; choose one of {', '.join(BACKBONE_TYPES)}")


def build_detector(cfg: dict, load_pretrained: bool = True) -> AdaTAD:
    """Build :class:`AdaTAD` from a resolved config (``cfg["model"]`` + the dataset's window size and scale factor:
    the backbone sees ``window_size x scale_factor`` frames and its features are interpolated to ``window_size``)."""
    mcfg = cfg["model"]
    window = int(cfg["dataset"]["window_size"])
    scale = int(cfg["dataset"]["scale_factor"])
    b = dict(mcfg["backbone"])
    pretrained, allow_missing = b.pop("pretrained"), b.pop("allow_missing")
    backbone = build_backbone(b, window, scale)
    p = mcfg["projection"]
    if p["in_channels"] != b["embed_dims"]:
        raise ValueError(f"model.projection.in_channels={p['in_channels']} must equal model.backbone.embed_dims="
                         f"{b['embed_dims']} (the projection reads the backbone's features)")  # fmt: skip
    projection = Conv1DTransformerProj(
        in_channels=p["in_channels"],
        out_channels=p["out_channels"],
        arch=tuple(p["arch"]),
        conv_kernel=p["conv_kernel"],
        n_head=p["n_head"],
        n_mha_win_size=p["n_mha_win_size"],
        path_pdrop=p["path_pdrop"],
        attn_pdrop=p["attn_pdrop"],
        proj_pdrop=p["proj_pdrop"],
        input_pdrop=p["input_pdrop"],
        use_abs_pe=p["use_abs_pe"],
        max_seq_len=window if p["max_seq_len"] is None else p["max_seq_len"],
    )
    num_levels = mcfg["neck"]["num_levels"]
    neck = FPNIdentity(in_channels=p["out_channels"], out_channels=p["out_channels"], num_levels=num_levels)
    h = mcfg["head"]
    head = ActionFormerHead(
        num_classes=h["num_classes"],
        in_channels=p["out_channels"],
        feat_channels=h["feat_channels"],
        num_convs=h["num_convs"],
        cls_prior_prob=h["cls_prior_prob"],
        strides=tuple(h["strides"]),
        regression_range=tuple(tuple(r) for r in h["regression_range"]),
        loss_normalizer=h["loss_normalizer"],
        loss_normalizer_momentum=h["loss_normalizer_momentum"],
        center_sample_radius=h["center_sample_radius"],
        label_smoothing=h["label_smoothing"],
        loss_weight=h["loss_weight"],
        filter_similar_gt=h["filter_similar_gt"],
    )
    model = AdaTAD(backbone, projection, neck, head, mcfg["mean"], mcfg["std"], scale_factor=scale)
    if load_pretrained and pretrained:
        load_pretrained_backbone(model.backbone, pretrained, allow_missing=allow_missing)
    counts = model.count_parameters()
    logger.info(
        "model: %s trainable / %s frozen parameters (backbone %s, mode %s)",
        f"{counts['trainable']:,}",
        f"{counts['frozen']:,}",
        b["type"],
        b["mode"],
    )
    return model
