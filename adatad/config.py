"""Python config files with ``_base_`` inheritance, ``--cfg-options`` overrides and validation.

A config file is a Python module: its public module-level variables form the config. ``_base_`` is a
path or list of paths (relative to the file) merged first, in order; the file's own values are merged
on top. Dicts merge recursively (a child key overrides the base key); a dict holding ``_delete_=True``
replaces the base dict wholesale; lists and all other values are replaced.

Every section the code reads (``dataset``, ``model``, ``solver``, ...) is validated against
:data:`SCHEMA`: an unknown key fails naming the dotted key and suggesting the closest known keys, and a
value of the wrong type fails naming the key, the expected type and the value. Top-level plain values
(``window_size = 768``) are free helper variables, as in OpenTAD configs; top-level dicts must be known
sections. The resolved config (defaults filled in) is what the engine uses and what it saves.

This module does not import torch.
"""

from __future__ import annotations

import ast
import copy
import difflib
import importlib.resources
import math
import pprint
from pathlib import Path
from typing import Any

from adatad.errors import UserError

__all__ = [
    "ConfigError",
    "SCHEMA",
    "CHOICES",
    "load_config",
    "merge",
    "parse_value",
    "validate",
    "dump_config",
    "get",
    "config_root",
    "packaged_config",
]


class ConfigError(UserError, ValueError):
    """A config file, key or value that the code cannot use."""


class _Any:
    """Schema marker: any value is accepted (free-form sub-trees and values)."""

    def __init__(self, default: Any = None):
        self.default = default

    def __repr__(self) -> str:
        return f"Any({self.default!r})"


