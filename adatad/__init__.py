"""adatad: end-to-end temporal action detection (AdaTAD) in plain PyTorch.

``from adatad import Detector, Detections`` (:mod:`adatad.api`): imported on first use, so that ``import adatad``
(and ``adatad --help``) stays free of torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Detector", "Detections", "__version__"]

if TYPE_CHECKING:
    from adatad.api import Detections, Detector


def __getattr__(name: str) -> Any:
    if name in ("Detector", "Detections"):
        from adatad import api

        return getattr(api, name)
    raise AttributeError(f"module 'adatad' has no attribute {name!r}")
