"""OpenTAD compatibility: its AdaTAD checkpoints load onto :class:`adatad.models.detector.AdaTAD`.

Key mapping (DDP's ``module.`` prefix is stripped first; everything else keeps its name):

| OpenTAD                               | adatad                     |
|---------------------------------------|----------------------------|
| ``backbone.model.backbone.<name>``    | ``backbone.<name>``        |
| ``projection.<name>``                 | ``projection.<name>``      |
| ``neck.<name>``                       | ``neck.<name>``            |
| ``rpn_head.<name>``                   | ``rpn_head.<name>``        |

Our ViT keeps OpenTAD's (mmaction2's) sub-module names, so the backbone part is the identity after the
prefix; that holds for the side-tuning ``VisionTransformerLadder`` too. The mapping itself lives with the
other checkpoint formats: :data:`adatad.models.weights.OPENTAD_DETECTOR_MAPPING`. ``rpn_head.loss_normalizer``
is an int64 scalar in OpenTAD's EMA copies; it is cast to our float
buffer on load. adatad's own checkpoints pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from adatad.compat.convert_config import (
    UnsupportedOpenTADConfig,
    convert_opentad_model_config,
    convert_opentad_post_processing,
)
from adatad.models.weights import OPENTAD_DETECTOR_MAPPING


def convert_opentad_state_dict(state: Mapping) -> dict:
    """OpenTAD (or adatad) detector state dict -> adatad names. Unmapped keys are kept as they are, so the
    strict load that follows names them."""
    renamed, unmapped = OPENTAD_DETECTOR_MAPPING.apply(state)
    for key in unmapped:
        renamed[key] = state[key]
    return renamed


# ------------------------------------------------------------------------------------- config conversion
# The conversion itself lives in the torch-free adatad.compat.convert_config (also `adatad convert-config`).
__all__ = [
    "OPENTAD_DETECTOR_MAPPING",
    "UnsupportedOpenTADConfig",
    "convert_opentad_model_config",
    "convert_opentad_state_dict",
    "opentad_config_to_adatad",
]


def opentad_config_to_adatad(model: dict, post_processing: dict | None = None) -> dict:
    """A complete, validated adatad config: schema defaults + the converted OpenTAD ``model`` (and ``post_processing``)."""
    from adatad.config import SCHEMA, _schema_defaults, merge, validate

    fragment = convert_opentad_model_config(model)
    if post_processing:
        fragment["post_processing"] = convert_opentad_post_processing(post_processing)
    validate(fragment)
    cfg = merge(_schema_defaults(SCHEMA), fragment)
    cfg["_meta"] = {"config_file": "<opentad>", "config_name": "opentad", "overrides": []}
    return cfg
