"""The training loop: DDP, AMP, gradient accumulation and clipping, EMA, per-iteration schedule,
atomic checkpoints with exact resume, validation by mAP, and graceful stop on SIGTERM/Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from adatad.engine.amp import amp_settings, autocast
from adatad.engine.checkpoint import CheckpointError, load_checkpoint, rng_state, save_atomic, set_rng_state
from adatad.engine.dist import DistInfo, all_gather_objects, all_reduce_mean, broadcast_flag, ranks_with_flag
from adatad.engine.optim import ModelEMA, WarmupCosineSchedule, build_optimizer
from adatad.errors import UserError

logger = logging.getLogger("adatad.train")


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN/inf (the message names the epoch, iteration and loss terms)."""


class TooManyBadSamplesError(UserError, RuntimeError):
    """More than ``dataset.train.max_bad_fraction`` of the training samples failed to decode."""


def _without_worker_traceback(exc: UserError) -> UserError:
    """A user error raised in a DataLoader worker (e.g. every training video failing to decode) comes back with the
    worker's traceback in its message; keep the original one-line message, as the command line prints it."""
    text = str(exc)
    if not text.startswith("Caught ") or "Original Traceback" not in text:
        return exc
    marker = f"{type(exc).__name__}: "
    message = text[text.rfind(marker) + len(marker) :].strip() if marker in text else text.strip().splitlines()[-1]
    try:
        return type(exc)(message)
    except Exception:
        return UserError(message)


class PeerLostError(UserError, RuntimeError):
    """Another DDP process exited or was killed during training (a collective failed)."""


def _is_peer_failure(exc: BaseException) -> bool:
    """A collective that failed because a peer went away (gloo/NCCL connection errors), not a bug of ours."""
    import torch.distributed as dist

    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    msg = str(exc)
    return isinstance(exc, RuntimeError) and any(k in msg for k in ("gloo", "NCCL", "Connection reset", "Connection closed"))


def nonfinite_decision(bad_ranks: list[int], has_scaler: bool) -> str:
    """What every rank does after a forward pass, given the ranks whose loss is NaN/inf (known to all ranks, gathered
    before ``backward`` so that no rank waits alone in DDP's gradient all-reduce): ``"step"`` when none, ``"skip"``
    (an fp16 overflow: every rank runs backward, the GradScaler skips the optimizer step and lowers its scale, as in
    OpenTAD) or ``"stop"`` (without a scaler: every rank raises :class:`NonFiniteLossError`)."""
    if not bad_ranks:
        return "step"
    return "skip" if has_scaler else "stop"


def _fault_nan_at(rank: int) -> tuple[int, int] | None:
    """Test-only hook (tests/test_faults.py): ``ADATAD_FAULT_NAN_LOSS="RANK:EPOCH:ITER"`` makes that rank's loss NaN at
    that epoch and iteration, to show that the ranks decide skip-or-stop together. Nothing else should set it."""
    spec = os.environ.get("ADATAD_FAULT_NAN_LOSS")
    if not spec:
        return None
    r, e, i = (int(x) for x in spec.split(":"))
    return (e, i) if r == rank else None