# The schema is the set of keys the code reads, each with its one default. A default is what OpenTAD uses when a
# config leaves the setting out: its code default (class signature, ``getattr`` default), or, for the THUMOS-14
# end-to-end dataset and the ActionFormer detector, the value of the OpenTAD ``_base_`` file every AdaTAD THUMOS
# config inherits (``_base_/datasets/thumos-14/e2e_train_trunc_test_sw_256x224x224.py``, ``_base_/models/actionformer.py``).
# Keys OpenTAD requires (no default anywhere) and adatad-only keys hold adatad's choice and are marked so.
# Recipe values (the seed's VideoMAE-S adapter recipe and every other one) live in configs/, never here: a recipe
# states what differs from these defaults, as OpenTAD's recipe files do. tests/test_recipes.py pins the defaults to
# OpenTAD's (OPENTAD_DEFAULTS in tests/opentad_thumos_recipes.py).
# A value ``None`` accepts any type; float accepts int; list and tuple are interchangeable.
SCHEMA: dict[str, Any] = dict(
    dataset=dict(
        name="custom",  # adatad: names the run folder exps/<name>/<config name>/gpu<N>_id<run>
        annotation_path=None,  # required
        class_map=None,  # required
        data_path=None,  # required
        video_ext="mp4",
        block_list=None,
        feature_stride=4,
        sample_stride=1,  # snippet stride = feature_stride x sample_stride frames
        window_size=256,  # snippets per window
        scale_factor=1,  # frames per snippet the backbone sees (features are interpolated back to window_size)
        # OpenTAD's dataset fps: -1 reads seconds with each video's frame / duration (ThumosPaddingDataset); > 0 reads
        # them at this fixed rate, int(t * fps), the video lasting int(duration * fps) frames (EpicKitchens*Dataset:
        # EPIC-Kitchens and Charades, 30; annotations then need no "frame")
        fps=-1.0,
        backend="pyav",  # adatad: video decoder
        cache_dir=None,  # adatad: snippet cache written by `adatad prepare cache` (None: read the videos)
        # "windows": THUMOS-style random truncation (train) and sliding windows (test); "resize": every video
        # resized to window_size x scale_factor frames (OpenTAD's AnetResizeDataset, LoadFrames(method="resize"))
        sampling="windows",
        video_prefix="",  # file name = video_prefix + name + "." + video_ext (OpenTAD PrepareVideoInfo prefix; ANet "v_")
        class_agnostic=False,  # every instance gets label 0 (1-class head; labels from post_processing.external_cls)
        train=dict(
            subset_name="training",
            # OpenTAD's filter_gt: sampling="resize": drop instances covering <= 1 % of the video; "windows": drop
            # instances of 0 frames (EPIC-Kitchens)
            filter_gt=False,
            trunc_thresh=0.5,
            crop_ratio=[0.9, 1.0],
            skip_missing=False,  # adatad
            check_videos=True,  # adatad: probe every video before training
            # adatad: a sample whose video fails to decode is replaced by the next one (logged once per video,
            # counted in the log, TensorBoard and the checkpoint); training stops when more than this fraction
            # of the samples seen so far (counting the rest of the epoch) failed
            max_bad_fraction=0.01,
        ),
        # mAP evaluation during training. OpenTAD evaluates on its *test* set then (tools/train.py); its dataset.val is
        # only for a validation loss adatad does not have. So val defaults to OpenTAD's test settings.
        # decode_once (adatad): read each video once, forward, and cut all its windows from memory (each frame
        # decoded once instead of about twice; items identical); False: decode window by window
        val=dict(subset_name="validation", window_overlap_ratio=0.5, skip_missing=False, decode_once=True),
        test=dict(subset_name="validation", window_overlap_ratio=0.5, skip_missing=False, decode_once=True),
        transform=dict(
            train=dict(
                resize_short=256,  # mmaction Resize(scale=(-1, S))
                crop="random_resized",  # "random_resized": RandomResizedCrop + Resize(C, C); "center": CenterCrop(C)
                crop_size=224,
                area_range=[0.08, 1.0],  # RandomResizedCrop (mmaction's defaults)
                aspect_ratio_range=[3 / 4, 4 / 3],
                flip_ratio=0.5,  # mmaction Flip; 0: no flip
                imgaug=False,  # mmaction ImgAug(transforms="default")
                color_jitter=False,  # mmaction ColorJitter() with its defaults
            ),
            test=dict(resize_short=224, crop_size=224),  # Resize(scale=(-1, S)) + CenterCrop(C)
            on_gpu=False,  # adatad: run the train augmentation on the device, on whole batches
        ),
    ),
    model=dict(
        mean=[123.675, 116.28, 103.53],  # required in OpenTAD (data_preprocessor); adatad: ImageNet RGB statistics
        std=[58.395, 57.12, 57.375],
        backbone=dict(
            type="VisionTransformerAdapter",  # or "VisionTransformerLadder" (side tuning: frozen ViT + ladder)
            img_size=224,
            patch_size=16,
            embed_dims=768,
            depth=12,
            num_heads=12,
            mlp_ratio=4.0,
            qkv_bias=True,
            num_frames=16,
            tubelet_size=2,
            drop_path_rate=0.0,
            norm_eps=1e-6,
            adapter_index=[3, 5, 7, 11],
            adapter_mlp_ratio=0.25,
            adapter_kernel=3,
            mode="adapter",  # "adapter" | "frozen" (OpenTAD freeze_backbone=True) | "full"
            with_cp=False,
            pretrained=None,
            allow_missing=False,  # adatad
        ),
        projection=dict(
            in_channels=2048,
            out_channels=512,
            arch=[2, 2, 5],
            conv_kernel=3,
            n_head=4,
            n_mha_win_size=_Any(19),  # local attention window (-1: global), or a list with one per level (Ego4D)
            path_pdrop=0.1,
            attn_pdrop=0.0,
            proj_pdrop=0.0,
            input_pdrop=0.0,
            use_abs_pe=False,
            max_seq_len=None,  # adatad: None = the dataset's window_size (OpenTAD's recipes set max_seq_len=window_size)
        ),
        neck=dict(num_levels=6),
        head=dict(
            num_classes=20,
            feat_channels=512,
            num_convs=2,
            cls_prior_prob=0.01,
            strides=[1, 2, 4, 8, 16, 32],
            regression_range=[[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]],
            loss_normalizer=100.0,
            loss_normalizer_momentum=0.9,
            center_sample_radius=1.5,
            label_smoothing=0.0,
            loss_weight=1.0,  # weight of the regression loss
            filter_similar_gt=True,  # OpenTAD: drop duplicate GT before assignment (Ego4D's config sets False)
        ),
    ),
    solver=dict(
        # batch sizes are global, as in OpenTAD: each of N processes takes batch_size // N
        train=dict(batch_size=2, num_workers=2, accumulate=1),  # required in OpenTAD; accumulate: adatad
        val=dict(batch_size=2, num_workers=2),
        test=dict(batch_size=2, num_workers=2),
        # adatad: RAM the batches prepared ahead by one process's DataLoader workers may hold (pinned copies
        # included); sizes each loader's prefetch_factor from the bytes of one window
        loader_memory_gb=4.0,
        clip_grad_norm=1.0,  # required in OpenTAD
        amp=False,
        amp_dtype="fp16",  # "fp16": OpenTAD's fp16 autocast + GradScaler; "bf16": bfloat16 autocast, no scaler (opt-in)
        fp16_compress=False,
        static_graph=False,
        ema=False,
        ema_decay=0.999,
        seed=42,
        deterministic=True,
    ),
    optimizer=dict(
        type="AdamW",  # required in OpenTAD
        lr=1e-4,  # required in OpenTAD
        weight_decay=0.05,  # required in OpenTAD
        betas=[0.9, 0.999],
        paramwise=False,
        # required in OpenTAD unless the backbone is frozen; lr 0 leaves the parameters out of the optimizer
        backbone=dict(lr=0.0, weight_decay=0.0, custom=_Any([]), exclude=_Any([])),
    ),
    # type, warmup_epoch and max_epoch are required in OpenTAD
    scheduler=dict(type="LinearWarmupCosineAnnealingLR", warmup_epoch=5, max_epoch=100, warmup_start_lr=0.0, eta_min=1e-8),
    post_processing=dict(
        pre_nms_thresh=0.001,
        pre_nms_topk=2000,
        nms=dict(
            use_soft_nms=True,
            sigma=0.5,
            max_seg_num=100,
            min_score=0.0,
            iou_threshold=0.0,
            multiclass=True,
            voting_thresh=0.0,
        ),
        # OpenTAD's external video classifier (class-agnostic detection + video-level classes; sampling="resize"):
        # dict(type="CUHKANETClassifier" | "StandardClassifier", path=..., topk=..., apply_softmax=False)
        external_cls=_Any(None),
    ),
    # mAP on the split's own dataset.<split>.subset_name (OpenTAD passes subset="validation", its test subset)
    # ground_truth_filename None: dataset.annotation_path. blocked_videos: the evaluator's block list (a JSON list or one
    # name per line; OpenTAD's ActivityNet blocked.json), exactly as OpenTAD's evaluator; None: dataset.block_list (adatad)
    evaluation=dict(tiou_thresholds=[0.3, 0.4, 0.5, 0.6, 0.7], ground_truth_filename=None, blocked_videos=None),
    workflow=dict(
        logging_interval=50,  # required in OpenTAD
        checkpoint_interval=2,  # required in OpenTAD
        val_eval_interval=2,  # required in OpenTAD
        val_start_epoch=0,
        end_epoch=None,  # None: scheduler.max_epoch
    ),
    # adatad infer samples snippets by time at this rate (the training videos' fps; None: each video's own rate)
    inference=dict(reference_fps=None),
    work_dir=None,  # None: exps/<dataset.name>/<config name>/gpu<N>_id<run>
    # adatad (mmengine's load_from; `adatad train --load-from`): a detector checkpoint (adatad or OpenTAD) whose weights
    # start the training: fine-tuning, not a resume (fresh optimizer and schedule, epoch 0); the classifier is
    # re-initialised when the class set differs. model.backbone.pretrained is then not read.
    load_from=None,
)

