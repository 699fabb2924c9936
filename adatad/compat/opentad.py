"""OpenTAD compatibility: its AdaTAD checkpoints load onto :class:`adatad.models.detector.AdaTAD`.

Key mapping (DDP's ``module.`` prefix is stripped first; everything else keeps its name):

| OpenTAD                               | adatad                     |
|---------------------------------------|----------------------------|
| ``backbone.model.backbone.<name>``    | ``backbone.<name>``        |
| ``projection.<name>``                 | ``projection.<name>``      |
| ``neck.<name>``                       | ``neck.<name>``            |
| ``rpn_head.<name>``                   | ``rpn_head.<name>``        |

Our ViT keeps OpenTAD's (mmaction2's) sub-module names, so the backbone part is the identity after the
prefix. ``rpn_head.loss_normalizer`` is an int64 scalar in OpenTAD's EMA copies; it is cast to our float
buffer on load. adatad's own checkpoints pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from adatad.models.weights import KeyMapping

OPENTAD_DETECTOR_MAPPING = KeyMapping(
    rules=(
        ("backbone.model.backbone.", "backbone."),
        ("backbone.", "backbone."),  # adatad's own names
        ("projection.", "projection."),
        ("neck.", "neck."),
        ("rpn_head.", "rpn_head."),
    ),
)


def is_opentad_state_dict(state: Mapping) -> bool:
    return any(k.startswith(("module.backbone.model.", "backbone.model.")) for k in state)


def convert_opentad_state_dict(state: Mapping) -> dict:
    """OpenTAD (or adatad) detector state dict -> adatad names. Unmapped keys are kept as they are, so the
    strict load that follows names them."""
    renamed, unmapped = OPENTAD_DETECTOR_MAPPING.apply(state)
    for key in unmapped:
        renamed[key] = state[key]
    return renamed


# ------------------------------------------------------------------------------------- config conversion
SUPPORTED_TYPES = {
    "detector": ("ActionFormer",),
    "backbone wrapper": ("mmaction.Recognizer3D",),
    "backbone": ("VisionTransformerAdapter", "VisionTransformerCP", "VisionTransformer"),
    "projection": ("Conv1DTransformerProj",),
    "neck": ("FPNIdentity",),
    "head": ("ActionFormerHead",),
    "prior generator": ("PointGenerator",),
    "cls loss": ("FocalLoss",),
    "reg loss": ("DIOULoss",),
    "pipeline": ("Rearrange", "Reduce", "Interpolate"),
}


class UnsupportedOpenTADConfig(ValueError):
    user_facing = True


def _check_type(part: str, cfg: dict, where: str) -> None:
    kind = cfg.get("type")
    if kind not in SUPPORTED_TYPES[part]:
        raise UnsupportedOpenTADConfig(
            f"OpenTAD config {where}: type {kind!r} is not supported for the {part}; adatad supports: {', '.join(SUPPORTED_TYPES[part])}"
        )


def convert_opentad_model_config(model: dict) -> dict:
    """OpenTAD ``model`` dict (AdaTAD / ActionFormer) -> an adatad config fragment ``{"model": ..., "dataset":
    {"window_size": ...}}`` to merge over the schema defaults (:func:`opentad_config_to_adatad`).

    OpenTAD behaviour is the default for every option our model has and OpenTAD does not."""
    _check_type("detector", model, "model")
    wrapper = model["backbone"]
    _check_type("backbone wrapper", wrapper, "model.backbone")
    vit = wrapper["backbone"]
    _check_type("backbone", vit, "model.backbone.backbone")
    custom = wrapper.get("custom", {})
    pre = wrapper.get("data_preprocessor", {})

    window = None
    chunks = None
    for stage in ("pre_processing_pipeline", "post_processing_pipeline"):
        for i, step in enumerate(custom.get(stage, []) or []):
            _check_type("pipeline", step, f"model.backbone.custom.{stage}[{i}]")
            if step["type"] == "Interpolate":
                window = int(step["size"])
            if step["type"] == "Rearrange" and "t1" in step:
                chunks = int(step["t1"])
    if vit["type"] == "VisionTransformerAdapter":
        mode = "adapter"
        adapter_index = list(vit.get("adapter_index", []))
    else:
        mode = "frozen" if custom.get("freeze_backbone", False) else "full"
        adapter_index = []
    num_frames = int(vit.get("num_frames", 16))
    total_frames = int(vit.get("total_frames", (chunks or 1) * num_frames))
    if chunks is not None and chunks * num_frames != total_frames:
        raise UnsupportedOpenTADConfig(f"OpenTAD config: Rearrange t1={chunks} x num_frames {num_frames} != total_frames {total_frames}")
    window = window or total_frames
    if window != total_frames:
        raise UnsupportedOpenTADConfig(
            f"OpenTAD config: Interpolate size {window} != total_frames {total_frames} (adatad maps one frame per snippet, scale_factor 1)"
        )
    norm_eps = (vit.get("norm_cfg") or {}).get("eps", 1e-6)
    backbone = dict(
        img_size=int(vit.get("img_size", 224)),
        patch_size=int(vit.get("patch_size", 16)),
        embed_dims=int(vit["embed_dims"]),
        depth=int(vit["depth"]),
        num_heads=int(vit["num_heads"]),
        mlp_ratio=float(vit.get("mlp_ratio", 4)),
        qkv_bias=bool(vit.get("qkv_bias", True)),
        num_frames=num_frames,
        tubelet_size=int(vit.get("tubelet_size", 2)),
        drop_path_rate=float(vit.get("drop_path_rate", 0.0)),
        norm_eps=float(norm_eps),
        adapter_index=adapter_index,
        adapter_mlp_ratio=float(vit.get("adapter_mlp_ratio", 0.25)),
        mode=mode,
        with_cp=bool(vit.get("with_cp", False)),
        pretrained=custom.get("pretrain"),
    )

    proj = model["projection"]
    _check_type("projection", proj, "model.projection")
    conv_cfg = proj.get("conv_cfg") or {}
    attn_cfg = proj.get("attn_cfg") or {}
    projection = dict(
        in_channels=int(proj["in_channels"]),
        out_channels=int(proj["out_channels"]),
        arch=list(proj.get("arch", (2, 2, 5))),
        conv_kernel=int(conv_cfg.get("kernel_size", 3)),
        n_head=int(attn_cfg.get("n_head", 4)),
        n_mha_win_size=int(attn_cfg.get("n_mha_win_size", -1)),
        path_pdrop=float(proj.get("path_pdrop", 0.0)),
        proj_pdrop=float(conv_cfg.get("proj_pdrop", 0.0)),
        input_pdrop=float(proj.get("input_pdrop", 0.0)),
        use_abs_pe=bool(proj.get("use_abs_pe", False)),
        max_seq_len=int(proj.get("max_seq_len", window)),
    )
    neck = model["neck"]
    _check_type("neck", neck, "model.neck")
    head = model["rpn_head"]
    _check_type("head", head, "model.rpn_head")
    prior = head.get("prior_generator", {"type": "PointGenerator"})
    _check_type("prior generator", prior, "model.rpn_head.prior_generator")
    losses = head.get("loss", {})
    if "cls_loss" in losses:
        _check_type("cls loss", losses["cls_loss"], "model.rpn_head.loss.cls_loss")
    if "reg_loss" in losses:
        _check_type("reg loss", losses["reg_loss"], "model.rpn_head.loss.reg_loss")
    if int(neck.get("in_channels", projection["out_channels"])) != projection["out_channels"]:
        raise UnsupportedOpenTADConfig("OpenTAD config: neck.in_channels differs from projection.out_channels")
    out = dict(
        mean=list(pre.get("mean", [123.675, 116.28, 103.53])),
        std=list(pre.get("std", [58.395, 57.12, 57.375])),
        backbone=backbone,
        projection=projection,
        neck=dict(num_levels=int(neck.get("num_levels", 6))),
        head=dict(
            num_classes=int(head["num_classes"]),
            feat_channels=int(head.get("feat_channels", projection["out_channels"])),
            num_convs=int(head.get("num_convs", 3)),
            cls_prior_prob=float(head.get("cls_prior_prob", 0.01)),
            strides=list(prior.get("strides", [1, 2, 4, 8, 16, 32])),
            regression_range=[list(r) for r in prior.get("regression_range", [])],
            loss_normalizer=float(head.get("loss_normalizer", 100)),
            loss_normalizer_momentum=float(head.get("loss_normalizer_momentum", 0.9)),
            center_sample_radius=float(head.get("center_sample_radius", 1.5)),
            label_smoothing=float(head.get("label_smoothing", 0.0)),
        ),
    )
    return {"model": out, "dataset": {"window_size": window}}


def opentad_config_to_adatad(model: dict, post_processing: dict | None = None) -> dict:
    """A complete, validated adatad config (schema defaults + the converted OpenTAD model)."""
    from adatad.config import SCHEMA, _schema_defaults, merge, validate

    fragment = convert_opentad_model_config(model)
    if post_processing:
        pp = {k: v for k, v in post_processing.items() if k in ("pre_nms_thresh", "pre_nms_topk")}
        nms = {k: v for k, v in (post_processing.get("nms") or {}).items() if k in SCHEMA["post_processing"]["nms"]}
        fragment["post_processing"] = dict(pp, nms=nms)
    validate(fragment)
    cfg = merge(_schema_defaults(SCHEMA), fragment)
    cfg["_meta"] = {"config_file": "<opentad>", "config_name": "opentad", "overrides": []}
    return cfg
