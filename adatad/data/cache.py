"""Snippet cache: the frames a config can ever read, stored once in a form that decodes much faster than video.

``adatad prepare cache --config CFG`` (see :mod:`adatad.data.prepare`) writes, for each video of the train and
test subsets, the frames on the dataset's frame grid: ``0, s, 2s, ...`` with ``s = feature_stride *
sample_stride / scale_factor`` plus the last frame (the datasets clip indices to it), at one of two resolutions:

* ``source`` (default): the decoded frame; it serves the train and the test transform exactly (both resize from it).
* ``transform`` (``--resolution transform``): each video at the first resize of the transform that reads it,
  short side ``dataset.transform.train.resize_short`` (182) for the train subset, ``test.resize_short`` (160) for
  the val/test subsets, source for a video in both. Both transforms begin with that resize, which is then the
  identity, so the clips are the same as from the source, bit for bit, and the worker skips that resize (on real
  320x180 footage ~13% of the CPU train transform). A split whose first resize is another size reads such a video
  from its file (one warning). Recorded as ``short<N>``.

Formats:

* ``raw`` (default): uint8 ``[N, H, W, 3]`` read through ``np.memmap``: exact and no decoding at all. On real
  320x180 H.264 footage (benchmarks/results/cache_equivalence.md) a 768-snippet test window costs ~40x less CPU
  than decoding the video; 4.7 GB per hour of video (every 4th frame at 30 fps), ~115 GB for THUMOS-14's
  24 annotated hours.
* ``jpeg``: JPEG 4:4:4 at quality 95 (encoded with PIL), decoded in one ``torchvision.io.decode_jpeg`` batch:
  0.6 GB per hour, PSNR >= 44 dB per frame there, but only ~2x less CPU than the video (H.264 at 320x180 is
  already cheap to decode); for small disks.

Layout: ``<cache_dir>/<video name>/{frames.bin, offsets.npy (jpeg only), meta.json}``. ``meta.json`` records the
source file's size and mtime, the header facts of the source (frame count, fps, duration, size) and the config
values the cache depends on (strides, scale factor, resolution, decoder backend, format, quality, version). A video is built in a
temporary folder whose ``meta.json`` is written last, then renamed into place: a video folder with a
``meta.json`` is complete, anything else is rebuilt. :class:`CacheReader` has :class:`~adatad.data.video.VideoReader`'s
interface; datasets use it when ``dataset.cache_dir`` is set (:func:`scan_cache`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from adatad.cpu import run_in_processes
from adatad.errors import UserError

from .video import VideoError

__all__ = [
    "CACHE_VERSION",
    "FORMATS",
    "CacheError",
    "CacheSpec",
    "CacheReader",
    "cache_frame_indices",
    "scan_cache",
    "short_side_resolution",
]

log = logging.getLogger(__name__)

CACHE_VERSION = 1
FORMATS = ("jpeg", "raw")
META = "meta.json"
DATA = "frames.bin"
OFFSETS = "offsets.npy"


class CacheError(UserError):
    """A cached video does not match its source (stale) or the config (foreign). The message names the video."""


@dataclass(frozen=True)
class CacheSpec:
    """The config values a cache depends on (compared when a dataset opens it)."""

    feature_stride: int = 4
    sample_stride: int = 1
    scale_factor: int = 1
    resolution: str = "source"
    backend: str = "pyav"  # the decoder the frames come from (backends may differ in colour conversion)
    format: str = "raw"
    quality: int = 95
    version: int = CACHE_VERSION

    @property
    def frame_stride(self) -> int:
        return self.feature_stride * self.sample_stride // self.scale_factor

    def config_values(self) -> dict:
        """What must agree with a dataset's config (the format and quality are read from the cache itself)."""
        return {k: getattr(self, k) for k in ("feature_stride", "sample_stride", "scale_factor", "resolution", "backend", "version")}


def short_side_resolution(short: int) -> str:
    """The ``resolution`` of frames stored at the short side ``short`` (a transform's first resize)."""
    return f"short{int(short)}"


def resolution_short_side(resolution: str) -> int | None:
    """``"short182"`` -> 182, ``"source"`` -> None; anything else raises :class:`CacheError`."""
    if resolution == "source":
        return None
    if resolution.startswith("short") and resolution[5:].isdigit() and int(resolution[5:]) > 0:
        return int(resolution[5:])
    raise CacheError(f"unknown cache resolution {resolution!r}: 'source' or 'short<N>' (a short side in pixels)")


def serves(stored: str, wanted: str) -> bool:
    """Frames stored at ``stored`` give a split whose first resize is ``wanted`` its exact clips."""
    return stored in ("source", wanted)