# String keys with a fixed set of values.
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset.transform.train.crop": ("random_resized", "center"),
    "dataset.sampling": ("windows", "resize"),
    "model.backbone.type": ("VisionTransformerAdapter", "VisionTransformerLadder"),
    "model.backbone.mode": ("adapter", "frozen", "full"),
    "solver.amp_dtype": ("fp16", "bf16"),
}

# Keys that existed once, with what to do instead.
_REMOVED = {
    "evaluation.subset": "the evaluator uses the split's own dataset.<split>.subset_name; delete the key",
    "evaluation.type": "adatad evaluates mAP only; delete the key",
}

# Top-level keys the loader itself uses.
_RESERVED = {"_base_"}


# ----------------------------------------------------------------------------------------- shipped configs
def config_root() -> Path:
    """The config tree shipped inside the package (``adatad/configs``; the repository's ``configs/`` is a link to it),
    found through :mod:`importlib.resources`, so an installed wheel has it wherever the working directory is."""
    root = importlib.resources.files("adatad").joinpath("configs")
    if not isinstance(root, Path) or not root.is_dir():  # a zipped install: _base_ files must be real files
        raise ConfigError(f"adatad's shipped configs are not a folder on disk ({root}); install adatad unzipped (pip install)")
    return root


def packaged_config(name: str | Path) -> Path:
    """A shipped config by its path below ``configs/``, e.g. ``"demo/demo_tiny.py"``."""
    path = config_root() / name
    if not path.is_file():
        raise ConfigError(f"no shipped config {name} (looked at {path}); the shipped configs are under {config_root()}")
    return path


