"""Checkpoints: atomic writes, complete training state, safe loading (``weights_only=True``).

A training checkpoint holds ``state_dict`` (model), ``state_dict_ema``, ``optimizer``, ``scheduler``,
``scaler``, ``epoch`` (the epoch the state belongs to), ``iteration`` (batches of that epoch already done;
0 when the epoch is complete), ``global_step``, ``rng`` (python, numpy, torch and CUDA states), ``history``
and ``config`` (the resolved config). ``rpn_head.loss_normalizer`` lives in the state dicts.

Crash safety: :func:`save_atomic` writes a temporary file in the same folder, flushes and fsyncs it, renames
it over the target (``os.replace``) and fsyncs the folder, so a process killed at any moment leaves either the
old file or the new one under the target name, never a torn one. Each file also records the SHA-256 of its
content in the zip comment (``adatad-sha256:<hex>``; ``torch.load`` ignores it), and :func:`load_checkpoint`
refuses a file whose content does not match. Files without the record (OpenTAD's, older adatad's) load as before.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import random
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adatad.compat.opentad import convert_opentad_state_dict
from adatad.errors import UserError
from adatad.models.weights import LoadReport, load_detector_weights


class CheckpointError(UserError, RuntimeError):
    """A checkpoint path or content that cannot be used."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (a full disk, no permission, ...); the previous file is unchanged."""


_SUM_PREFIX = b"adatad-sha256:"
_SUM_LEN = len(_SUM_PREFIX) + 64  # the zip comment: prefix + hex digest
_EOCD = b"PK\x05\x06"  # zip end-of-central-directory signature (22 bytes, then the comment)
_CHUNK = 1 << 22

# Test-only fault hooks (the fault tests in tests/test_faults.py set them; nothing else should):
#   ADATAD_FAULT_SLOW_SAVE_S=<seconds>  sleep between writing the temporary file and renaming it, after logging
#                                       "fault hook: slow save", so that a test can kill the process mid-write.
#   ADATAD_FAULT_SAVE_ENOSPC=<n>        the n-th save_atomic call of this process (1-based) fails with
#                                       OSError(ENOSPC) after writing part of the file: a full disk.
_saves_done = 0


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder (flushed, fsynced, with a SHA-256 record in the
    zip comment), ``os.replace`` it over ``path`` and fsync the folder. Leftover temporary files of a killed
    process in that folder are removed first. A failed write (e.g. a full disk) raises :class:`CheckpointWriteError` and leaves
    ``path`` as it was."""
    global _saves_done
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(".*.tmp*"):  # one writer per folder (rank 0): these are a killed process's
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    _saves_done += 1
    try:
        with open(tmp, "w+b") as f:
            torch.save(obj, f)
            if os.environ.get("ADATAD_FAULT_SAVE_ENOSPC") == str(_saves_done):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            _append_checksum(f)
            f.flush()
            os.fsync(f.fileno())
        slow = float(os.environ.get("ADATAD_FAULT_SLOW_SAVE_S") or 0)
        if slow > 0:
            logging.getLogger(__name__).warning("fault hook: slow save of %s (%.2fs before the rename)", path.name, slow)
            time.sleep(slow)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        raise CheckpointWriteError(
            f"cannot write checkpoint {path}: {exc.strerror or exc} (errno {errno.errorcode.get(exc.errno or 0, exc.errno)}); "
            f"{'free disk space' if exc.errno == errno.ENOSPC else 'check the folder'} or use another --work-dir, "
            "then resume with --resume auto (the previous checkpoint is unchanged)"
        ) from exc
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _append_checksum(f) -> None:
    """Record the SHA-256 of the file (as ``torch.save`` wrote it: an empty zip comment) in the zip comment."""
    f.flush()
    size = f.seek(0, os.SEEK_END)
    f.seek(size - 22)
    if size < 22 or f.read(4) != _EOCD or _read_at(f, size - 2, 2) != b"\x00\x00":
        return  # not the layout torch.save writes: leave the file without a record
    digest = _sha256(f, size).hexdigest()
    f.seek(size - 2)
    f.write(struct.pack("<H", _SUM_LEN) + _SUM_PREFIX + digest.encode())


def _read_at(f, offset: int, n: int) -> bytes:
    f.seek(offset)
    return f.read(n)


def _sha256(f, size: int, suffix: bytes = b""):
    """SHA-256 of the first ``size`` bytes of the open file ``f`` followed by ``suffix`` (a hashlib object)."""
    h = hashlib.sha256()
    f.seek(0)
    left = size
    while left > 0:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            break
        h.update(chunk)
        left -= len(chunk)
    h.update(suffix)
    return h


def verify_checkpoint(path: str | Path) -> bool:
    """Check a checkpoint's recorded SHA-256: True when it matches, False when the file has no record (OpenTAD's,
    older adatad's); a mismatch (a torn or damaged file) raises :class:`CheckpointError` naming the file."""
    path = Path(path)
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size < 22 + _SUM_LEN:
            return False
        tail = _read_at(f, size - _SUM_LEN - 22, 22 + _SUM_LEN)
        if tail[:4] != _EOCD or tail[22 : 22 + len(_SUM_PREFIX)] != _SUM_PREFIX:
            return False
        want = tail[22 + len(_SUM_PREFIX) :].decode("ascii", "replace")
        # everything before the comment length field, then that field as torch.save wrote it (no comment)
        h = _sha256(f, size - _SUM_LEN - 2, suffix=b"\x00\x00")
    if h.hexdigest() != want:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its content does not match the SHA-256 recorded when it was written "
            "(a damaged or partly overwritten file); use another checkpoint"
        )
    return True