def cache_frame_indices(num_frames: int, frame_stride: int) -> np.ndarray:
    """The frames a dataset with this stride can read: ``arange(0, N, stride)`` and the last frame ``N - 1``."""
    idx = np.arange(0, num_frames, frame_stride, dtype=np.int64)
    if num_frames > 0 and idx[-1] != num_frames - 1:
        idx = np.append(idx, num_frames - 1)
    return idx


def source_stat(path) -> dict:
    st = os.stat(path)
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def video_dir(cache_dir, name: str) -> Path:
    return Path(cache_dir) / name


def read_meta(cache_dir, name: str) -> dict | None:
    """The video's ``meta.json`` (its completion marker), or None when the video is not (completely) cached."""
    p = video_dir(cache_dir, name) / META
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise CacheError(f"cache of video {name}: unreadable {p} ({e}); delete that folder and rerun `adatad prepare cache`") from e


def check_meta(meta: dict, name: str, source, spec: CacheSpec) -> str | None:
    """Why the cached video ``name`` cannot serve ``source`` under ``spec`` (one line), or None when it can."""
    st = source_stat(source)
    old = meta.get("source", {})
    changed = [f"{k} {old.get(k)} -> {st[k]}" for k in ("size", "mtime_ns") if old.get(k) != st[k]]
    if changed:
        return f"stale: its source {source} changed since the cache was built ({', '.join(changed)})"
    want, have = spec.config_values(), meta.get("config", {})
    want.pop("resolution")  # compared by the caller: a resolution may serve a split without being equal (serves)
    diff = [f"{k}={have.get(k)!r} (config: {v!r})" for k, v in want.items() if have.get(k) != v]
    if diff:
        return "foreign: built for other config values: " + ", ".join(diff)
    return None


def scan_cache(cache_dir, videos, spec: CacheSpec) -> dict[str, dict]:
    """Metas of the cached ``videos`` (:class:`~adatad.data.annotations.VideoInfo` list, files present).

    Raises :class:`CacheError` on the first stale or foreign video; warns once, listing them, about videos not
    in the cache and videos stored at a resolution that does not serve ``spec.resolution`` (both are read from
    the video files)."""
    if not Path(cache_dir).is_dir():
        raise CacheError(f"dataset.cache_dir {cache_dir} does not exist; build it with `adatad prepare cache --config CFG`")
    found: dict[str, dict] = {}
    missing: list[str] = []
    other_size: list[str] = []
    for v in videos:
        meta = read_meta(cache_dir, v.name)
        if meta is None:
            missing.append(v.name)
            continue
        stored = meta.get("config", {}).get("resolution", "source")
        if not serves(stored, spec.resolution):
            other_size.append(f"{v.name} ({stored})")
            continue
        why = check_meta(meta, v.name, v.path, spec)
        if why is not None:
            raise CacheError(
                f"cache of video {v.name} in {cache_dir} is {why}; rerun `adatad prepare cache --config CFG` "
                "or set dataset.cache_dir=None to read the videos"
            )
        found[v.name] = meta
    if missing:
        log.warning(
            "%d of %d videos are not in the cache %s and are read from the video files: %s "
            "(run `adatad prepare cache --config CFG` to add them)",
            len(missing), len(videos), cache_dir, _names(missing),
        )  # fmt: skip
    if other_size:
        log.warning(
            "%d of %d videos in the cache %s are stored at another size than this split's first resize (%s) and are "
            "read from the video files: %s",
            len(other_size), len(videos), cache_dir, spec.resolution, _names(other_size),
        )  # fmt: skip
    return found