# --------------------------------------------------------------------------------------------- loading
def _exec_file(path: Path) -> dict[str, Any]:
    """Run a config file as Python reads a source file (bytes: a byte-order mark or an encoding declaration is
    honoured); any error it raises becomes a :class:`ConfigError` naming the file and line."""
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": f"adatad_config_{path.stem}"}
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:  # also a file that is not UTF-8 (or its declared encoding), or has NUL bytes
        where = f" at line {exc.lineno}" if exc.lineno else ""
        raise ConfigError(f"config {path}: syntax error{where}: {exc.msg}") from exc
    except ValueError as exc:  # NUL bytes (Python < 3.12)
        raise ConfigError(f"config {path} is not Python source: {exc}") from exc
    try:
        exec(code, namespace)  # noqa: S102 - config files are Python by design, like OpenTAD's
    except Exception as exc:  # the file's own code failed (NameError, ImportError, ...): user input, not a bug
        tb, line = exc.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = tb.tb_lineno
            tb = tb.tb_next
        where = f" at line {line}" if line is not None else ""
        msg = (str(exc).splitlines() or [""])[0][:300]
        raise ConfigError(f"config {path}: {type(exc).__name__}{where}: {msg}") from exc
    out = {}
    for key, value in namespace.items():
        if key.startswith("__") or (key.startswith("_") and key not in _RESERVED):
            continue
        if callable(value) or type(value).__name__ == "module":
            continue
        out[key] = value
    return out


def merge(base: Any, child: Any) -> Any:
    """Merge ``child`` onto ``base``: dicts recursively, lists and other values replaced.

    A child dict holding ``_delete_=True`` replaces the base dict wholesale. The marker is kept in the result
    (so that a base file's ``_delete_`` also applies when it is merged onto an earlier sibling base) and removed
    by :func:`load_config` once everything is merged."""
    if isinstance(base, dict) and isinstance(child, dict):
        if child.get("_delete_", False):
            return copy.deepcopy(child)
        out = copy.deepcopy(base)
        for key, value in child.items():
            out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    return copy.deepcopy(child)


def _strip_delete(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_delete(v) for k, v in value.items() if k != "_delete_"}
    return value


