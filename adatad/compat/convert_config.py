"""``adatad convert-config``: an OpenTAD config file (with its ``_base_`` chain) -> a complete adatad config file.

The OpenTAD file is read by plain Python execution of it and its bases, merged with OpenTAD's (mmengine's) rules:
dicts merge recursively, a dict holding ``_delete_=True`` replaces the inherited one, lists and other values are
replaced (:func:`adatad.config.merge`, the same rules adatad's own configs use). No mmengine, no torch.

Every key of every section OpenTAD reads is accounted for: converted to its adatad key, checked against the one
value adatad implements, or ignored with a reason written next to it in this module (keys that are irrelevant to
adatad by design: decoder threads, output files, the run folder). Anything else fails with
:class:`UnsupportedOpenTADConfig` naming the dotted key and its value; nothing is dropped silently. A key OpenTAD
does not set gets OpenTAD's default (its class/function signature, or the ``getattr`` default of its tools), which
is also adatad's schema default (see :data:`adatad.config.SCHEMA`).

Which OpenTAD objects carry which adatad setting:

==================================================  ==============================================================
OpenTAD                                              adatad
==================================================  ==============================================================
``dataset.train`` (ThumosPaddingDataset) +           ``dataset`` paths/strides, ``dataset.train`` (random
``LoadFrames(method="random_trunc")``                truncation), ``dataset.transform.train``
``dataset.test`` (ThumosSlidingDataset, test mode)   ``dataset.test`` *and* ``dataset.val``: OpenTAD's training loop
                                                     evaluates mAP on the test loader (``tools/train.py``), and
                                                     adatad's ``val`` split is that evaluation
``dataset.train/test`` (AnetResizeDataset) +         ``dataset.sampling="resize"``, ``window_size`` = ``resize_length``,
``LoadFrames(method="resize")``                      ``video_prefix``, ``class_agnostic``, ``train.filter_gt``
``post_processing.external_cls``                     ``post_processing.external_cls`` (CUHKANET / Standard classifier)
``evaluation.blocked_videos``                        ``evaluation.blocked_videos``
``dataset.val``                                      ignored: OpenTAD builds it only for the validation *loss*,
                                                     computed when ``workflow.val_loss_interval > 0`` (refused)
``LoadFrames(scale_factor=s)``                       ``dataset.scale_factor`` (frames per snippet)
``model.backbone`` (Recognizer3D + ViT + custom)     ``model.backbone`` (``type``, ``mode``), ``model.mean/std``
``model.projection/neck/rpn_head``                   ``model.projection/neck/head``
``solver.train`` / ``solver.test``                   ``solver.train`` / ``solver.val`` and ``solver.test``
``solver.amp``                                       ``solver.amp`` with ``solver.amp_dtype="fp16"`` (OpenTAD's fp16
                                                     autocast + GradScaler)
==================================================  ==============================================================
"""

from __future__ import annotations

import argparse
import copy
import math
import pprint
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from adatad.errors import UserError

__all__ = [
    "UnsupportedOpenTADConfig",
    "Conversion",
    "load_opentad_config",
    "convert_opentad_config",
    "convert_opentad_model_config",
    "convert_opentad_post_processing",
    "render_adatad_config",
    "convert_file",
    "main",
]


class UnsupportedOpenTADConfig(UserError, ValueError):
    """An OpenTAD config value adatad cannot represent (the message names the dotted key and the value)."""


_MISSING = object()

# ------------------------------------------------------------------------------------------ OpenTAD defaults
# What OpenTAD uses when a config leaves a key out (commit 3dd7b03 of sming256/OpenTAD; mmaction2 1.x for mmaction.*).
VIT_DEFAULTS = {  # opentad/models/backbones/vit.py VisionTransformerCP, vit_adapter.py, vit_ladder.py signatures
    "img_size": 224,
    "patch_size": 16,
    "in_channels": 3,
    "embed_dims": 768,
    "depth": 12,
    "num_heads": 12,
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "qk_scale": None,
    "drop_rate": 0.0,
    "attn_drop_rate": 0.0,
    "drop_path_rate": 0.0,
    "norm_cfg": {"type": "LN", "eps": 1e-6},
    "num_frames": 16,
    "tubelet_size": 2,
    "use_mean_pooling": True,
    "pretrained": None,
    "return_feat_map": False,
    "with_cp": False,
}
VIT_TYPE_DEFAULTS = {
    "VisionTransformerCP": {"frozen_layers": -1},
    "VisionTransformer": {"frozen_layers": -1},
    "VisionTransformerAdapter": {"adapter_mlp_ratio": 0.25, "total_frames": 768, "adapter_index": [3, 5, 7, 11]},
    "VisionTransformerLadder": {"adapter_mlp_ratio": 0.25, "total_frames": 768, "adapter_index": list(range(6, 12))},
}
NMS_DEFAULTS = {  # opentad/models/utils/post_processing/nms/nms.py batched_nms
    "iou_threshold": 0.0,
    "min_score": 0.0,
    "max_seg_num": 100,
    "use_soft_nms": True,
    "multiclass": True,
    "sigma": 0.5,
    "voting_thresh": 0.0,
}
MMACTION_COLOR_JITTER = {"brightness": 0.5, "contrast": 0.5, "saturation": 0.5, "hue": 0.1}
MMACTION_RRC = {"area_range": [0.08, 1.0], "aspect_ratio_range": [3 / 4, 4 / 3]}