def rng_state() -> dict:
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # the global MT19937's legacy tuple (numpy's stubs type a bare get_state() as dict)
    state = {
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(x):
    if isinstance(x, list):
        return tuple(_to_tuple(v) for v in x)
    return x


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` after checking its recorded SHA-256; clear errors (naming the
    file) for a missing, corrupt or unreadable file."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise CheckpointError(f"checkpoint {path} is a directory, not a file")
    if not path.is_file():
        hint = ""
        if path.parent.is_dir():
            found = sorted(p.name for p in path.parent.glob("*.pth"))
            hint = f" (that folder has: {', '.join(found[:10]) or 'no .pth files'})"
        raise CheckpointError(f"checkpoint not found: {path}{hint}")
    verify_checkpoint(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling refused or a corrupt file
        raise CheckpointError(
            f"cannot load checkpoint {path}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]} "
            "(only tensors and plain python containers are accepted: weights_only=True)"
        ) from exc


def checkpoint_problem(path: Path) -> str | None:
    """None when ``path`` is a good checkpoint (checksum matches, or it loads), else what is wrong (one line)."""
    try:
        if not verify_checkpoint(path):
            torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError as exc:
        return str(exc)
    except Exception as exc:
        return f"cannot load checkpoint {path}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    return None


def _epoch_checkpoints(ckpt_dir: Path) -> list[Path]:
    """``epoch_K.pth`` files of a folder, newest (largest K) first."""
    found = []
    for p in ckpt_dir.glob("epoch_*.pth"):
        k = p.stem[len("epoch_") :]
        if k.isdigit():
            found.append((int(k), p))
    return [p for _, p in sorted(found, reverse=True)]


def _newer_epoch_checkpoint(ckpt_dir: Path, latest: Path) -> Path | None:
    """A good ``epoch_K.pth`` that resumes later than ``latest.pth`` (epoch K > latest's last complete epoch)."""
    ck = torch.load(latest, map_location="cpu", weights_only=True)
    if not isinstance(ck, dict) or not isinstance(ck.get("epoch"), int):
        return None
    done = ck["epoch"] - (1 if ck.get("iteration", 0) else 0)  # latest's last complete epoch
    for path in _epoch_checkpoints(ckpt_dir):
        if int(path.stem[len("epoch_") :]) <= done:
            return None
        if checkpoint_problem(path) is None:
            return path
    return None


def resume_checkpoint(ckpt_dir: str | Path, resume: str) -> Path | None:
    """The checkpoint ``--resume`` means, checked: ``latest`` (``--resume`` alone) is ``latest.pth``, which must be good
    (a corrupt one fails naming it and the newest good ``epoch_K.pth`` as the way out); ``auto`` is the newest good
    checkpoint: ``latest.pth`` when good (unless a process killed between writing ``epoch_K.pth`` and ``latest.pth``
    left a newer ``epoch_K.pth``), else the newest good ``epoch_K.pth`` (logged), else None when the folder has no checkpoint at all (a
    first start, e.g. under ``torchrun --max-restarts``), and fails when checkpoints exist but none is good; any
    other value is a path."""
    ckpt_dir = Path(ckpt_dir)
    log = logging.getLogger(__name__)
    if resume not in ("latest", "auto"):
        return Path(resume)
    latest = ckpt_dir / "latest.pth"
    candidates = ([latest] if latest.is_file() else []) + _epoch_checkpoints(ckpt_dir)
    if resume == "auto" and not candidates:
        log.info("--resume auto: no checkpoint in %s yet: starting from the beginning", ckpt_dir)
        return None
    if resume == "latest" and not latest.is_file():
        load_checkpoint(latest)  # raises "checkpoint not found ... (that folder has: ...)"
    problems = []
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            if resume == "auto" and path == latest:
                path = _newer_epoch_checkpoint(ckpt_dir, latest) or latest
            if resume == "latest" and path != latest:
                raise CheckpointError(
                    f"{problems[0]}; the newest good checkpoint is {path}: resume from it with --resume {path} (or --resume auto)"
                )
            if resume == "auto" and problems:
                log.warning("--resume auto: resuming from %s (skipped: %s)", path, "; ".join(problems))
            elif resume == "auto":
                log.info("--resume auto: resuming from %s", path)
            return path
        problems.append(problem)
    raise CheckpointError(f"no good checkpoint to resume from in {ckpt_dir}: {'; '.join(problems)}; start again without --resume")


# ------------------------------------------------------------------------------------ detector weights
def _detector_state_from(ckpt: dict, path) -> tuple[dict, str]:
    """Pick the weights to test with: EMA when present (like OpenTAD), else the model's."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint dictionary")
    for key in ("state_dict_ema", "state_dict", "model", "module"):
        if isinstance(ckpt.get(key), dict) and ckpt[key]:
            return ckpt[key], key
    if ckpt and all(hasattr(v, "shape") for v in ckpt.values()):
        return ckpt, "(plain state dict)"
    raise CheckpointError(f"{path}: no model weights found (keys: {', '.join(map(str, list(ckpt)[:10]))})")


def load_detector_checkpoint(model, path, prefer_ema: bool = True, ckpt: dict | None = None) -> dict:
    """Load an adatad or OpenTAD detector checkpoint into ``model`` (strict): DDP ``module.`` prefixes are
    stripped and OpenTAD names are mapped (``adatad.compat.opentad``). A missing or unexpected
    tensor, or a shape mismatch (a checkpoint of another architecture), fails naming the tensors.
    ``ckpt``: the content of ``path`` when the caller has already loaded it (:func:`load_checkpoint`)."""

    ckpt = load_checkpoint(path) if ckpt is None else ckpt
    state, source = _detector_state_from(ckpt, path)
    if not prefer_ema and source == "state_dict_ema" and isinstance(ckpt.get("state_dict"), dict):
        state, source = ckpt["state_dict"], "state_dict"
    names = ckpt.get("class_names")
    if names is not None and not (isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names)):
        raise CheckpointError(f"{path}: 'class_names' must be a list of class names (strings), got {type(names).__name__}")
    load_detector_state(model, state, f"{path} ({source})")
    logging.getLogger(__name__).info("loaded %d tensors from %s (%s)", len(state), path, source)
    return {"source": source, "num_tensors": len(state), "epoch": ckpt.get("epoch"), "class_names": names}


def load_detector_state(model, state: dict, what: str) -> None:
    """Strict load of an adatad or OpenTAD detector state dict, naming every missing/unexpected/mismatched tensor."""
    state = convert_opentad_state_dict(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): " + "; ".join(mismatched[:5]))
        if missing:
            parts.append(f"{len(missing)} missing tensor(s): " + ", ".join(missing[:8]))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s): " + ", ".join(unexpected[:8]))
        raise CheckpointError(
            f"checkpoint {what} does not fit this model/config — is it from another architecture or class count? " + " | ".join(parts)
        )
    for k, v in state.items():  # e.g. OpenTAD's int64 loss_normalizer in EMA copies
        if own[k].dtype != v.dtype:
            state[k] = v.to(own[k].dtype)
    model.load_state_dict(state, strict=True)


def init_from_checkpoint(model, path, class_names: list[str] | None = None) -> LoadReport:
    """``load_from`` / ``--load-from``: start a new training from a detector checkpoint's weights (adatad or
    OpenTAD; the EMA weights when present, like testing). Not a resume: optimizer, schedule, epoch and history
    start fresh. The classifier is re-initialised for another class set (see
    :func:`adatad.models.weights.load_detector_weights`); returns its :class:`~adatad.models.weights.LoadReport`."""
    ckpt = load_checkpoint(path)
    state, source = _detector_state_from(ckpt, path)
    return load_detector_weights(
        model, state, f"{path} ({source})", source_classes=ckpt.get("class_names") or None, target_classes=class_names
    )