class _StopRequest:
    """Turns SIGTERM/SIGINT into a flag checked between iterations (a second Ctrl-C aborts at once)."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("received %s: finishing this iteration, then writing a resumable checkpoint", signal.Signals(signum).name)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Trainer:
    """Runs epochs ``start..end_epoch-1``; see :mod:`adatad.engine.runner` for how it is built."""

    def __init__(
        self,
        cfg: dict,
        model: torch.nn.Module,
        train_loader,
        dist_info: DistInfo,
        work_dir: Path,
        evaluate_fn=None,
        tb_writer=None,
        class_names: list[str] | None = None,
        gpu_augment=None,
        cpu_governor=None,
    ):
        """``class_names`` are saved with checkpoints (so that ``adatad infer`` names the classes); ``gpu_augment``
        is a callable ``(uint8 batch, generator=...)`` applied to each batch on the device (``dataset.transform.on_gpu``;
        :class:`adatad.data.transforms.GPUBatchAugment`), with a generator derived from the run seed, the epoch, the
        iteration and the rank; ``cpu_governor`` (:class:`adatad.cpu.ThreadGovernor`) re-checks the free CPU cores
        between steps."""
        self.cfg = cfg
        self.dist = dist_info
        self.device = dist_info.device
        self.work_dir = Path(work_dir)
        self.ckpt_dir = self.work_dir / "checkpoint"
        self.train_loader = train_loader
        self.evaluate_fn = evaluate_fn  # callable(model) -> result dict with "average_mAP" (fraction) or None
        self.tb = tb_writer
        solver = cfg["solver"]
        self.accumulate = max(1, int(solver["train"]["accumulate"]))
        self.clip = float(solver["clip_grad_norm"] or 0.0)
        self.amp, self.amp_dtype, use_scaler = amp_settings(solver, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None

        self.model = model.to(self.device)
        self.optimizer = build_optimizer(self.model, cfg["optimizer"])
        self.ema = ModelEMA(self.model, decay=solver["ema_decay"]) if solver["ema"] else None
        if dist_info.distributed:
            static = bool(solver["static_graph"])
            self.ddp = DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=not static,
                static_graph=static,
            )
            if solver["fp16_compress"] and self.device.type == "cuda":
                from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

                self.ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
                logger.info("DDP: fp16 gradient compression on")
        else:
            self.ddp = self.model

        steps_per_epoch = max(1, math.ceil(len(train_loader) / self.accumulate))
        sch = cfg["scheduler"]
        if sch["type"] != "LinearWarmupCosineAnnealingLR":
            raise ValueError(f"scheduler.type {sch['type']!r} is not supported (LinearWarmupCosineAnnealingLR)")
        self.scheduler = WarmupCosineSchedule(
            self.optimizer,
            warmup_steps=sch["warmup_epoch"] * steps_per_epoch,
            max_steps=sch["max_epoch"] * steps_per_epoch,
            warmup_start_lr=sch["warmup_start_lr"],
            eta_min=sch["eta_min"],
        )
        self.end_epoch = int(cfg["workflow"]["end_epoch"] or sch["max_epoch"])
        self.start_epoch = 0
        self.start_iter = 0
        self.global_step = 0
        self.best_map = -1.0
        self.history: list[dict] = []
        self.skipped_steps = 0
        # training samples whose video failed to decode (each replaced by another sample, see TrainDataset)
        self.max_bad_fraction = float(cfg["dataset"]["train"].get("max_bad_fraction", 0.01))
        self.bad_samples = 0
        self.samples_seen = 0
        self.bad_videos: dict[str, int | None] = {}  # video -> first bad frame seen (each logged once)
        self.class_names = list(class_names or [])
        self.gpu_augment = gpu_augment
        self.cpu_governor = cpu_governor
        self._epoch_loss = float("nan")
        self._fault_nan = _fault_nan_at(dist_info.rank)

    # ------------------------------------------------------------------------------------ checkpoints
    def state(self, epoch: int, iteration: int) -> dict:
        return {
            "epoch": epoch,
            "iteration": iteration,
            "global_step": self.global_step,
            "state_dict": self.model.state_dict(),
            "state_dict_ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "rng": rng_state(),
            "best_map": self.best_map,
            "history": self.history,
            "skipped_steps": self.skipped_steps,
            "bad_samples": self.bad_samples,
            "samples_seen": self.samples_seen,
            "bad_videos": dict(self.bad_videos),
            "config": {k: v for k, v in self.cfg.items() if k != "_meta"},
            "class_names": list(self.class_names),
        }

    def save(self, epoch: int, iteration: int = 0, names: tuple[str, ...] = ("latest.pth",)) -> None:
        if not self.dist.is_main:
            return
        state = self.state(epoch, iteration)
        # latest.pth last: it is what --resume takes, so once it names epoch K every other file of epoch K is complete
        # (a process killed before that resumes from epoch K-1 and writes them again)
        for name in sorted(names, key=lambda n: n == "latest.pth"):
            save_atomic(state, self.ckpt_dir / name)
        logger.info("checkpoint: %s (epoch %d%s)", ", ".join(names), epoch, f", iteration {iteration}" if iteration else "")

    def resume(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path, map_location="cpu")
        for key in ("state_dict", "optimizer", "scheduler", "epoch"):
            if key not in ckpt:
                raise CheckpointError(
                    f"{path} is not a resumable adatad training checkpoint (no {key!r}); "
                    "to start from weights only, use model.backbone.pretrained"
                )
        self.model.load_state_dict(ckpt["state_dict"])
        if self.ema and ckpt.get("state_dict_ema") is not None:
            self.ema.load_state_dict(ckpt["state_dict_ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        self.global_step = ckpt.get("global_step", 0)
        self.best_map = ckpt.get("best_map", -1.0)
        self.history = list(ckpt.get("history", []))
        self.skipped_steps = ckpt.get("skipped_steps", 0)
        self.bad_samples = ckpt.get("bad_samples", 0)
        self.samples_seen = ckpt.get("samples_seen", 0)
        self.bad_videos = dict(ckpt.get("bad_videos", {}))
        if ckpt.get("iteration", 0):
            self.start_epoch, self.start_iter = ckpt["epoch"], ckpt["iteration"]
        else:
            self.start_epoch, self.start_iter = ckpt["epoch"] + 1, 0
        logger.info("resumed from %s: epoch %d, iteration %d", path, self.start_epoch, self.start_iter)

    # ----------------------------------------------------------------------------------------- loop
    def fit(self) -> dict:
        wf = self.cfg["workflow"]
        with _StopRequest() as stop:
            for epoch in range(self.start_epoch, self.end_epoch):
                skip = self.start_iter if epoch == self.start_epoch else 0
                try:
                    done = self.train_epoch(epoch, skip, stop)
                except RuntimeError as exc:
                    if not (self.dist.distributed and _is_peer_failure(exc)):
                        raise
                    raise PeerLostError(
                        f"rank {self.dist.rank}: lost another training process during epoch {epoch} "
                        f"({(str(exc).splitlines() or [''])[0][:200]}); torchrun's summary names the rank that failed. "
                        f"Resume with --resume auto (or run torchrun --max-restarts N ... --resume auto to do it for you)"
                    ) from exc
                if done is not None:  # interrupted at iteration `done`
                    self.save(epoch, done, names=("latest.pth",))
                    return {"interrupted": True, "epoch": epoch, "iteration": done}
                names = ["latest.pth"]
                if (epoch + 1) % wf["checkpoint_interval"] == 0 or epoch == self.end_epoch - 1:
                    names.append(f"epoch_{epoch}.pth")
                result = None
                if (
                    self.evaluate_fn
                    and epoch >= wf["val_start_epoch"]
                    and wf["val_eval_interval"] > 0
                    and ((epoch + 1) % wf["val_eval_interval"] == 0 or epoch == self.end_epoch - 1)
                ):
                    result = self.evaluate_fn(self.ema.module if self.ema else self.model, epoch)
                self._record(epoch, result)
                if result is not None and result.get("average_mAP") is not None and result["average_mAP"] > self.best_map:
                    self.best_map = result["average_mAP"]
                    names.append("best.pth")
                    logger.info("new best average mAP %.2f at epoch %d", 100 * self.best_map, epoch)
                self.save(epoch, 0, names=tuple(names))
                if stop.requested:
                    return {"interrupted": True, "epoch": epoch, "iteration": 0}
        return {"interrupted": False, "best_map": self.best_map, "history": self.history}

    def _record(self, epoch: int, result: dict | None) -> None:
        entry = {"epoch": epoch, "loss": self._epoch_loss}
        if result is not None and result.get("average_mAP") is not None:
            entry["mAP"] = 100 * result["average_mAP"]
            if self.tb:
                self.tb.add_scalar("val/average_mAP", entry["mAP"], epoch)
        self.history.append(entry)
        if self.dist.is_main:
            (self.work_dir / "history.json").write_text(json.dumps(self.history, indent=1))
            if result is not None:
                try:
                    from adatad.viz import plot_training_curves

                    plot_training_curves(self.work_dir / "training_curves.png", self.history)
                except Exception as exc:  # a plot must never stop training
                    logger.warning("could not draw training curves: %s", exc)

    def train_epoch(self, epoch: int, skip_batches: int, stop: _StopRequest) -> int | None:
        """Train one epoch; returns None when complete, or the number of batches done when interrupted."""
        loader = self.train_loader
        loader.sampler.set_epoch(epoch, skip_batches)
        self.ddp.train()
        if self.ema:
            self.ema.module.eval()
        num_batches = len(loader) + skip_batches
        wf = self.cfg["workflow"]
        sums: dict[str, float] = {}
        count = 0
        bar = None
        if self.dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=num_batches, initial=skip_batches, desc=f"epoch {epoch}/{self.end_epoch - 1}", dynamic_ncols=True, leave=False)
        t_data = time.perf_counter()
        it = skip_batches
        self.optimizer.zero_grad(set_to_none=True)
        try:
            for batch in loader:
                t_start = time.perf_counter()
                data_time = t_start - t_data
                self._count_bad_samples(batch, epoch, it, num_batches)
                losses = self._step(batch, it, num_batches, epoch)
                if self.cpu_governor is not None:
                    self.cpu_governor.tick()
                it += 1
                compute_time = time.perf_counter() - t_start
                count += 1
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses['cost']:.3f}", data=f"{data_time:.2f}s", step=f"{compute_time:.2f}s")
                if self.dist.is_main and (it % wf["logging_interval"] == 0 or it == num_batches):
                    self._log(epoch, it, num_batches, sums, count, data_time, compute_time)
                t_data = time.perf_counter()
                if broadcast_flag(stop.requested) and it < num_batches:
                    stop.requested = True
                    if bar is not None:
                        bar.close()
                    return it
        except UserError as e:
            if bar is not None:
                bar.close()
            raise _without_worker_traceback(e) from None
        except BaseException:
            if bar is not None:  # the error message must not end up on the progress bar's line
                bar.close()
            raise
        if bar is not None:
            bar.close()
        self._epoch_loss = all_reduce_mean(sums.get("cost", 0.0) / max(count, 1))
        return None

    def _count_bad_samples(self, batch: dict, epoch: int, it: int, num_batches: int) -> None:
        """Count the samples of this batch that replaced one whose video failed to decode (``metas["bad_samples"]``,
        set by the dataset, maybe in a worker), log each bad video once, and stop when the run's fraction of bad
        samples can no longer stay within ``dataset.train.max_bad_fraction`` by the end of this epoch."""
        metas = batch.get("metas") or [{}] * len(batch["inputs"])  # a batch without metas: no bad samples
        local = [f for m in metas for f in m.get("bad_samples", ())]
        parts = all_gather_objects((local, len(metas)))  # every rank takes the same decision
        failures = [f for fs, _ in parts for f in fs]
        self.samples_seen += sum(n for _, n in parts)
        if not failures:
            return
        self.bad_samples += len(failures)
        for f in failures:
            if f["video"] not in self.bad_videos:
                self.bad_videos[f["video"]] = f["frame"]
                if self.dist.is_main:
                    logger.warning(
                        "bad frames: %s cannot be decoded from frame %s (%s); its samples are replaced by others "
                        "(%d bad sample(s) of %d so far)",
                        f["video"], f["frame"], f["path"], self.bad_samples, self.samples_seen,
                    )  # fmt: skip
        if self.tb:
            self.tb.add_scalar("train/bad_samples", self.bad_samples, self.global_step)
        sampler = self.train_loader.sampler
        per_rank = getattr(sampler, "num_samples_per_rank", lambda: 0)()
        batch_size = getattr(sampler, "batch_size", 1)
        remaining = max(0, per_rank - (it + 1) * batch_size) * self.dist.world_size
        total = self.samples_seen + remaining
        if self.bad_samples > self.max_bad_fraction * total:
            listing = ", ".join(f"{v} (frame {fr})" for v, fr in self.bad_videos.items())
            raise TooManyBadSamplesError(
                f"training stopped at epoch {epoch} iteration {it + 1}: {self.bad_samples} of {self.samples_seen} "
                f"training samples failed to decode, more than dataset.train.max_bad_fraction={self.max_bad_fraction:g} "
                f"of the {total} samples up to the end of this epoch; bad videos: {listing}. Re-encode or remove them "
                "(`adatad prepare check --decode` lists every bad file), or raise --cfg-options "
                "dataset.train.max_bad_fraction"
            )

    def _augment_generator(self, epoch: int, it: int) -> torch.Generator:
        """The CPU generator of the device augmentation's parameters for batch ``it`` of ``epoch`` on this rank: a pure
        function of (run seed, epoch, iteration, rank), so a resumed run draws what the uninterrupted run drew."""
        key = (int(self.cfg["solver"]["seed"]), epoch, it, self.dist.rank, 0x6175)  # 0x6175: apart from item seeds
        return torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint64)[0]))

    def _step(self, batch: dict, it: int, num_batches: int, epoch: int) -> dict[str, float]:
        inputs = batch["inputs"].to(self.device, non_blocking=True)
        masks = batch["masks"].to(self.device, non_blocking=True)
        gt_segments = [g.to(self.device) for g in batch["gt_segments"]]
        gt_labels = [g.to(self.device) for g in batch["gt_labels"]]
        if self.gpu_augment is not None:
            inputs = self.gpu_augment(inputs, generator=self._augment_generator(epoch, it))
        last_of_group = (it + 1) % self.accumulate == 0 or it + 1 == num_batches
        sync = contextlib.nullcontext()
        if self.dist.distributed and not last_of_group and isinstance(self.ddp, DistributedDataParallel):
            sync = self.ddp.no_sync()
        with sync:
            with autocast(self.device, self.amp, self.amp_dtype):
                losses = self.ddp(inputs, masks, gt_segments, gt_labels, return_loss=True)
            cost = losses["cost"]
            if self._fault_nan == (epoch, it):
                cost = cost * float("nan")
                losses = {**losses, "cost": cost}
            bad = ranks_with_flag(not bool(torch.isfinite(cost)))
            action = nonfinite_decision(bad, self.scaler is not None)
            if action != "step":
                terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
                where = f"epoch {epoch} iteration {it}"
                if self.dist.distributed:
                    where += f" on rank {', '.join(map(str, bad))} (this is rank {self.dist.rank})"
                if action == "skip":
                    # fp16 overflow, as in OpenTAD: every rank still runs backward (DDP's all-reduce stays in step and
                    # spreads the inf), GradScaler.step then skips the optimizer step and update() lowers the scale
                    self.skipped_steps += 1
                    logger.warning("non-finite loss at %s (%s): the GradScaler skips this step and lowers its scale "
                                   "(%d so far)", where, terms, self.skipped_steps)  # fmt: skip
                else:
                    raise NonFiniteLossError(
                        f"non-finite loss at {where}: {terms}. Lower the learning rate, check the data, or enable AMP loss scaling."
                    )
            loss = cost / self.accumulate
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
        if last_of_group:
            if self.clip > 0:
                if self.scaler is not None:
                    self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.clip)
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()
            self.global_step += 1
            if self.ema:
                self.ema.update(self.model)
        return {k: float(v.detach()) for k, v in losses.items()}

    def _log(self, epoch, it, num_batches, sums, count, data_time, compute_time) -> None:
        avg = {k: v / max(count, 1) for k, v in sums.items()}
        lrs = " ".join(f"lr_{g.get('name', i)}={g['lr']:.2e}" for i, g in enumerate(self.optimizer.param_groups))
        mem = ""
        if self.device.type == "cuda":
            mem = f" mem={torch.cuda.max_memory_allocated(self.device) / 2**30:.2f}GB"
        terms = " ".join(f"{k}={v:.4f}" for k, v in avg.items())
        if self.bad_samples:
            terms += f" bad_samples={self.bad_samples}"
        logger.info(
            "[train] epoch %d [%d/%d] %s %s data=%.3fs step=%.3fs%s", epoch, it, num_batches, terms, lrs, data_time, compute_time, mem
        )
        if self.tb:
            for k, v in avg.items():
                self.tb.add_scalar(f"train/{k}", v, self.global_step)
            for i, g in enumerate(self.optimizer.param_groups):
                self.tb.add_scalar(f"lr/{g.get('name', i)}", g["lr"], self.global_step)