# Keys that are irrelevant to adatad by design: (where, key) -> reason. ``where`` names the dict the key lives in.
IGNORED = {
    ("pipeline:mmaction.DecordInit", "num_threads"): "decoder threads: adatad decodes with its own backend (dataset.backend) "
    "and sets threads per DataLoader worker",
    ("pipeline:ConvertToTensor", "keys"): "tensor conversion: adatad datasets return tensors",
    ("pipeline:Collect", "inputs"): "batch packing: adatad datasets return inputs/masks/gt/metas",
    ("pipeline:Collect", "keys"): "batch packing: adatad datasets return inputs/masks/gt/metas",
    ("pipeline:Collect", "meta_keys"): "batch packing: adatad datasets return their own metas",
    ("dataset.test", "ioa_thresh"): "only filters windows by ground truth when test_mode=False; the test set keeps every window",
    ("vit", "use_mean_pooling"): "only used when return_feat_map=False (features pooled to one vector); adatad returns the "
    "feature map, as OpenTAD's AdaTAD configs do",
    ("vit:VisionTransformerLadder", "return_feat_map"): "VisionTransformerLadder takes no such argument (its **kwargs swallow it)",
    **{
        (f"vit:{kind}", key): f"{kind} has no adapters (its **kwargs swallow the key)"
        for kind in ("VisionTransformerCP", "VisionTransformer")
        for key in ("total_frames", "adapter_index", "adapter_mlp_ratio")
    },
    ("custom", "norm_eval"): "puts the backbone's norm layers in eval mode and freezes their parameters; the ViT's "
    "LayerNorms have no running statistics, and their parameters train exactly as in OpenTAD: frozen in frozen and "
    "adapter/ladder modes, trained in full mode (where norm_eval=True is refused)",
    ("attn_cfg", "attn_pdrop"): "Conv1DTransformerProj fixes attention dropout at 0 whatever the config says",
    ("post_processing", "save_dict"): "adatad always writes the predictions JSON of every test/validation run",
    ("post_processing", "sliding_window"): "set by OpenTAD's test loop from the dataset type; adatad merges sliding "
    "windows per video, and takes the non-sliding path for whole-video (resize) items",
    ("inference", "load_from_raw_predictions"): "OpenTAD's re-evaluation of saved raw outputs; adatad evaluates its "
    "predictions JSON with `adatad eval`",
    ("inference", "save_raw_prediction"): "OpenTAD's raw network outputs dump; not an adatad feature",
    ("evaluation", "thread"): "parallelism of OpenTAD's evaluator; adatad's evaluator is vectorised",
    ("workflow", "val_loss_interval"): "the validation loss pass; off (<= 0) in the recipe, and adatad has none",
    ("", "work_dir"): "adatad's run folder is exps/<dataset.name>/<config name>/gpu<N>_id<run> (or --work-dir)",
    ("dataset", "val"): "OpenTAD builds dataset.val only for the validation loss (tools/train.py runs val_one_epoch "
    "when workflow.val_loss_interval > 0); its mAP evaluation during training runs on dataset.test, which becomes "
    "adatad's dataset.val",
    ("solver", "val"): "loader settings of OpenTAD's validation-loss set (see dataset.val); adatad's solver.val is "
    "OpenTAD's solver.test, the loader OpenTAD evaluates mAP with during training",
}
HELPER_REASON = (
    "a top-level helper variable of the config file; OpenTAD reads only its sections (the values it feeds are "
    "converted where they are used)"
)


@dataclass
class Conversion:
    """Result of :func:`convert_opentad_config`."""

    config: dict  # adatad config sections (a fragment: merge over the schema defaults)
    ignored: list[tuple[str, Any, str]] = field(default_factory=list)  # (dotted key, value, reason)
    source: str = "<opentad>"


class _Ctx:
    def __init__(self, source: str):
        self.source = source
        self.ignored: list[tuple[str, Any, str]] = []

    def fail(self, dotted: str, value: Any, why: str) -> NoReturn:
        shown = "<missing>" if value is _MISSING else repr(value)
        raise UnsupportedOpenTADConfig(f"OpenTAD config {self.source}: {dotted} = {shown}: {why}")