def _names(names: list[str]) -> str:
    return ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """One uint8 ``[H, W, 3]`` RGB frame -> JPEG bytes, 4:4:4 (no chroma subsampling: 4:2:0 costs up to 10 dB of
    PSNR on small saturated frames, 4:4:4 ~15% more bytes)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=int(quality), subsampling=0)
    return buf.getvalue()


def decode_jpegs(blobs: list[np.ndarray]) -> np.ndarray:
    """JPEG byte arrays -> uint8 ``[T, H, W, 3]``, in one ``torchvision.io.decode_jpeg`` batch (PIL where
    torchvision no longer has it)."""
    try:
        import warnings

        import torch
        from torchvision.io import decode_jpeg
    except ImportError:  # torchvision >= 0.3x moves image decoding to torchcodec
        import io

        from PIL import Image

        return np.stack([np.asarray(Image.open(io.BytesIO(b.tobytes())).convert("RGB")) for b in blobs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 deprecates its image codecs
        out = decode_jpeg([torch.from_numpy(b) for b in blobs])
    return torch.stack(list(out)).permute(0, 2, 3, 1).numpy()


class CacheReader:
    """:class:`~adatad.data.video.VideoReader`'s interface over one cached video.

    ``num_frames``, ``fps``, ``duration``, ``width``, ``height`` are the source video's header facts;
    ``get_frames(indices)`` returns uint8 ``[T, H, W, 3]``, indices clipped to ``[0, num_frames - 1]``; an index
    off the cached grid raises :class:`VideoError` (the cache was built for another stride)."""

    backend = "cache"

    def __init__(self, cache_dir, name: str, meta: dict | None = None):
        self.dir = video_dir(cache_dir, name)
        self.path = str(self.dir)
        meta = meta if meta is not None else read_meta(cache_dir, name)
        if meta is None:
            raise VideoError(f"video {name} is not in the cache {cache_dir}", path=self.path)
        self.meta = meta
        h = meta["header"]
        self.num_frames: int = int(h["num_frames"])
        self.fps: float = float(h["fps"])
        self.duration: float = float(h["duration"])
        self.width: int = int(h["width"])
        self.height: int = int(h["height"])
        stored = meta.get("stored", h)  # the frames' own size (another than the source's at resolution short<N>)
        self.frame_size: tuple[int, int] = (int(stored["height"]), int(stored["width"]))
        self.stride = int(meta["frame_stride"])
        self.count = int(meta["num_cached"])
        self.format = meta["format"]
        self._data: np.ndarray | None = None
        self._offsets: np.ndarray | None = None

    def _open(self) -> np.ndarray:
        if self._data is None:
            try:
                self._data = np.memmap(self.dir / DATA, dtype=np.uint8, mode="r")
                if self.format == "jpeg":
                    self._offsets = np.load(self.dir / OFFSETS)
            except (OSError, ValueError) as e:
                raise VideoError(f"cannot read cached frames {self.dir / DATA}: {e}", path=self.path) from e
            fh, fw = self.frame_size
            want = self._offsets[-1] if self._offsets is not None else self.count * fh * fw * 3
            if self._data.size != want:
                raise VideoError(
                    f"cached frames {self.dir / DATA} hold {self._data.size} bytes, {want} expected (truncated?); delete "
                    "that folder and rerun `adatad prepare cache`",
                    path=self.path,
                )
        return self._data

    def positions(self, idx: np.ndarray) -> np.ndarray:
        """Slot of each frame index in the cache."""
        pos = idx // self.stride
        off = idx % self.stride != 0
        last = idx == self.num_frames - 1
        if (off & ~last).any():
            bad = int(idx[off & ~last][0])
            raise VideoError(
                f"frame {bad} is not in the cache {self.dir} (it holds every {self.stride}th frame)", path=self.path, frame=bad
            )
        pos[last] = self.count - 1
        return pos

    def get_frames(self, indices) -> np.ndarray:
        idx = np.clip(np.asarray(indices, dtype=np.int64).reshape(-1), 0, max(self.num_frames - 1, 0))
        fh, fw = self.frame_size
        if idx.size == 0:
            return np.zeros((0, fh, fw, 3), dtype=np.uint8)
        pos = self.positions(idx)
        data = self._open()
        if self.format == "raw":
            return np.asarray(data.reshape(self.count, fh, fw, 3)[pos])
        assert self._offsets is not None
        uniq, inverse = np.unique(pos, return_inverse=True)
        blobs = [np.array(data[self._offsets[p] : self._offsets[p + 1]]) for p in uniq.tolist()]
        try:
            frames = decode_jpegs(blobs)
        except (RuntimeError, OSError) as e:
            raise VideoError(f"cannot decode cached frames in {self.dir}: {e}", path=self.path) from e
        return frames[inverse.reshape(-1)]

    def close(self) -> None:
        self._data = None
        self._offsets = None

    def __enter__(self) -> CacheReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        fh, fw = self.frame_size
        return f"CacheReader({self.path!r}, {self.format}, frames={self.num_frames}, every {self.stride}th, {fw}x{fh})"


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def build_video(name: str, source: str, cache_dir, spec: CacheSpec, chunk: int = 256) -> dict:
    """Decode the cached frames of one video and store them atomically. -> ``{"name", "frames", "bytes", "duration"}``."""
    from .video import VideoReader

    final = video_dir(cache_dir, name)
    tmp = Path(cache_dir) / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    st = source_stat(source)
    short = resolution_short_side(spec.resolution)
    stored = None
    with VideoReader(source, backend=spec.backend, num_threads=1) as r:
        idx = cache_frame_indices(r.num_frames, spec.frame_stride)
        header = {"num_frames": r.num_frames, "fps": r.fps, "duration": r.duration, "width": r.width, "height": r.height}
        offsets = [0]
        with open(tmp / DATA, "wb") as f:
            for i in range(0, len(idx), chunk):
                frames = r.get_frames(idx[i : i + chunk])
                if short is not None:
                    frames = _resize_frames(frames, short)
                    stored = {"height": int(frames.shape[1]), "width": int(frames.shape[2])}
                if spec.format == "raw":
                    f.write(np.ascontiguousarray(frames).tobytes())
                    continue
                for frame in frames:
                    b = encode_jpeg(frame, spec.quality)
                    f.write(b)
                    offsets.append(offsets[-1] + len(b))
            f.flush()
            os.fsync(f.fileno())
    if spec.format == "jpeg":
        np.save(tmp / OFFSETS, np.asarray(offsets, dtype=np.int64))
    meta = {
        "video": name,
        "source": dict(st, path=str(source)),
        "header": header,
        "config": spec.config_values(),
        "format": spec.format,
        "quality": spec.quality if spec.format == "jpeg" else None,
        "frame_stride": spec.frame_stride,
        "num_cached": int(len(idx)),
    }
    if stored is not None:
        meta["stored"] = stored
    _fsync_write(tmp / META, json.dumps(meta, indent=1).encode())  # the completion marker, written last
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    nbytes = sum(p.stat().st_size for p in final.iterdir())
    return {"name": name, "frames": int(len(idx)), "bytes": nbytes, "duration": float(header["duration"])}


def _resize_frames(frames: np.ndarray, short: int) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` -> the same at short side ``short``, by the transforms' own first step."""
    from .transforms import resize_short_side, to_tchw

    return resize_short_side(to_tchw(frames), short).permute(0, 2, 3, 1).contiguous().numpy()


