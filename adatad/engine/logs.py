"""Logging set-up for runs: console (rank 0 at INFO, other ranks warnings only), a log file in the run
folder, and the TensorBoard writer."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

logger = logging.getLogger("adatad")


def setup_logging(work_dir: Path | None = None, rank: int = 0, name: str = "train") -> None:
    """Console handler once per process; with ``work_dir`` (rank 0) also ``<work_dir>/<name>.log``."""
    root = logging.getLogger()
    if not getattr(root, "_adatad_console", False):
        root.setLevel(logging.INFO)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        if rank != 0:
            handler.setLevel(logging.WARNING)
        root.addHandler(handler)
        root._adatad_console = True  # type: ignore[attr-defined]
    if work_dir is not None and rank == 0:
        work_dir.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(work_dir / f"{name}.log")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)


def tensorboard_writer(work_dir: Path):
    """A ``SummaryWriter`` on ``<work_dir>/tensorboard``, or None when TensorBoard cannot be used."""
    try:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(work_dir / "tensorboard"))
    except Exception as exc:  # tensorboard is optional at run time
        logger.warning("TensorBoard disabled: %s", exc)
        return None