def _load_file(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path.is_dir():
        raise ConfigError(f"config {path} is a directory; expected a Python config file")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path in seen:
        raise ConfigError(f"config {path}: circular _base_ inheritance ({' -> '.join(map(str, seen))})")
    raw = _exec_file(path)
    bases = raw.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, (list, tuple)) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"config {path}: _base_ must be a path or a list of paths (strings), got {bases!r}")
    result: dict[str, Any] = {}
    for base in bases:
        base_path = (path.parent / base).resolve()
        if not base_path.is_file():
            raise ConfigError(f"config {path}: _base_ file not found: {base} (looked at {base_path})")
        result = merge(result, _load_file(base_path, (*seen, path)))
    return merge(result, raw)


def load_config(path: str | Path, overrides: list[str] | dict[str, Any] | None = None, validate_keys: bool = True) -> dict:
    """Load a config file with its bases, apply ``--cfg-options`` overrides, validate, fill defaults.

    Returns a plain nested dict. ``cfg["_meta"]`` records the file path, the overrides used and, for each
    overridden key, the value the config file itself gives (``file_values``: the recipe's value).
    """
    path = Path(path)
    return resolve_config(_strip_delete(_load_file(path)), overrides, validate_keys, str(path.resolve()), path.stem)


def resolve_config(
    cfg: dict,
    overrides: list[str] | dict[str, Any] | None = None,
    validate_keys: bool = True,
    source: str = "<dict>",
    name: str = "config",
) -> dict:
    """A config dict (a loaded file, or the one saved in a checkpoint) -> overrides applied, validated, defaults
    filled (see :func:`load_config`); ``source`` and ``name`` go into ``_meta``. ``cfg`` is not modified."""
    cfg = copy.deepcopy({k: v for k, v in cfg.items() if k != "_meta"})
    applied: list[str] = []
    file_values: dict[str, Any] = {}  # dotted key -> the value before --cfg-options (the recipe's own value)
    if overrides:
        items = overrides.items() if isinstance(overrides, dict) else [_split_override(o) for o in overrides]
        defaults = _schema_defaults(SCHEMA)
        for key, value in items:
            value = parse_value(value) if isinstance(value, str) else value
            file_values.setdefault(key, copy.deepcopy(get(cfg, key, get(defaults, key))))
            _set_dotted(cfg, key, value, validate_keys)
            applied.append(f"{key}={value!r}")
    if validate_keys:
        try:
            validate(cfg)
        except ConfigError as exc:
            raise ConfigError(f"config {source}: {exc}") from exc
    resolved = merge(_schema_defaults(SCHEMA), cfg)
    resolved["_meta"] = {"config_file": source, "config_name": name, "overrides": applied, "file_values": file_values}
    return resolved


def _split_override(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"--cfg-options expects key=value, got {item!r} (example: solver.train.batch_size=1)")
    key, value = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--cfg-options: empty key in {item!r}")
    return key, value