def _same_build(meta: dict, spec: CacheSpec) -> bool:
    """The cached video was built as ``spec`` would build it (resolution, format, quality)."""
    same_res = meta.get("config", {}).get("resolution", "source") == spec.resolution
    return same_res and meta.get("format") == spec.format and meta.get("quality") in (None, spec.quality)


def _build_job(job: tuple) -> dict:
    name, source, cache_dir, spec = job
    return build_video(name, source, cache_dir, CacheSpec(**spec))


def build_cache(videos, cache_dir, spec: CacheSpec, workers: int = 1, progress: bool = True, on_done=None) -> dict:
    """Cache every video of ``videos`` (VideoInfo list, files present) that is not cached for ``spec`` yet.

    Complete, current videos are skipped (an interrupted run continues where it stopped); stale or foreign ones
    are rebuilt. ``on_done(result)`` is called after each video (the tests inject a failure there).
    -> ``{"built", "skipped", "rebuilt", "bytes", "hours", "videos"}`` over the whole cache of ``videos``."""
    if spec.format not in FORMATS:
        raise CacheError(f"unknown cache format {spec.format!r}; choose one of {FORMATS}")
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for tmp in cache_dir.glob(".tmp-*"):  # an interrupted run's partial video
        shutil.rmtree(tmp, ignore_errors=True)
    todo, skipped, rebuilt = [], 0, []
    for v in videos:
        meta = read_meta(cache_dir, v.name)
        why = None if meta is None else check_meta(meta, v.name, v.path, spec)
        if meta is not None and why is None and _same_build(meta, spec):
            skipped += 1
            continue
        if meta is not None:
            rebuilt.append(v.name)
        todo.append((v.name, str(v.path), str(cache_dir), asdict(spec)))
    if rebuilt:
        log.warning("rebuilding %d cached videos that are stale, foreign or in another format: %s", len(rebuilt), rebuilt[:10])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="video", desc=f"caching {len(todo)} videos ({workers} workers)", dynamic_ncols=True)
    import time

    t0, frames = time.perf_counter(), 0

    def collect(res: dict) -> None:
        nonlocal frames
        frames += res["frames"]
        if bar is not None:
            bar.set_postfix(frames_per_s=f"{frames / max(time.perf_counter() - t0, 1e-9):.0f}")
            bar.update(1)
        if on_done is not None:
            on_done(res)

    try:
        for res in run_in_processes(_build_job, todo, workers):
            collect(res)
    finally:
        if bar is not None:
            bar.close()
    nbytes, hours = 0, 0.0
    for v in videos:
        meta = read_meta(cache_dir, v.name)
        if meta is None:
            continue
        nbytes += sum(p.stat().st_size for p in video_dir(cache_dir, v.name).iterdir())
        hours += float(meta["header"]["duration"]) / 3600
    return {"built": len(todo), "skipped": skipped, "rebuilt": len(rebuilt), "bytes": nbytes, "hours": hours, "videos": len(videos)}
