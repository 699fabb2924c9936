"""Loading pretrained / foreign checkpoints into :class:`~adatad.models.videomae.VideoMAEBackbone`, with a report.

Supported inputs (detected automatically by :func:`load_pretrained_backbone`):

(a) ``mmaction2``: mmengine checkpoint ``{"meta", "state_dict"}`` with ``backbone.*`` keys (mmcv FFN names
    ``mlp.layers.0.0`` / ``mlp.layers.1``, ``patch_embed.projection``), ``cls_head.*`` unused. This is the
    format of OpenTAD's ``pretrained/vit-*_my.pth`` files (converted by OpenTAD from the VideoMAE release).
(b) ``videomae``: MCG-NJU VideoMAE / VideoMAEv2 release, ``{"model": ...}`` or ``{"module": ...}`` with
    ``patch_embed.proj``, ``blocks.N.mlp.fc1/fc2``, ``fc_norm``/``norm``, ``head``; pretraining checkpoints
    have an ``encoder.`` prefix and ``decoder.*``/``encoder_to_decoder``/``mask_token`` (unused).
(c) ``huggingface``: a directory with ``config.json`` and ``model.safetensors`` (or sharded safetensors,
    or ``pytorch_model.bin``) written by ``transformers`` (``VideoMAEModel``, ``...ForVideoClassification``,
    ``...ForPreTraining``); separate ``query``/``key``/``value`` weights are concatenated into ``qkv``.
(d) ``opentad``: an OpenTAD detector checkpoint (``{"state_dict": {"module.backbone.model.backbone.*", ...}}``);
    only the backbone part is loaded here (adapters included). :class:`KeyMapping` /
    :data:`OPENTAD_BACKBONE_MAPPING` let the detector code map the other parts.

Rules: pickled files are always read with ``torch.load(weights_only=True)`` (a file that needs arbitrary
code to unpickle is refused), safetensors with ``safetensors``. Every expected backbone tensor must come from
the checkpoint, except:

* adapter tensors (``blocks.N.adapter.*``, or the side ladder's ``ladders.*`` of
  :class:`~adatad.models.ladder.LadderBackbone`) when the checkpoint has none (pretrained ViT);
* ``pos_embed``: a fixed sinusoid table, recomputed at construction; loaded when present with the same
  shape (a learned table is then used as is). A table of another shape is refused (build the backbone
  with the checkpoint's ``img_size``/``num_frames``; the forward pass resizes the spatial grid itself);
* ``fc_norm.*``: unused by the forward pass, so its absence is only reported.

Anything else missing raises :class:`WeightLoadError` unless ``allow_missing=True``. Checkpoint tensors that
look like backbone tensors but have no place in the model (e.g. a deeper checkpoint) also raise, unless
``allow_unused=True``; known heads/decoders are reported as unused.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from adatad.annotation_io import read_json
from adatad.errors import UserError

__all__ = [
    "WeightLoadError",
    "LoadReport",
    "KeyMapping",
    "OPENTAD_BACKBONE_PREFIX",
    "OPENTAD_BACKBONE_MAPPING",
    "OPENTAD_DETECTOR_MAPPING",
    "opentad_backbone_key",
    "read_checkpoint_file",
    "detect_format",
    "convert_to_backbone_names",
    "load_pretrained_backbone",
    "CLASSIFIER_PREFIX",
    "load_detector_weights",
]

logger = logging.getLogger(__name__)


_MANUAL = (
    "It is OpenTAD's converted checkpoint (mmaction ViT keys, the layout this loader reads) of {what}, published only "
    "as a Google Drive link in OpenTAD's configs/adatad/README.md ({section}); adatad cannot download it: fetch it by "
    "hand and put it at this path, or point model.backbone.pretrained at your copy"
)
#: checkpoints of the EPIC-Kitchens / Ego4D recipes that no `adatad download` entry provides: file name -> what to do
MANUAL_CHECKPOINTS = {
    "vit-large-p16_videomae-epic_verb.pth": _MANUAL.format(
        what="VideoMAE-L (InternVideo1 pre-training) fine-tuned on EPIC-Kitchens-100 verbs", section="EPIC-KITCHENS Results"
    ),
    "vit-large-p16_videomae-epic_noun.pth": _MANUAL.format(
        what="VideoMAE-L (InternVideo1 pre-training) fine-tuned on EPIC-Kitchens-100 nouns", section="EPIC-KITCHENS Results"
    ),
    "vit-large-p16_videomae_k700_mq_ft_internvideo.pth": _MANUAL.format(
        what="InternVideo1-MQ, a VideoMAE-L ViT pre-trained on K700 and fine-tuned on Ego4D verbs + MQ (the same "
        "architecture as VideoMAE-L)",
        section="Ego4D-MQ Results",
    ),
}


class WeightLoadError(UserError, RuntimeError):
    """A checkpoint cannot be read or does not fit the model; the message says which file/key and what to do."""


@dataclass
class LoadReport:
    """What :func:`load_pretrained_backbone` did.

    Attributes:
        path: the checkpoint path.
        format: ``"mmaction2"``, ``"videomae"``, ``"huggingface"`` or ``"opentad"``.
        loaded: backbone names that received a checkpoint tensor.
        missing: expected backbone tensors the checkpoint lacks (an error unless ``allow_missing``).
        expected_missing: absent tensors that are fine (adapters, fixed ``pos_embed``, unused ``fc_norm``).
        unused: checkpoint keys (original names) that were not loaded.
        skipped: ``"<model name>: <why>"`` for tensors present in both that were deliberately not loaded and keep
            their fresh initialisation (:func:`load_detector_weights`: the classifier of another class set).
        part: what was loaded (``"backbone"``, or ``"detector"`` for :func:`load_detector_weights`).
    """

    path: str
    format: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    expected_missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    part: str = "backbone"

    def summary(self) -> str:
        lines = [
            f"loaded {len(self.loaded)} {self.part} tensors from {self.path} (format: {self.format})",
            f"  missing (error unless allowed): {len(self.missing)}{_preview(self.missing)}",
            f"  not in checkpoint, fine (adapters or ladder / fixed pos_embed / unused fc_norm): "
            f"{len(self.expected_missing)}{_preview(self.expected_missing)}",
            f"  unused checkpoint tensors: {len(self.unused)}{_preview(self.unused)}",
        ]
        if self.skipped:
            lines.append(f"  skipped, re-initialised: {len(self.skipped)}{_preview(self.skipped)}")
        return "\n".join(lines)


def _preview(names: list[str], limit: int = 8) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:limit])
    more = f", ... (+{len(names) - limit})" if len(names) > limit else ""
    return f" [{shown}{more}]"


# ------------------------------------------------------------------------------------------ key mapping
@dataclass(frozen=True)
class KeyMapping:
    """Prefix renaming of checkpoint keys into model keys.

    ``strip`` prefixes (e.g. DDP's ``module.``) are removed first (repeatedly, in order); then the first
    ``(source_prefix, target_prefix)`` rule whose source prefix matches renames the key. A key that matches no
    rule maps to ``None`` (not for this model). Keys matching an ``ignore`` regex (searched on the stripped key)
    map to ``None`` as well.

    Example (the full OpenTAD detector, names on the right chosen by the detector code)::

        KeyMapping(rules=(("backbone.model.backbone.", "backbone."), ("projection.", "projection."),
                          ("neck.", "neck."), ("rpn_head.", "rpn_head.")))
    """

    rules: tuple[tuple[str, str], ...]
    strip: tuple[str, ...] = ("module.",)
    ignore: tuple[str, ...] = ()

    def __call__(self, key: str) -> str | None:
        changed = True
        while changed:
            changed = False
            for prefix in self.strip:
                if key.startswith(prefix):
                    key = key[len(prefix) :]
                    changed = True
        if any(re.search(pattern, key) for pattern in self.ignore):
            return None
        for source, target in self.rules:
            if key.startswith(source):
                return target + key[len(source) :]
        return None

    def apply(self, state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
        """Rename a state dict: ``(renamed, unmapped_original_keys)``. Two keys mapping to one name is an error."""
        out: dict[str, Tensor] = {}
        source_of: dict[str, str] = {}
        unmapped: list[str] = []
        for key, value in state_dict.items():
            new = self(key)
            if new is None:
                unmapped.append(key)
                continue
            if new in out:
                raise WeightLoadError(f"checkpoint keys {source_of[new]!r} and {key!r} both map to {new!r}")
            out[new] = value
            source_of[new] = key
        return out, unmapped


#: Where OpenTAD keeps the backbone's tensors in a detector checkpoint (mmaction's ``Recognizer3D`` wrapper,
#: ``backbone.model``, around the ViT, ``.backbone``). After it, our backbones (the adapter ViT and the side
#: ladder alike) use OpenTAD's names unchanged; projection, neck and head keep their names too.
OPENTAD_BACKBONE_PREFIX = "backbone.model.backbone."

#: OpenTAD (or adatad) detector key -> adatad detector key (DDP's ``module.`` stripped first).
OPENTAD_DETECTOR_MAPPING = KeyMapping(
    rules=(
        (OPENTAD_BACKBONE_PREFIX, "backbone."),
        ("backbone.", "backbone."),  # adatad's own names
        ("projection.", "projection."),
        ("neck.", "neck."),
        ("rpn_head.", "rpn_head."),
    ),
)

#: OpenTAD detector key -> backbone key (for loading an OpenTAD checkpoint's backbone alone).
OPENTAD_BACKBONE_MAPPING = KeyMapping(rules=((OPENTAD_BACKBONE_PREFIX, ""),))


def opentad_backbone_key(name: str) -> str | None:
    """OpenTAD detector checkpoint key -> our backbone key, or ``None`` if it is not a backbone tensor.

    ``"module.backbone.model.backbone.blocks.3.adapter.gamma"`` -> ``"blocks.3.adapter.gamma"``;
    ``"rpn_head.cls_head.conv.weight"`` -> ``None``.
    """
    return OPENTAD_BACKBONE_MAPPING(name)


# ------------------------------------------------------------------------------------------- reading
def _torch_load(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightLoadError(
            f"refused to load {path}: it contains pickled objects other than tensors and plain containers, "
            f"which could run arbitrary code (torch.load weights_only=True). Only load files you trust; "
            f"re-save a trusted file as a plain state dict. Details: {str(exc).splitlines()[0]}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        raise WeightLoadError(f"cannot read checkpoint {path}: {detail}. Is the file complete (re-download)?") from exc


def _safetensors_load(path: Path) -> dict[str, Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:  # pragma: no cover - safetensors ships with the test extras
        raise WeightLoadError(f"{path} is a safetensors file; install it with `pip install safetensors`") from exc
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        raise WeightLoadError(f"cannot read safetensors file {path}: {detail}") from exc


def read_checkpoint_file(path: str | os.PathLike) -> object:
    """Read a ``.pth``/``.bin`` (``torch.load(weights_only=True)``) or ``.safetensors`` file safely."""
    path = Path(path)
    if not path.is_file():
        raise WeightLoadError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        return _safetensors_load(path)
    return _torch_load(path)


def _read_hf_dir(path: Path) -> tuple[dict[str, Tensor], dict]:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise WeightLoadError(f"{path} is a directory but has no config.json: not a Hugging Face model folder")
    config = read_json(config_file, "Hugging Face config")
    if not isinstance(config, dict):
        raise WeightLoadError(f"{config_file}: expected a JSON object of model settings, got {type(config).__name__}")
    single = path / "model.safetensors"
    index = path / "model.safetensors.index.json"
    bin_file = path / "pytorch_model.bin"
    if single.is_file():
        state = _safetensors_load(single)
    elif index.is_file():
        index_data = read_json(index, "safetensors index")
        weight_map = index_data.get("weight_map") if isinstance(index_data, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise WeightLoadError(f'{index}: expected {{"weight_map": {{tensor name: shard file}}}}')
        shards = sorted(set(weight_map.values()))
        state = {}
        for shard in shards:
            state.update(_safetensors_load(path / shard))
    elif bin_file.is_file():
        state = _tensor_dict(_torch_load(bin_file), bin_file.name, path)
    else:
        raise WeightLoadError(f"{path} has config.json but no model.safetensors or pytorch_model.bin")
    return dict(state), config


# ---------------------------------------------------------------------------------- format handling
_KNOWN_UNUSED = re.compile(
    r"^(cls_head\.|head\.|classifier\.|decoder\.|encoder_to_decoder|mask_token|norm\.|layernorm\.|"
    r"data_preprocessor\.|cls_token|decoder_pos_embed|embeddings\.position_embeddings_decoder)"
)


def _tensor_dict(obj: object, what: str, path: Path) -> dict[str, Tensor]:
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightLoadError(f"{path}: {what} is not a flat mapping of tensors")
    return dict(obj)


def detect_format(obj: object, path: str | os.PathLike = "<checkpoint>") -> tuple[str, dict[str, Tensor]]:
    """Identify a loaded checkpoint object: ``(format, flat_state_dict)``; see the module docstring."""
    path = Path(path)
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        state = _tensor_dict(obj["state_dict"], "'state_dict'", path)
        stripped = [k.removeprefix("module.") for k in state]
        if any(k.startswith(OPENTAD_BACKBONE_PREFIX) for k in stripped):
            return "opentad", state
        if any(k.startswith("backbone.") for k in stripped):
            return "mmaction2", state
        raise WeightLoadError(
            f"{path}: 'state_dict' has no 'backbone.*' keys (first keys: {list(state)[:5]}); "
            "expected an mmaction2/OpenTAD VideoMAE checkpoint"
        )
    for container in ("model", "module"):
        if isinstance(obj, Mapping) and container in obj and isinstance(obj[container], Mapping):
            return "videomae", _tensor_dict(obj[container], f"'{container}'", path)
    if isinstance(obj, Mapping) and obj and all(isinstance(v, Tensor) for v in obj.values()):
        keys = [k.removeprefix("module.") for k in obj]
        if any(".attention.attention." in k for k in keys):
            return "huggingface", dict(obj)
        if any(k.startswith(OPENTAD_BACKBONE_PREFIX) for k in keys):
            return "opentad", dict(obj)
        if any(k.startswith("backbone.") for k in keys):
            return "mmaction2", dict(obj)
        if any(re.match(r"(encoder\.)?blocks\.\d+\.", k) for k in keys):
            return "videomae", dict(obj)
    top = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
    raise WeightLoadError(
        f"{path}: unrecognised checkpoint layout (top-level: {top}). Expected an mmaction2/OpenTAD file "
        "({'state_dict': {'backbone.*'}}), a VideoMAE release ({'model'|'module': ...}) or a Hugging Face folder"
    )


def _convert_mmaction2(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str], list[str]]:
    mapping = KeyMapping(rules=(("backbone.", ""),))
    return _convert_with(state, mapping)


def _convert_opentad(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str], list[str]]:
    return _convert_with(state, OPENTAD_BACKBONE_MAPPING)


def _convert_with(state: Mapping[str, Tensor], fn: Callable[[str], str | None]) -> tuple[dict[str, Tensor], dict[str, str], list[str]]:
    out: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    unused: list[str] = []
    for key, value in state.items():
        new = fn(key)
        if new is None:
            unused.append(key)
        else:
            out[new] = value
            source[new] = key
    return out, source, unused


_VIDEOMAE_RENAMES = (
    (re.compile(r"^patch_embed\.proj\."), "patch_embed.projection."),
    (re.compile(r"\.mlp\.fc1\."), ".mlp.layers.0.0."),
    (re.compile(r"\.mlp\.fc2\."), ".mlp.layers.1."),
)


def _videomae_key(key: str) -> str | None:
    key = key.removeprefix("module.")
    if key.startswith("encoder."):
        key = key[len("encoder.") :]
    elif key.startswith(("decoder.", "encoder_to_decoder", "mask_token")):
        return None
    if _KNOWN_UNUSED.match(key):
        return None
    for pattern, repl in _VIDEOMAE_RENAMES:
        key = pattern.sub(repl, key)
    return key


def _convert_videomae(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str], list[str]]:
    return _convert_with(state, _videomae_key)


_HF_LAYER_RENAMES = {
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.layers.0.0",
    "output.dense": "mlp.layers.1",
    "attention.attention.q_bias": "attn.q_bias",
    "attention.attention.v_bias": "attn.v_bias",
    "attention.attention.query.bias": "attn.q_bias",
    "attention.attention.value.bias": "attn.v_bias",
}


def _convert_huggingface(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str], list[str]]:
    out: dict[str, Tensor] = {}
    source: dict[str, str] = {}
    unused: list[str] = []
    qkv_parts: dict[str, dict[str, tuple[str, Tensor]]] = {}
    layer_re = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
    for key, value in state.items():
        k = key.removeprefix("module.").removeprefix("videomae.")
        new: str | None = None
        if k.startswith("embeddings.patch_embeddings.projection."):
            new = "patch_embed.projection." + k.rsplit(".", 1)[1]
        elif k == "embeddings.position_embeddings":
            new = "pos_embed"
        elif k.startswith("fc_norm."):
            new = k
        elif m := layer_re.match(k):
            idx, rest = m.groups()
            qkv = re.match(r"attention\.attention\.(query|key|value)\.weight$", rest)
            if qkv:
                qkv_parts.setdefault(idx, {})[qkv.group(1)] = (key, value)
                continue
            if rest == "attention.attention.key.bias":
                if torch.count_nonzero(value):
                    raise WeightLoadError(f"{key}: a non-zero key bias cannot be represented (VideoMAE's k bias is fixed at zero)")
                unused.append(key)
                continue
            stem, _, leaf = rest.rpartition(".")
            if rest in _HF_LAYER_RENAMES:
                new = f"blocks.{idx}.{_HF_LAYER_RENAMES[rest]}"
            elif stem in _HF_LAYER_RENAMES:
                new = f"blocks.{idx}.{_HF_LAYER_RENAMES[stem]}.{leaf}"
        if new is None:
            unused.append(key)
        else:
            out[new] = value
            source[new] = key
    for idx, parts in qkv_parts.items():
        if set(parts) != {"query", "key", "value"}:
            have = sorted(parts)
            raise WeightLoadError(f"layer {idx}: query/key/value weights incomplete in checkpoint (have {have})")
        name = f"blocks.{idx}.attn.qkv.weight"
        out[name] = torch.cat([parts[p][1] for p in ("query", "key", "value")], dim=0)
        source[name] = "+".join(parts[p][0] for p in ("query", "key", "value"))
    return out, source, unused


_CONVERTERS = {
    "mmaction2": _convert_mmaction2,
    "opentad": _convert_opentad,
    "videomae": _convert_videomae,
    "huggingface": _convert_huggingface,
}


def convert_to_backbone_names(fmt: str, state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str], list]:
    """Rename a checkpoint of format ``fmt`` to ``VideoMAEBackbone`` names.

    Returns ``(tensors, source_key_of, unmapped_keys)``; ``source_key_of[name]`` is the checkpoint key.
    """
    if fmt not in _CONVERTERS:
        raise ValueError(f"unknown checkpoint format {fmt!r}; one of {sorted(_CONVERTERS)}")
    return _CONVERTERS[fmt](state)


def _check_hf_config(config: dict, backbone: nn.Module, path: Path) -> None:
    want = {
        "hidden_size": getattr(backbone, "embed_dims", None),
        "num_hidden_layers": getattr(backbone, "depth", None),
        "patch_size": getattr(backbone, "patch_size", None),
        "tubelet_size": getattr(backbone, "tubelet_size", None),
    }
    bad = [f"{k}={config.get(k)!r} (model: {v})" for k, v in want.items() if v is not None and config.get(k) != v]
    if bad:
        raise WeightLoadError(f"{path}/config.json does not match the backbone: {', '.join(bad)}")
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise WeightLoadError(f"{path}/config.json: hidden_act={act!r}; the backbone uses exact GELU")
    eps = config.get("layer_norm_eps")
    model_eps = next((m.eps for m in backbone.modules() if isinstance(m, nn.LayerNorm)), None)
    if eps is not None and model_eps is not None and abs(eps - model_eps) > 1e-12:
        logger.warning("%s: layer_norm_eps=%g but the backbone uses %g", path, eps, model_eps)


# -------------------------------------------------------------------------------------------- loading
def _is_adapter_like(name: str) -> bool:
    """Adapter tensors (``blocks.N.adapter.*``) and the side ladder's (``ladders.*``): absent from a pretrain file."""
    return ".adapter." in f".{name}" or name.startswith("ladders.")


def _is_fine_missing(name: str, ckpt_has_adapters: bool) -> bool:
    if name == "pos_embed" or name.startswith("fc_norm."):
        return True
    return _is_adapter_like(name) and not ckpt_has_adapters


def load_pretrained_backbone(
    backbone: nn.Module,
    path: str | os.PathLike,
    allow_missing: bool = False,
    allow_unused: bool = False,
) -> LoadReport:
    """Load a VideoMAE checkpoint (formats a-d, detected) into ``backbone`` in place and report.

    Raises:
        WeightLoadError: unreadable/unsafe file, unknown layout, shape mismatch, a missing expected backbone
            tensor (unless ``allow_missing``), or a backbone-like checkpoint tensor with no place in the model
            (unless ``allow_unused``).
    """
    path = Path(path)
    if path.is_dir():
        state, config = _read_hf_dir(path)
        _check_hf_config(config, backbone, path)
        fmt = "huggingface"
    elif not path.exists():
        if path.name in MANUAL_CHECKPOINTS:
            raise WeightLoadError(f"pretrained checkpoint not found: {path}. {MANUAL_CHECKPOINTS[path.name]}")
        raise WeightLoadError(
            f"pretrained checkpoint not found: {path}. Download it (e.g. `adatad download videomae-s`) or fix the path in the config"
        )
    else:
        fmt, state = detect_format(read_checkpoint_file(path), path)

    tensors, source, unused = convert_to_backbone_names(fmt, state)
    model_state = backbone.state_dict()
    ckpt_has_adapters = any(_is_adapter_like(k) for k in tensors)

    report = LoadReport(path=str(path), format=fmt)
    report.unused.extend(unused)
    to_load: dict[str, Tensor] = {}
    stray: list[str] = []
    for name, value in tensors.items():
        if name not in model_state:
            report.unused.append(source[name])
            if re.match(r"(blocks\.\d+\.|patch_embed\.)", name):
                stray.append(source[name])
            continue
        target = model_state[name]
        if tuple(value.shape) != tuple(target.shape):
            hint = ""
            if name == "pos_embed":
                hint = (
                    " The position table was built for another img_size/num_frames: construct the backbone "
                    "with the checkpoint's img_size and num_frames (other input sizes are resized at run time)."
                )
            raise WeightLoadError(
                f"{path}: {source[name]} has shape {tuple(value.shape)}, the model's {name} has "
                f"{tuple(target.shape)}: wrong model size for this checkpoint?{hint}"
            )
        to_load[name] = value
    for name in model_state:
        if name in to_load:
            continue
        if _is_fine_missing(name, ckpt_has_adapters):
            report.expected_missing.append(name)
        else:
            report.missing.append(name)
    report.loaded = sorted(to_load)

    if report.missing and not allow_missing:
        raise WeightLoadError(
            f"{path} ({fmt}) lacks {len(report.missing)} backbone tensors{_preview(report.missing, 12)}: "
            "wrong checkpoint or wrong model size? Pass allow_missing=True only if you mean to train them from "
            "scratch."
        )
    if stray and not allow_unused:
        raise WeightLoadError(
            f"{path} ({fmt}) has backbone tensors the model has no place for{_preview(stray, 12)}: the checkpoint "
            "is deeper/different from the configured backbone (check depth/size)."
        )
    with torch.no_grad():
        for name, value in to_load.items():
            model_state[name].copy_(value.to(model_state[name].dtype))

    logger.info(report.summary())
    return report


# ------------------------------------------------------------------------------ a whole detector (load_from)
#: The detector's classification layer (``[num_classes, C, k]`` weight and ``[num_classes]`` bias): the only part
#: whose shape depends on the class set.
CLASSIFIER_PREFIX = "rpn_head.cls_head."


def load_detector_weights(
    model: nn.Module,
    state: Mapping[str, Tensor],
    path: str,
    source_classes: list[str] | None = None,
    target_classes: list[str] | None = None,
) -> LoadReport:
    """Initialise a whole detector (backbone with adapters or ladder, projection, neck, head) from another
    detector's state dict, adatad or OpenTAD names (:data:`OPENTAD_DETECTOR_MAPPING`), in place; for fine-tuning
    (``load_from``), not resuming.

    The classification layer (:data:`CLASSIFIER_PREFIX`) is skipped, keeping its fresh initialisation, when its
    shape differs (another class count) or when both class lists are known and differ (same count, other
    classes: row ``i`` would mean another class); :attr:`LoadReport.skipped` says which and why. Adapter/ladder
    tensors a checkpoint without them lacks keep their initialisation (``expected_missing``), as in
    :func:`load_pretrained_backbone`. Any other missing tensor or shape mismatch raises :class:`WeightLoadError`
    naming the tensors (a checkpoint of another architecture: use the config it was trained with as ``_base_``);
    checkpoint tensors with no place in the model are reported as ``unused``.
    """
    renamed, unmapped = OPENTAD_DETECTOR_MAPPING.apply(state)
    fmt = "opentad" if any(k.removeprefix("module.").startswith(OPENTAD_BACKBONE_PREFIX) for k in state) else "adatad"
    report = LoadReport(path=str(path), format=fmt, part="detector", unused=list(unmapped))
    own = model.state_dict()
    ckpt_has_adapters = any(_is_adapter_like(k.removeprefix("backbone.")) for k in renamed)
    classes_differ = source_classes is not None and target_classes is not None and list(source_classes) != list(target_classes)
    to_load: dict[str, Tensor] = {}
    mismatched: list[str] = []
    for name, target in own.items():
        if name not in renamed:
            if name.startswith("backbone.") and _is_fine_missing(name.removeprefix("backbone."), ckpt_has_adapters):
                report.expected_missing.append(name)
            else:
                report.missing.append(name)
            continue
        value = renamed[name]
        if name.startswith(CLASSIFIER_PREFIX):
            if tuple(value.shape) != tuple(target.shape):
                report.skipped.append(
                    f"{name}: {value.shape[0]} classes in the checkpoint, {target.shape[0]} in the config: re-initialised"
                )
                continue
            if classes_differ:
                report.skipped.append(
                    f"{name}: the checkpoint's classes {list(source_classes or [])} differ from the config's: re-initialised"
                )
                continue
        if tuple(value.shape) != tuple(target.shape):
            mismatched.append(f"{name}: checkpoint {tuple(value.shape)} vs model {tuple(target.shape)}")
            continue
        to_load[name] = value
    report.unused.extend(k for k in renamed if k not in own)
    if mismatched or report.missing:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): " + "; ".join(mismatched[:5]))
        if report.missing:
            parts.append(f"{len(report.missing)} tensor(s) the checkpoint lacks{_preview(report.missing)}")
        raise WeightLoadError(
            f"load_from {path}: the checkpoint's detector differs from this config's beyond the class count ("
            + " | ".join(parts)
            + "); fine-tune with the model settings it was trained with (e.g. its run folder's config.py as _base_)"
        )
    report.loaded = sorted(to_load)
    with torch.no_grad():
        for name, value in to_load.items():
            own[name].copy_(value.to(own[name].dtype))
    logger.info(report.summary())
    return report