def parse_value(text: str) -> Any:
    """Typed parsing of an override value: int, float, bool, None, lists/tuples/dicts, else a string."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError):
        # unquoted lists of words: [a,b] -> ["a", "b"]
        if stripped[:1] in "[(" and stripped[-1:] in "])":
            inner = [parse_value(part) for part in _split_top_level(stripped[1:-1])] if stripped[1:-1].strip() else []
            return inner if stripped[0] == "[" else tuple(inner)
        return stripped
    return value


def _split_top_level(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def _set_dotted(cfg: dict, key: str, value: Any, check: bool) -> None:
    parts = key.split(".")
    node = cfg
    schema: Any = SCHEMA
    for i, part in enumerate(parts[:-1]):
        if check and isinstance(schema, dict) and part not in schema and not (i == 0 and part in cfg):
            _unknown_key(".".join(parts[: i + 1]), schema, parts[:i])
        if part not in node or not isinstance(node[part], dict):
            node[part] = {}
        node = node[part]
        schema = schema.get(part) if isinstance(schema, dict) else None
    last = parts[-1]
    if check and isinstance(schema, dict) and last not in schema and not (len(parts) == 1 and last in cfg):
        _unknown_key(key, schema, parts[:-1])
    node[last] = value


# ------------------------------------------------------------------------------------------ validation
def _schema_defaults(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _schema_defaults(v) for k, v in schema.items()}
    if isinstance(schema, _Any):
        return copy.deepcopy(schema.default)
    return copy.deepcopy(schema)


def _all_dotted(schema: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in schema.items():
        name = f"{prefix}{key}"
        out.append(name)
        if isinstance(value, dict):
            out.extend(_all_dotted(value, name + "."))
    return out


def _unknown_key(dotted: str, siblings: dict, parent_parts: list[str]) -> None:
    if dotted in _REMOVED:
        raise ConfigError(f"config key {dotted!r} was removed: {_REMOVED[dotted]}")
    leaf = dotted.split(".")[-1]
    close = difflib.get_close_matches(leaf, list(siblings), n=3, cutoff=0.6)
    prefix = ".".join(parent_parts)
    suggestions = [f"{prefix}.{c}" if prefix else c for c in close]
    if not suggestions:
        close_full = difflib.get_close_matches(dotted, _all_dotted(SCHEMA), n=3, cutoff=0.7)
        suggestions = close_full
    hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    known = ", ".join(sorted(siblings)) if len(siblings) <= 25 else f"{len(siblings)} keys"
    raise ConfigError(f"unknown config key {dotted!r}{hint} (known keys here: {known})")


_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", tuple: "list", dict: "dict"}


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    if isinstance(default, str):
        return isinstance(value, str)
    return True


def validate(cfg: dict, schema: dict | None = None, prefix: str = "") -> None:
    """Check every key of every known section against :data:`SCHEMA` (unknown keys, wrong types)."""
    schema = SCHEMA if schema is None else schema
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if not prefix and (key in _RESERVED or key == "_meta"):
            continue
        if key not in schema:
            if not prefix and not isinstance(value, dict):
                continue  # a free top-level helper variable such as window_size
            _unknown_key(dotted, schema, prefix.rstrip(".").split(".") if prefix else [])
        expected = schema[key]
        if isinstance(expected, _Any):
            continue
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {dotted!r} must be a dict of settings, got {type(value).__name__}: {value!r}")
            validate(value, expected, dotted + ".")
            continue
        if isinstance(value, float) and math.isnan(value):
            raise ConfigError(f"config key {dotted!r} is NaN; give a number")
        if not _type_ok(expected, value):
            want = _TYPE_NAMES.get(type(expected), type(expected).__name__)
            raise ConfigError(f"config key {dotted!r} expects {want} (like {expected!r}), got {type(value).__name__}: {value!r}")
        if dotted in CHOICES and value not in CHOICES[dotted]:
            raise ConfigError(f"config key {dotted!r} must be one of {', '.join(map(repr, CHOICES[dotted]))}, got {value!r}")


# ---------------------------------------------------------------------------------------------- access
def get(cfg: dict, dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def dump_config(cfg: dict, path: str | Path | None = None) -> str:
    """Render a resolved config as a readable Python config file (loadable by :func:`load_config`): the schema's
    sections only; top-level helper variables of the config files (``window_size``, ``annotation_path``, ...) are
    left out, their values being in the sections that use them."""
    meta = cfg.get("_meta", {})
    lines = ["# Resolved adatad config (all defaults filled in)."]
    if meta:
        lines.append(f"# source: {meta.get('config_file')}")
        if meta.get("overrides"):
            lines.append(f"# overrides: {' '.join(meta['overrides'])}")
    lines.append("")
    for key, value in cfg.items():
        if key.startswith("_") or key not in SCHEMA:  # the _base_ files' helper variables: their values are in the sections
            continue
        lines.append(f"{key} = {pprint.pformat(value, width=110, sort_dicts=False)}")
        lines.append("")
    text = "\n".join(lines)
    if path is not None:
        Path(path).write_text(text)
    return text