def _norm(value: Any) -> Any:
    """Tuples -> lists, recursively (OpenTAD configs mix them freely)."""
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _same(a: Any, b: Any) -> bool:
    a, b = _norm(a), _norm(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


class _Section:
    """One OpenTAD dict being converted: every key must be read, checked or ignored (see :meth:`done`)."""

    def __init__(self, data: Any, where: str, ctx: _Ctx, ignore_as: tuple[str, ...] = ()):
        if not isinstance(data, dict):
            ctx.fail(where, data, "expected a dict of settings")
        self.data, self.where, self.ctx, self.seen = data, where, ctx, set()
        self.ignore_as = ignore_as  # keys of IGNORED this dict answers to, besides its dotted name

    def key(self, k: str) -> str:
        return f"{self.where}.{k}" if self.where else k

    def has(self, k: str) -> bool:
        return k in self.data

    def get(self, k: str, default: Any = _MISSING) -> Any:
        """The value (or OpenTAD's ``default`` when absent); fails if absent without a default."""
        self.seen.add(k)
        if k in self.data:
            return self.data[k]
        if default is _MISSING:
            self.ctx.fail(self.key(k), _MISSING, "required (OpenTAD has no default for it)")
        return copy.deepcopy(default)

    def num(self, k: str, default: Any = _MISSING, kind: type = float) -> Any:
        v = self.get(k, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
            self.ctx.fail(self.key(k), v, f"expected {'an integer' if kind is int else 'a number'}")
        return kind(v)

    def flag(self, k: str, default: Any = _MISSING) -> bool:
        v = self.get(k, default)
        if not isinstance(v, bool):
            self.ctx.fail(self.key(k), v, "expected True or False")
        return v

    def expect(self, k: str, allowed: Any, default: Any = _MISSING, why: str = "") -> Any:
        """The value, which must equal ``allowed`` (or one of a tuple of them)."""
        v = self.get(k, default)
        options = allowed if isinstance(allowed, tuple) else (allowed,)
        if not any(_same(v, a) for a in options):
            shown = " or ".join(repr(a) for a in options)
            self.ctx.fail(self.key(k), v, why or f"adatad implements only {shown}")
        return v

    def sub(self, k: str, default: Any = _MISSING, ignore_as: tuple[str, ...] = ()) -> _Section:
        return _Section(self.get(k, default), self.key(k), self.ctx, ignore_as)

    def ignore(self, k: str) -> None:
        """Mark ``k`` as irrelevant to adatad by design; the reason comes from :data:`IGNORED`."""
        if k not in self.data:
            return
        reason = None
        for where in (self.where, *self.ignore_as):
            reason = IGNORED.get((where, k), reason)
        if reason is None:  # a programming error: every ignored key has a written reason
            raise KeyError(f"no reason recorded in IGNORED for {self.key(k)} (looked up as {(self.where, *self.ignore_as)})")
        self.seen.add(k)
        self.ctx.ignored.append((self.key(k), self.data[k], reason))

    def done(self) -> None:
        for k, v in self.data.items():
            if k not in self.seen:
                self.ctx.fail(self.key(k), v, "not supported by adatad (no adatad setting or behaviour corresponds to it)")


# -------------------------------------------------------------------------------------------------- loading
def load_opentad_config(path: str | Path) -> dict:
    """Execute an OpenTAD config file and its ``_base_`` chain (plain Python, OpenTAD's merge rules)."""
    from adatad.config import _load_file, _strip_delete

    return _strip_delete(_load_file(Path(path)))


# ------------------------------------------------------------------------------------------------ pipelines
@dataclass
class _Pipeline:
    video_format: str = "mp4"
    prefix: str = ""  # PrepareVideoInfo prefix (ActivityNet: "v_")
    load: dict = field(default_factory=dict)  # LoadFrames settings
    transforms: list[tuple[str, _Section]] = field(default_factory=list)  # image transforms in order


_IMAGE_TRANSFORMS = (
    "mmaction.Resize",
    "mmaction.RandomResizedCrop",
    "mmaction.CenterCrop",
    "mmaction.Flip",
    "mmaction.ImgAug",
    "mmaction.ColorJitter",
)


def _read_pipeline(sec: _Section, key: str, split: str) -> _Pipeline:
    steps = sec.get(key)
    if not isinstance(steps, (list, tuple)):
        sec.ctx.fail(sec.key(key), steps, "expected a list of transforms")
    out = _Pipeline()
    stage = 0  # 0: before the frames are decoded, 1: image transforms, 2: formatting
    for i, raw in enumerate(steps):
        where = f"{sec.key(key)}[{i}]"
        if not isinstance(raw, dict) or "type" not in raw:
            sec.ctx.fail(where, raw, "expected a dict with a 'type'")
        kind = raw["type"]
        step = _Section(raw, where, sec.ctx, ignore_as=(f"pipeline:{kind}",))
        step.get("type")
        if kind in _IMAGE_TRANSFORMS:
            if stage > 1:
                sec.ctx.fail(f"{where}.type", kind, "image transforms must come before FormatShape/ConvertToTensor/Collect")
            stage = 1
            out.transforms.append((kind, step))  # checked by the transform readers
            continue
        if kind == "PrepareVideoInfo":
            out.video_format = step.get("format", "mp4")
            if not isinstance(out.video_format, str):
                sec.ctx.fail(step.key("format"), out.video_format, "expected a file extension")
            step.expect("modality", "RGB", "RGB")
            out.prefix = step.get("prefix", "")
            if not isinstance(out.prefix, str):
                sec.ctx.fail(step.key("prefix"), out.prefix, "expected a file-name prefix (a string)")
        elif kind == "mmaction.DecordInit":
            step.ignore("num_threads")
            step.expect("io_backend", "disk", "disk")
        elif kind == "mmaction.DecordDecode":
            step.expect("mode", "accurate", "accurate", why="adatad decodes every requested frame exactly (mmaction's 'accurate')")
        elif kind == "LoadFrames":
            out.load = _read_load_frames(step, split, resize=sec.data.get("type") in _RESIZE_TYPES)
        elif kind == "mmaction.FormatShape":
            stage = 2
            step.expect("input_format", "NCTHW")
            step.expect("collapse", False, False)
        elif kind in ("ConvertToTensor", "Collect"):
            stage = 2
            for k in list(raw):
                if k != "type":
                    step.ignore(k)
        else:
            sec.ctx.fail(
                f"{where}.type",
                kind,
                "unknown transform: adatad implements PrepareVideoInfo, mmaction.DecordInit, "
                f"LoadFrames, mmaction.DecordDecode, {', '.join(_IMAGE_TRANSFORMS)}, mmaction.FormatShape, "
                "ConvertToTensor, Collect",
            )
        step.done()
    if not out.load:
        sec.ctx.fail(sec.key(key), "[...]", "has no LoadFrames step")
    return out


def _read_load_frames(step: _Section, split: str, resize: bool = False) -> dict:
    step.expect("num_clips", 1, 1)
    method = "resize" if resize else "random_trunc" if split == "train" else "sliding_window"
    step.expect("method", method, "resize", why=f"adatad's {split} set implements LoadFrames(method={method!r}) here")
    out = {"scale_factor": step.num("scale_factor", 1, int)}
    if out["scale_factor"] < 1:
        step.ctx.fail(step.key("scale_factor"), out["scale_factor"], "must be >= 1")
    if split == "train" and not resize:
        out["trunc_len"] = step.num("trunc_len", kind=int)
        out["trunc_thresh"] = step.num("trunc_thresh")
        crop = step.get("crop_ratio", None)
        if crop is not None and (not isinstance(crop, (list, tuple)) or len(crop) != 2):
            step.ctx.fail(step.key("crop_ratio"), crop, "expected None or [low, high]")
        out["crop_ratio"] = None if crop is None else [float(c) for c in crop]
    return out


def _short_side(step: _Section) -> int:
    scale = _norm(step.get("scale"))
    if not (isinstance(scale, list) and len(scale) == 2 and scale[0] == -1 and isinstance(scale[1], int) and scale[1] > 0):
        step.ctx.fail(step.key("scale"), step.data.get("scale"), "adatad implements the short-side resize scale=(-1, S) here")
    step.expect("keep_ratio", True, True, why="scale=(-1, S) keeps the aspect ratio")
    step.expect("interpolation", "bilinear", "bilinear")
    step.expect("lazy", False, False)
    return int(scale[1])


def _crop_size(step: _Section, key: str) -> int:
    v = _norm(step.get(key))
    if isinstance(v, list) and len(v) == 2 and v[0] == v[1]:
        v = v[0]
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        step.ctx.fail(step.key(key), step.data.get(key), "adatad implements square crops of an integer size")
    return int(v)


def _train_transform(pipe: _Pipeline, where: str, ctx: _Ctx) -> dict:
    """The image transforms of the train pipeline -> ``dataset.transform.train``."""
    steps = list(pipe.transforms)
    out: dict[str, Any] = {}

    def take(kind: str) -> _Section | None:
        if steps and steps[0][0] == kind:
            return steps.pop(0)[1]
        return None

    first = take("mmaction.Resize")
    if first is None:
        ctx.fail(where, [k for k, _ in pipe.transforms], "the train transforms must start with mmaction.Resize(scale=(-1, S))")
    out["resize_short"] = _short_side(first)
    first.done()
    rrc = take("mmaction.RandomResizedCrop")
    if rrc is not None:
        out["crop"] = "random_resized"
        for k, default in MMACTION_RRC.items():
            v = rrc.get(k, default)
            if not (isinstance(v, (list, tuple)) and len(v) == 2):
                ctx.fail(rrc.key(k), v, "expected (low, high)")
            out[k] = [float(x) for x in v]
        rrc.expect("lazy", False, False)
        rrc.done()
        resize = take("mmaction.Resize")
        if resize is None:
            ctx.fail(
                where,
                [k for k, _ in pipe.transforms],
                "RandomResizedCrop must be followed by mmaction.Resize(scale=(C, C), keep_ratio=False)",
            )
        scale = _norm(resize.get("scale"))
        if not (isinstance(scale, list) and len(scale) == 2 and scale[0] == scale[1] and isinstance(scale[0], int) and scale[0] > 0):
            ctx.fail(resize.key("scale"), resize.data.get("scale"), "adatad implements a square resize (C, C) after RandomResizedCrop")
        resize.expect("keep_ratio", False, True, why="the resize after RandomResizedCrop must not keep the ratio (keep_ratio=False)")
        resize.expect("interpolation", "bilinear", "bilinear")
        resize.expect("lazy", False, False)
        resize.done()
        out["crop_size"] = int(scale[0])
    else:
        cc = take("mmaction.CenterCrop")
        if cc is None:
            ctx.fail(
                where,
                [k for k, _ in pipe.transforms],
                "after the short-side resize adatad implements RandomResizedCrop + Resize(C, C) or CenterCrop(C)",
            )
        out["crop"] = "center"
        out["crop_size"] = _crop_size(cc, "crop_size")
        cc.expect("lazy", False, False)
        cc.done()
    flip = take("mmaction.Flip")
    out["flip_ratio"] = 0.0
    if flip is not None:
        out["flip_ratio"] = flip.num("flip_ratio", 0.5)
        flip.expect("direction", "horizontal", "horizontal")
        for k in ("flip_label_map", "left_kp", "right_kp"):
            flip.expect(k, None, None)
        flip.expect("lazy", False, False)
        flip.done()
    aug = take("mmaction.ImgAug")
    out["imgaug"] = aug is not None
    if aug is not None:
        aug.expect("transforms", "default", why="adatad implements ImgAug's 'default' RandAugment policy only")
        aug.done()
    jitter = take("mmaction.ColorJitter")
    out["color_jitter"] = jitter is not None
    if jitter is not None:
        for k, default in MMACTION_COLOR_JITTER.items():
            jitter.expect(k, default, default, why=f"adatad implements mmaction's ColorJitter defaults ({k}={default})")
        jitter.done()
    if steps:
        kind, step = steps[0]
        ctx.fail(
            f"{step.where}.type",
            kind,
            "adatad applies the train transforms in the order Resize(-1, S), "
            "RandomResizedCrop + Resize(C, C) or CenterCrop(C), Flip, ImgAug, ColorJitter; this one is out of place",
        )
    return out


def _test_transform(pipe: _Pipeline, where: str, ctx: _Ctx) -> dict:
    kinds = [k for k, _ in pipe.transforms]
    if kinds != ["mmaction.Resize", "mmaction.CenterCrop"]:
        ctx.fail(where, kinds, "adatad's test transform is mmaction.Resize(scale=(-1, S)) + mmaction.CenterCrop(C)")
    resize, cc = pipe.transforms[0][1], pipe.transforms[1][1]
    out = {"resize_short": _short_side(resize), "crop_size": _crop_size(cc, "crop_size")}
    cc.expect("lazy", False, False)
    resize.done()
    cc.done()
    return out


# -------------------------------------------------------------------------------------------------- dataset
_SPLIT_TYPES = {"train": "ThumosPaddingDataset", "test": "ThumosSlidingDataset"}
# OpenTAD's EpicKitchens datasets (Charades' recipe uses them): THUMOS semantics except that seconds are read at the
# dataset's fixed fps (adatad's dataset.fps > 0) and no "Ambiguous" label is skipped (Charades has none)
_FPS_SPLIT_TYPES = {"train": "EpicKitchensPaddingDataset", "test": "EpicKitchensSlidingDataset"}
_RESIZE_TYPES = ("AnetResizeDataset",)  # whole videos resized: adatad's dataset.sampling="resize" (adatad.data.resize)
_OPENTAD_NAME = {"annotation_path": "ann_file"}  # adatad dataset key -> OpenTAD split key, where they differ


def _convert_dataset(root: _Section, val_loss: bool) -> tuple[dict, dict]:
    """-> (adatad ``dataset`` section, facts for the model: window, scale_factor)."""
    ctx = root.ctx
    ds = root.sub("dataset")
    train_type = ds.data.get("train", {}).get("type") if isinstance(ds.data.get("train"), dict) else None
    if train_type in _RESIZE_TYPES:
        return _convert_resize_dataset(ds, val_loss)
    if val_loss:
        ctx.fail(
            "workflow.val_loss_interval", root.data["workflow"].get("val_loss_interval"), "adatad has no validation-loss pass (set it <= 0)"
        )
    ds.ignore("val")
    splits = {name: ds.sub(name) for name in ("train", "test")}
    ds.done()
    out: dict[str, Any] = {}
    shared: dict[str, dict[str, Any]] = {}
    pipes: dict[str, _Pipeline] = {}
    fixed_fps = splits["train"].data.get("type") == _FPS_SPLIT_TYPES["train"]
    types = _FPS_SPLIT_TYPES if fixed_fps else _SPLIT_TYPES
    for name, sec in splits.items():
        why = f"adatad's {name} set implements OpenTAD's {_SPLIT_TYPES[name]} (THUMOS semantics)"
        if fixed_fps:
            why = f"differs from dataset.train.type = {_FPS_SPLIT_TYPES['train']!r}; the {name} set must be {types[name]}"
        sec.expect("type", types[name], why=why)
        values = {
            "annotation_path": sec.get("ann_file"),
            "class_map": sec.get("class_map"),
            "data_path": sec.get("data_path"),
            "block_list": sec.get("block_list", None),
            "feature_stride": sec.num("feature_stride", kind=int),
            "sample_stride": sec.num("sample_stride", 1, int),
        }
        shared[name] = values
        sec.expect("filter_gt", False, False, why="adatad keeps every ground-truth instance (OpenTAD's filter_gt=False)")
        sec.expect("class_agnostic", False, False)
        sec.expect("offset_frames", 0, 0, why="adatad's datasets start snippets at frame 0")
        if fixed_fps:
            values["fps"] = sec.num("fps", -1)
            if values["fps"] <= 0:
                ctx.fail(f"dataset.{name}.fps", values["fps"], f"{types[name]} reads seconds at this rate: it must be > 0")
        else:
            sec.expect("fps", -1, -1, why="adatad takes each video's frame rate from the annotation file (OpenTAD's fps=-1)")
        pipes[name] = _read_pipeline(sec, "pipeline", name)
        if name == "train":
            sec.expect("test_mode", False, False)
            out["train"] = {"subset_name": sec.get("subset_name")}
        else:
            sec.expect("test_mode", True, False, why="adatad's test set keeps every window (OpenTAD's test_mode=True)")
            sec.ignore("ioa_thresh")
            out["test"] = {"subset_name": sec.get("subset_name"), "window_overlap_ratio": sec.num("window_overlap_ratio", 0.25)}
            window = sec.num("window_size", kind=int)
        sec.done()
    for key in shared["train"]:
        a, b = shared["train"][key], shared["test"][key]
        if not _same(a, b):
            opentad_key = _OPENTAD_NAME.get(key, key)
            ctx.fail(
                f"dataset.test.{opentad_key}",
                b,
                f"differs from dataset.train.{opentad_key} = {a!r}; adatad uses one dataset.{key} for all splits",
            )
        out[key] = a
    if pipes["train"].video_format != pipes["test"].video_format:
        ctx.fail(
            "dataset.test.pipeline[PrepareVideoInfo].format",
            pipes["test"].video_format,
            f"differs from the train pipeline's {pipes['train'].video_format!r}; adatad uses one dataset.video_ext",
        )
    out["video_ext"] = pipes["train"].video_format
    for name in ("train", "test"):
        if pipes[name].prefix:
            ctx.fail(f"dataset.{name}.pipeline[PrepareVideoInfo].prefix", pipes[name].prefix,
                     "adatad's window datasets find videos as <data_path>/<name>.<video_ext> (no file-name prefix)")  # fmt: skip
    load_tr, load_te = pipes["train"].load, pipes["test"].load
    if load_tr["trunc_len"] != window:
        ctx.fail(
            "dataset.train.pipeline[LoadFrames].trunc_len",
            load_tr["trunc_len"],
            f"differs from dataset.test.window_size = {window}; adatad uses one dataset.window_size",
        )
    if load_tr["scale_factor"] != load_te["scale_factor"]:
        ctx.fail(
            "dataset.test.pipeline[LoadFrames].scale_factor",
            load_te["scale_factor"],
            f"differs from the train pipeline's {load_tr['scale_factor']}; adatad uses one dataset.scale_factor",
        )
    snippet = out["feature_stride"] * out["sample_stride"]
    scale = load_tr["scale_factor"]
    if scale > snippet or snippet % scale:
        ctx.fail(
            "dataset.train.pipeline[LoadFrames].scale_factor",
            scale,
            f"must divide the snippet stride {snippet} (feature_stride x sample_stride), as OpenTAD asserts",
        )
    out["window_size"] = window
    out["scale_factor"] = scale
    out["train"].update(trunc_thresh=load_tr["trunc_thresh"], crop_ratio=load_tr["crop_ratio"])
    out["val"] = dict(out["test"])  # OpenTAD's training loop evaluates mAP on dataset.test
    out["transform"] = {
        "train": _train_transform(pipes["train"], "dataset.train.pipeline", ctx),
        "test": _test_transform(pipes["test"], "dataset.test.pipeline", ctx),
    }
    kind = splits["train"].data["type"]
    out["name"] = "thumos" if kind.startswith("Thumos") else "epic" if kind.startswith("EpicKitchens") else "custom"
    return out, {"window": window, "scale_factor": scale}


def _convert_resize_dataset(ds: _Section, val_loss: bool) -> tuple[dict, dict]:
    """OpenTAD ``AnetResizeDataset`` train/test + ``LoadFrames(method="resize")`` -> ``dataset.sampling="resize"``
    with ``window_size = resize_length`` (the detector's grid) and ``scale_factor``."""
    ctx = ds.ctx
    if val_loss:
        ctx.fail("workflow.val_loss_interval", val_loss, "adatad has no validation-loss pass (set it <= 0)")
    ds.ignore("val")
    splits = {name: ds.sub(name) for name in ("train", "test")}
    ds.done()
    out: dict[str, Any] = {"sampling": "resize"}
    shared: dict[str, dict[str, Any]] = {}
    pipes: dict[str, _Pipeline] = {}
    for name, sec in splits.items():
        sec.expect("type", _RESIZE_TYPES, why="adatad's resize sampling implements OpenTAD's AnetResizeDataset")
        shared[name] = {
            "annotation_path": sec.get("ann_file"),
            "class_map": sec.get("class_map"),
            "data_path": sec.get("data_path"),
            "block_list": sec.get("block_list", None),
            "window_size": sec.num("resize_length", 128, int),
            "class_agnostic": sec.flag("class_agnostic", False),
        }
        sec.expect("sample_stride", 1, 1, why="LoadFrames(method='resize') samples the whole video; adatad has no stride here")
        pipes[name] = _read_pipeline(sec, "pipeline", name)
        test = name == "test"
        sec.expect("test_mode", test, False, why=f"adatad's {name} set is OpenTAD's with test_mode={test}")
        if test:
            sec.expect("filter_gt", False, False, why="the test set reads no ground truth (test_mode=True)")
            out["test"] = {"subset_name": sec.get("subset_name")}
        else:
            out["train"] = {"subset_name": sec.get("subset_name"), "filter_gt": sec.flag("filter_gt", False)}
        sec.done()
    for key in shared["train"]:
        a, b = shared["train"][key], shared["test"][key]
        if not _same(a, b):
            opentad_key = {"window_size": "resize_length", "annotation_path": "ann_file"}.get(key, key)
            ctx.fail(f"dataset.test.{opentad_key}", b, f"differs from dataset.train.{opentad_key} = {a!r}; adatad uses one value")
        out[key] = a
    for attr, key in (("video_format", "format"), ("prefix", "prefix")):
        if getattr(pipes["train"], attr) != getattr(pipes["test"], attr):
            ctx.fail(f"dataset.test.pipeline[PrepareVideoInfo].{key}", getattr(pipes["test"], attr), "differs from the train pipeline's")
    out["video_ext"], out["video_prefix"] = pipes["train"].video_format, pipes["train"].prefix
    scale = pipes["train"].load["scale_factor"]
    if pipes["test"].load["scale_factor"] != scale:
        key, value = "dataset.test.pipeline[LoadFrames].scale_factor", pipes["test"].load["scale_factor"]
        ctx.fail(key, value, f"differs from the train pipeline's {scale}")
    out["scale_factor"] = scale
    out["val"] = dict(out["test"])  # OpenTAD's training loop evaluates mAP on dataset.test
    out["transform"] = {
        "train": _train_transform(pipes["train"], "dataset.train.pipeline", ctx),
        "test": _test_transform(pipes["test"], "dataset.test.pipeline", ctx),
    }
    out["name"] = "anet"
    return out, {"window": out["window_size"], "scale_factor": scale}


# ---------------------------------------------------------------------------------------------------- model
_REARRANGE_IN = "b n c (t1 t) h w -> (b t1) n c t h w"
_REDUCE = "b n c t h w -> b c t"
_REARRANGE_OUT = "(b t1) c t -> b c (t1 t)"


def _backbone_pipelines(custom: _Section) -> tuple[int, int]:
    """The chunking/pooling pipelines of AdaTAD's backbone wrapper -> (chunks, interpolate size)."""
    ctx = custom.ctx
    pre = custom.get("pre_processing_pipeline")
    post = custom.get("post_processing_pipeline")
    if not isinstance(pre, (list, tuple)) or len(pre) != 1:
        ctx.fail(custom.key("pre_processing_pipeline"), pre, f"adatad implements [Rearrange({_REARRANGE_IN!r})] (16-frame chunks)")
    step = _Section(pre[0], custom.key("pre_processing_pipeline") + "[0]", ctx)
    step.expect("type", "Rearrange")
    step.expect("keys", ["frames"])
    step.expect("ops", _REARRANGE_IN)
    chunks = step.num("t1", kind=int)
    step.done()
    if not isinstance(post, (list, tuple)) or len(post) != 3:
        ctx.fail(
            custom.key("post_processing_pipeline"),
            post,
            "adatad implements [Reduce(mean over h, w), Rearrange(chunks back to time), Interpolate(size=window)]",
        )
    where = custom.key("post_processing_pipeline")
    red, rea, interp = (_Section(s, f"{where}[{i}]", ctx) for i, s in enumerate(post))
    red.expect("type", "Reduce")
    red.expect("keys", ["feats"])
    red.expect("ops", _REDUCE)
    red.expect("reduction", "mean")
    red.done()
    rea.expect("type", "Rearrange")
    rea.expect("keys", ["feats"])
    rea.expect("ops", _REARRANGE_OUT)
    rea.expect("t1", chunks, why=f"must equal the pre-processing chunk count t1={chunks}")
    rea.done()
    interp.expect("type", "Interpolate")
    interp.expect("keys", ["feats"])
    interp.expect("mode", "linear", "linear")
    size = interp.num("size", 128, int)
    interp.done()
    return chunks, size


def _convert_backbone(wrapper: _Section, window: int | None, scale: int | None) -> tuple[dict, dict, dict]:
    """-> (adatad model.backbone, {"mean", "std"}, facts {"window", "scale_factor"})."""
    ctx = wrapper.ctx
    wrapper.expect("type", "mmaction.Recognizer3D")
    vit = wrapper.sub("backbone")
    kind = vit.expect("type", tuple(VIT_TYPE_DEFAULTS), why="adatad implements " + ", ".join(VIT_TYPE_DEFAULTS))
    vit.ignore_as = ("vit", f"vit:{kind}")
    defaults = {**VIT_DEFAULTS, **VIT_TYPE_DEFAULTS[kind]}
    if kind == "VisionTransformerLadder":
        defaults.pop("use_mean_pooling")
        defaults.pop("return_feat_map")
    pre = wrapper.sub("data_preprocessor")
    pre.expect("type", "mmaction.ActionDataPreprocessor")
    mean, std = [float(x) for x in pre.get("mean")], [float(x) for x in pre.get("std")]
    if len(mean) != 3 or len(std) != 3:
        ctx.fail(pre.key("mean"), pre.data.get("mean"), "expected RGB mean and std (3 values each)")
    pre.expect("format_shape", "NCTHW")
    pre.done()
    custom = wrapper.sub("custom", ignore_as=("custom",))
    chunks, size = _backbone_pipelines(custom)
    freeze = custom.flag("freeze_backbone", False)
    norm_eval = custom.flag("norm_eval", True)
    custom.expect("temporal_checkpointing", False, False)
    pretrain = custom.get("pretrain", None)
    wrapper.done()

    out: dict[str, Any] = {"type": "VisionTransformerLadder" if kind == "VisionTransformerLadder" else "VisionTransformerAdapter"}
    for k in ("img_size", "patch_size", "embed_dims", "depth", "num_heads", "num_frames", "tubelet_size"):
        out[k] = vit.num(k, defaults[k], int)
    out["mlp_ratio"] = vit.num("mlp_ratio", defaults["mlp_ratio"])
    out["qkv_bias"] = vit.flag("qkv_bias", defaults["qkv_bias"])
    out["drop_path_rate"] = vit.num("drop_path_rate", defaults["drop_path_rate"])
    out["with_cp"] = vit.flag("with_cp", defaults["with_cp"])
    vit.expect("in_channels", 3, 3)
    vit.expect("qk_scale", None, None, why="adatad's attention uses the default 1/sqrt(head_dim) scale")
    vit.expect("drop_rate", 0.0, 0.0)
    vit.expect("attn_drop_rate", 0.0, 0.0)
    vit.expect("pretrained", None, None, why="weights come from model.backbone.custom.pretrain (adatad: model.backbone.pretrained)")
    norm = vit.sub("norm_cfg", defaults["norm_cfg"])
    norm.expect("type", "LN")
    out["norm_eps"] = norm.num("eps", 1e-5)  # mmcv's LN without eps is PyTorch's LayerNorm default
    norm.done()
    if "return_feat_map" in defaults:
        vit.expect("return_feat_map", True, False, why="adatad's backbone returns the feature map (return_feat_map=True)")
        vit.ignore("use_mean_pooling")
    else:
        vit.ignore("return_feat_map")
    if kind in ("VisionTransformerCP", "VisionTransformer"):
        vit.expect("frozen_layers", -1, -1, why="adatad freezes the whole backbone or nothing (custom.freeze_backbone)")
        for k in ("total_frames", "adapter_index", "adapter_mlp_ratio"):
            vit.ignore(k)
        out["mode"] = "frozen" if freeze else "full"
        out["adapter_index"] = []
        total = None
    else:
        index = vit.get("adapter_index", defaults["adapter_index"])
        if not isinstance(index, (list, tuple)) or not all(isinstance(i, int) for i in index):
            ctx.fail(vit.key("adapter_index"), index, "expected a list of block indices")
        out["adapter_index"] = [int(i) for i in index]
        out["adapter_mlp_ratio"] = vit.num("adapter_mlp_ratio", defaults["adapter_mlp_ratio"])
        total = vit.num("total_frames", defaults["total_frames"], int)
        if freeze:
            ctx.fail(
                custom.key("freeze_backbone"),
                True,
                f"a frozen {kind} trains nothing in the backbone; adatad's frozen mode runs a plain ViT (VisionTransformerCP)",
            )
        out["mode"] = "adapter"
    if norm_eval and out["mode"] == "full":
        ctx.fail(
            custom.key("norm_eval"),
            True,
            "would freeze the LayerNorms of a fully fine-tuned ViT; adatad trains them (OpenTAD's fullft recipes set norm_eval=False)",
        )
    custom.ignore("norm_eval")
    out["pretrained"] = pretrain
    vit.done()
    custom.done()

    frames = chunks * out["num_frames"]
    if window is None:
        window = size
    if scale is None:
        scale = max(1, frames // window)
    if size != window:
        ctx.fail(
            custom.key("post_processing_pipeline") + "[2].size",
            size,
            f"must equal the dataset window {window} (adatad interpolates the backbone features to dataset.window_size)",
        )
    if frames != window * scale:
        ctx.fail(
            custom.key("pre_processing_pipeline") + "[0].t1",
            chunks,
            f"t1 x num_frames = {frames} frames, but the data gives window {window} x scale_factor {scale} = {window * scale} frames",
        )
    if total is not None and total != window * scale:
        ctx.fail(
            vit.key("total_frames"),
            total,
            f"must equal window {window} x scale_factor {scale} = {window * scale} (the adapters' temporal length)",
        )
    return out, {"mean": mean, "std": std}, {"window": window, "scale_factor": scale}


def _convert_projection(sec: _Section, embed_dims: int, window: int) -> dict:
    ctx = sec.ctx
    sec.expect("type", "Conv1DTransformerProj")
    conv = sec.sub("conv_cfg")
    attn = sec.sub("attn_cfg", ignore_as=("attn_cfg",))
    out = {
        "in_channels": sec.num("in_channels", kind=int),
        "out_channels": sec.num("out_channels", kind=int),
        "arch": [int(a) for a in sec.get("arch", [2, 2, 5])],
        "conv_kernel": conv.num("kernel_size", kind=int),
        "proj_pdrop": conv.num("proj_pdrop"),
        "n_head": attn.num("n_head", kind=int),
        "n_mha_win_size": attn.num("n_mha_win_size", kind=int),
        "path_pdrop": sec.num("path_pdrop", 0.0),
        "input_pdrop": sec.num("input_pdrop", 0.0),
        "use_abs_pe": sec.flag("use_abs_pe", False),
    }
    if len(out["arch"]) != 3:
        ctx.fail(sec.key("arch"), sec.data.get("arch"), "expected (#embed convs, #stem blocks, #branch blocks)")
    if out["in_channels"] != embed_dims:
        ctx.fail(sec.key("in_channels"), out["in_channels"], f"must equal the backbone width embed_dims={embed_dims}")
    attn.ignore("attn_pdrop")
    conv.done()
    attn.done()
    if sec.get("norm_cfg", None) is None:
        ctx.fail(sec.key("norm_cfg"), sec.data.get("norm_cfg"), "adatad's projection uses LayerNorm (norm_cfg=dict(type='LN'))")
    norm = sec.sub("norm_cfg")
    norm.expect("type", "LN", why="adatad's projection uses LayerNorm")
    norm.done()
    max_len = sec.num("max_seq_len", 2304, int)
    out["max_seq_len"] = None if max_len == window else max_len  # adatad: None = the dataset's window_size
    sec.done()
    return out


def _convert_neck(sec: _Section, channels: int) -> dict:
    sec.expect("type", "FPNIdentity")
    sec.expect("in_channels", channels, why=f"must equal projection.out_channels={channels}")
    sec.expect("out_channels", channels, why=f"adatad's FPNIdentity keeps the width {channels}")
    out = {"num_levels": sec.num("num_levels", 0, int)}
    sec.expect("scale_factor", 2.0, 2.0)
    sec.expect("start_level", 0, 0)
    sec.expect("end_level", -1, -1)
    norm = sec.sub("norm_cfg", {"type": "LN"})
    norm.expect("type", "LN")
    norm.done()
    sec.done()
    return out


def _convert_head(sec: _Section, channels: int) -> dict:
    sec.expect("type", "ActionFormerHead")
    sec.expect("in_channels", channels, why=f"must equal the neck width {channels}")
    prior = sec.sub("prior_generator")
    prior.expect("type", "PointGenerator")
    prior.expect("use_offset", False, False, why="adatad puts the points at t = i x stride (no half offset)")
    strides = [int(s) for s in prior.get("strides")]
    ranges = [[float(a), float(b)] for a, b in prior.get("regression_range")]
    prior.done()
    loss = sec.sub("loss")
    cls = loss.sub("cls_loss")
    cls.expect("type", "FocalLoss")
    cls.expect("alpha", 0.25, 0.25)
    cls.expect("gamma", 2.0, 2.0)
    cls.done()
    reg = loss.sub("reg_loss")
    reg.expect("type", "DIOULoss")
    reg.done()
    loss.done()
    out = {
        "num_classes": sec.num("num_classes", kind=int),
        "feat_channels": sec.num("feat_channels", kind=int),
        "num_convs": sec.num("num_convs", 3, int),
        "cls_prior_prob": sec.num("cls_prior_prob", 0.01),
        "strides": strides,
        "regression_range": [[int(a) if a.is_integer() else a for a in r] for r in ranges],
        "loss_normalizer": sec.num("loss_normalizer", 100),
        "loss_normalizer_momentum": sec.num("loss_normalizer_momentum", 0.9),
        "center_sample_radius": sec.num("center_sample_radius", 1.5),
        "label_smoothing": sec.num("label_smoothing", 0.0),
        "loss_weight": sec.num("loss_weight", 1.0),
    }
    sec.expect("center_sample", "radius", "radius")
    sec.expect("filter_similar_gt", True, True)
    sec.done()
    return out


def _convert_model(sec: _Section, window: int | None = None, scale: int | None = None) -> tuple[dict, dict]:
    """OpenTAD ``model`` -> (adatad ``model`` section, facts {"window", "scale_factor"})."""
    sec.expect("type", "ActionFormer", why="adatad implements the ActionFormer detector")
    backbone, norm, facts = _convert_backbone(sec.sub("backbone"), window, scale)
    projection = _convert_projection(sec.sub("projection"), backbone["embed_dims"], facts["window"])
    neck = _convert_neck(sec.sub("neck"), projection["out_channels"])
    head = _convert_head(sec.sub("rpn_head"), projection["out_channels"])
    sec.done()
    return {**norm, "backbone": backbone, "projection": projection, "neck": neck, "head": head}, facts


def convert_opentad_model_config(model: dict, source: str = "<opentad model>") -> dict:
    """OpenTAD ``model`` dict alone -> ``{"model": ..., "dataset": {"window_size", "scale_factor"}}`` (the window comes
    from the backbone's Interpolate size, the scale factor from its chunking)."""
    ctx = _Ctx(source)
    out, facts = _convert_model(_Section(model, "model", ctx))
    return {"model": out, "dataset": {"window_size": facts["window"], "scale_factor": facts["scale_factor"]}}


def convert_opentad_post_processing(post: dict, source: str = "<opentad post_processing>") -> dict:
    """OpenTAD ``post_processing`` dict alone -> adatad ``post_processing`` section."""
    return _convert_post(_Section(post, "post_processing", _Ctx(source)))


# ------------------------------------------------------------------------------------------ solver and rest
def _loader(sec: _Section) -> dict:
    out = {"batch_size": sec.num("batch_size", kind=int), "num_workers": sec.num("num_workers", 0, int)}
    sec.done()
    return out


def _convert_solver(sec: _Section) -> dict:
    sec.ignore("val")
    out = {
        "train": _loader(sec.sub("train")),
        "clip_grad_norm": sec.num("clip_grad_norm"),
        "amp": sec.flag("amp", False),
        "fp16_compress": sec.flag("fp16_compress", False),
        "static_graph": sec.flag("static_graph", False),
        "ema": sec.flag("ema", False),
    }
    test = _loader(sec.sub("test"))
    out["val"], out["test"] = dict(test), test  # adatad's val = OpenTAD's in-training mAP evaluation on the test loader
    out["amp_dtype"] = "fp16"  # OpenTAD: torch.cuda.amp.autocast(dtype=torch.float16) + GradScaler
    sec.done()
    return out


def _convert_optimizer(sec: _Section, frozen: bool) -> dict:
    kind = sec.expect("type", ("AdamW", "Adam"), why="adatad implements AdamW and Adam here")
    out: dict[str, Any] = {
        "type": kind,
        "lr": sec.num("lr"),
        "weight_decay": sec.num("weight_decay"),
        "paramwise": sec.flag("paramwise", False),
    }
    if sec.has("betas"):
        betas = sec.get("betas")
        out["betas"] = [float(b) for b in betas]
    if frozen:
        if sec.has("backbone"):
            sec.ctx.ignored.append(
                (
                    sec.key("backbone"),
                    sec.data["backbone"],
                    "OpenTAD builds no backbone groups when custom.freeze_backbone=True (opentad/cores/optimizer.py)",
                )
            )
            sec.seen.add("backbone")
    else:
        bb = sec.sub("backbone")
        groups = {"lr": bb.num("lr"), "weight_decay": bb.num("weight_decay"), "custom": [], "exclude": []}
        for i, entry in enumerate(bb.get("custom", [])):
            e = _Section(entry, f"{bb.key('custom')}[{i}]", sec.ctx)
            groups["custom"].append({"name": e.get("name"), "lr": e.num("lr"), "weight_decay": e.num("weight_decay")})
            e.done()
        groups["exclude"] = list(bb.get("exclude", []))
        bb.done()
        out["backbone"] = groups
    sec.done()
    return out


def _convert_scheduler(sec: _Section) -> dict:
    sec.expect("type", "LinearWarmupCosineAnnealingLR")
    out = {
        "type": "LinearWarmupCosineAnnealingLR",
        "warmup_epoch": sec.num("warmup_epoch", kind=int),
        "max_epoch": sec.num("max_epoch", kind=int),
        "warmup_start_lr": sec.num("warmup_start_lr", 0.0),
        "eta_min": sec.num("eta_min", 1e-8),
    }
    sec.done()
    return out


def _convert_workflow(sec: _Section) -> dict:
    out = {
        "logging_interval": sec.num("logging_interval", kind=int),
        "checkpoint_interval": sec.num("checkpoint_interval", kind=int),
        "val_eval_interval": sec.num("val_eval_interval", kind=int),
        "val_start_epoch": sec.num("val_start_epoch", 0, int),
        "end_epoch": sec.num("end_epoch", kind=int) if sec.has("end_epoch") else None,
    }
    sec.ignore("val_loss_interval")
    sec.done()
    return out


def _convert_post(sec: _Section) -> dict:
    out: dict[str, Any] = {"pre_nms_thresh": sec.num("pre_nms_thresh", 0.001), "pre_nms_topk": sec.num("pre_nms_topk", 2000, int)}
    nms = sec.sub("nms")
    out["nms"] = {
        "use_soft_nms": nms.flag("use_soft_nms", NMS_DEFAULTS["use_soft_nms"]),
        "sigma": nms.num("sigma", NMS_DEFAULTS["sigma"]),
        "max_seg_num": nms.num("max_seg_num", NMS_DEFAULTS["max_seg_num"], int),
        "min_score": nms.num("min_score", NMS_DEFAULTS["min_score"]),
        "iou_threshold": nms.num("iou_threshold", NMS_DEFAULTS["iou_threshold"]),
        "multiclass": nms.flag("multiclass", NMS_DEFAULTS["multiclass"]),
        "voting_thresh": nms.num("voting_thresh", NMS_DEFAULTS["voting_thresh"]),
    }
    nms.expect("method", 2, 2, why="adatad's config selects Gaussian soft-NMS (method 2) or greedy NMS (use_soft_nms=False)")
    nms.expect("t1", 0, 0)
    nms.expect("t2", 0, 0)
    nms.done()
    if sec.get("external_cls", None) is not None:
        ext = sec.sub("external_cls")
        kinds = ("CUHKANETClassifier", "StandardClassifier")
        kind = ext.expect("type", kinds, why="adatad implements " + " and ".join(kinds))
        out["external_cls"] = {"type": kind, "path": ext.get("path"), "topk": ext.num("topk", 1, int)}
        if kind == "StandardClassifier":
            out["external_cls"]["apply_softmax"] = ext.flag("apply_softmax", False)
        ext.done()
    sec.ignore("save_dict")
    sec.ignore("sliding_window")
    sec.done()
    return out


def _convert_evaluation(sec: _Section, test_subset: str) -> dict:
    sec.expect("type", "mAP")
    sec.expect("subset", test_subset, why=f"adatad evaluates the split's own subset, dataset.test.subset_name = {test_subset!r}")
    out = {"tiou_thresholds": [float(t) for t in sec.get("tiou_thresholds")], "ground_truth_filename": sec.get("ground_truth_filename")}
    sec.expect("top_k", None, None)
    if sec.get("blocked_videos", None) is not None:
        out["blocked_videos"] = sec.get("blocked_videos")
    sec.ignore("thread")
    sec.done()
    return out


_SECTIONS = ("dataset", "model", "solver", "optimizer", "scheduler", "workflow", "post_processing", "evaluation", "inference")


def convert_opentad_config(cfg: dict, source: str = "<opentad>") -> Conversion:
    """A loaded OpenTAD config (see :func:`load_opentad_config`) -> :class:`Conversion` (adatad sections + ignored keys)."""
    ctx = _Ctx(source)
    root = _Section(cfg, "", ctx)
    for key, value in cfg.items():
        if key in _SECTIONS or key == "work_dir":
            continue
        if isinstance(value, dict):
            ctx.fail(key, value, "not an OpenTAD section adatad knows (" + ", ".join(_SECTIONS) + ")")
        root.seen.add(key)
        ctx.ignored.append((key, value, HELPER_REASON))
    root.ignore("work_dir")
    workflow = root.sub("workflow")
    val_loss = workflow.num("val_loss_interval", -1, int) > 0 if workflow.has("val_loss_interval") else False
    workflow.seen.discard("val_loss_interval")
    dataset, facts = _convert_dataset(root, val_loss)
    model, _ = _convert_model(root.sub("model"), facts["window"], facts["scale_factor"])
    frozen = model["backbone"]["mode"] == "frozen"
    out = {
        "dataset": dataset,
        "model": model,
        "solver": _convert_solver(root.sub("solver")),
        "optimizer": _convert_optimizer(root.sub("optimizer"), frozen),
        "scheduler": _convert_scheduler(root.sub("scheduler")),
        "workflow": _convert_workflow(workflow),
        "post_processing": _convert_post(root.sub("post_processing")),
        "evaluation": _convert_evaluation(root.sub("evaluation"), dataset["test"]["subset_name"]),
    }
    if root.has("inference"):
        inf = root.sub("inference", ignore_as=("inference",))
        for key in ("load_from_raw_predictions", "save_raw_prediction"):
            inf.expect(key, False, False)
            inf.seen.discard(key)
            inf.ignore(key)
        inf.done()
    root.done()
    return Conversion(out, ctx.ignored, source)


# ------------------------------------------------------------------------------------------------- writing
def render_adatad_config(conv: Conversion) -> str:
    """A complete adatad config file (schema defaults filled in), with the ignored OpenTAD keys listed as comments."""
    from adatad.config import SCHEMA, ConfigError, _schema_defaults, merge, validate

    cfg = merge(_schema_defaults(SCHEMA), conv.config)
    try:
        validate(conv.config)
        validate(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{conv.source}: {exc}") from exc
    lines = [
        f"# adatad config converted from the OpenTAD config {conv.source} by `adatad convert-config`.",
        "# Every setting is written out (adatad's schema defaults included). OpenTAD keys left out on purpose:",
    ]
    for key, value, reason in conv.ignored:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        lines.append(f"#   {key} = {shown}: {reason}")
    lines.append("")
    for key, value in cfg.items():
        lines.append(f"{key} = {pprint.pformat(value, width=110, sort_dicts=False)}")
        lines.append("")
    return "\n".join(lines)


def convert_file(path: str | Path, out: str | Path | None = None) -> str:
    """Convert the OpenTAD config at ``path``; write it to ``out`` when given. Returns the adatad config text."""
    path = Path(path)
    conv = convert_opentad_config(load_opentad_config(path), source=str(path))
    text = render_adatad_config(conv)
    if out is not None:
        Path(out).write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="adatad convert-config",
        description="Convert an OpenTAD config file (with its _base_ chain) into a complete adatad config file. Keys adatad "
        "cannot represent fail with their dotted name and value; keys irrelevant to adatad are listed in the output's header.",
    )
    parser.add_argument("config", help="OpenTAD config file, e.g. OpenTAD/configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py")
    parser.add_argument("--out", default=None, help="write the adatad config here (default: print it)")
    args = parser.parse_args(argv)
    text = convert_file(args.config, args.out)
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"adatad convert-config: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
