"""Video decoding behind one small interface.

``VideoReader(path, backend="pyav")`` probes the header on construction (``num_frames``, ``fps``,
``duration``, ``width``, ``height``) and returns frames with ``get_frames(indices)`` as a uint8 array
``[T, H, W, 3]`` (RGB) in the order requested.

PyAV backend (default): threaded decoding; for each run of requested frames it seeks to the nearest
keyframe before the first needed frame and decodes forward, keeping only the requested indices; the packets of
frames not requested are decoded with FFmpeg's ``skip_frame=NONREF``, so the frames nothing refers to (most
B-frames) are not decoded at all (about a third of a THUMOS-like x264 stream at every 4th frame). A frame's
index is computed from its presentation timestamp (``(pts - start) * time_base * fps``, exact for constant
frame rate such as 25, 30 and 30000/1001), so seeking and decoding from the start give the same frames.
Requested indices are clipped to ``[0, num_frames - 1]`` as OpenTAD does; if the stream holds a few frames
less than its header says, the missing tail repeats the last decoded frame. Duplicated indices are decoded
once. Files that cannot be opened or decoded raise :class:`VideoError` naming the file (and the frame).
"""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np

from adatad.errors import UserError

__all__ = ["VideoError", "VideoReader", "probe_video", "available_backends"]

# How many frames the stream may end before the header's frame count and still be served by
# repeating the last decoded frame (header counts of real files are sometimes off by one or two).
TAIL_TOLERANCE = 8


class VideoError(UserError, RuntimeError):
    """A video file is missing, unreadable, corrupt or truncated. The message names the file.

    ``path`` and ``frame`` (the first frame that could not be decoded; None when the file does not even
    open) are set where known, for the callers that report or skip bad frames."""

    def __init__(self, message: str, path: str | None = None, frame: int | None = None):
        super().__init__(message)
        self.path = path
        self.frame = frame


def available_backends() -> list[str]:
    """Names of the decoding backends importable in this environment."""
    names = ["pyav"]
    try:  # optional
        import decord  # noqa: F401  # pyright: ignore[reportMissingImports]  # optional, not in the dev environment

        names.append("decord")
    except ImportError:
        pass
    try:  # optional extra: pip install 'adatad[torchcodec]' (plus FFmpeg's shared libraries)
        _torchcodec_decoder()
        names.append("torchcodec")
    except VideoError:
        pass
    return names


class VideoReader:
    """Random access to the frames of one video file.

    Args:
        path: video file.
        backend: ``"pyav"`` (default), ``"torchcodec"`` or ``"decord"`` (the last two only if installed).
        num_threads: decoder threads (0 = let FFmpeg choose).
        seek_gap: when the next requested frame is more than this many frames after the last decoded one,
            seek instead of decoding through the gap (PyAV only).

    Attributes (from the header, no decoding): ``num_frames`` (int), ``fps`` (float), ``duration`` (seconds),
    ``width``, ``height``.
    """

    def __init__(self, path: str | os.PathLike, backend: str = "pyav", num_threads: int = 0, seek_gap: int = 300):
        self.path = str(path)
        self.backend = backend
        if not os.path.exists(self.path):
            raise VideoError(f"video file not found: {self.path} (check data_path / the video name)")
        if os.path.getsize(self.path) == 0:
            raise VideoError(f"video file is empty (0 bytes): {self.path}; re-download or re-encode it")
        if backend == "pyav":
            self._impl = _PyAVBackend(self.path, num_threads=num_threads, seek_gap=seek_gap)
        elif backend == "decord":
            self._impl = _DecordBackend(self.path, num_threads=num_threads)
        elif backend == "torchcodec":
            self._impl = _TorchCodecBackend(self.path, num_threads=num_threads)
        else:
            raise ValueError(f"unknown video backend {backend!r}; available: {available_backends()}")
        self.num_frames: int = self._impl.num_frames
        self.fps: float = float(self._impl.fps)
        self.duration: float = float(self._impl.duration)
        self.width: int = self._impl.width
        self.height: int = self._impl.height

    def get_frames(self, indices) -> np.ndarray:
        """Decode the frames at ``indices`` (any order, duplicates allowed).

        Indices are clipped to ``[0, num_frames - 1]``. Returns uint8 ``[T, H, W, 3]`` RGB, ``T = len(indices)``.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            return np.zeros((0, self.height, self.width, 3), dtype=np.uint8)
        idx = np.clip(idx, 0, max(self.num_frames - 1, 0))
        return self._impl.get_frames(idx)

    def iter_frames(self, indices, chunk: int = 64):
        """Yield ``(index, frame uint8 [H, W, 3])`` for each distinct index (clipped as in :meth:`get_frames`), in
        increasing order, reading the file once forward: the decode-once path of :mod:`adatad.data.stream`.
        A backend without a sequential decoder serves it with :meth:`get_frames` on runs of ``chunk`` frames."""
        idx = np.unique(np.clip(np.asarray(indices, dtype=np.int64).reshape(-1), 0, max(self.num_frames - 1, 0))).tolist()
        if not idx:
            return
        sequential = getattr(self._impl, "iter_frames", None)
        if sequential is not None:
            yield from sequential(idx)
            return
        for c in range(0, len(idx), chunk):
            part = idx[c : c + chunk]
            yield from zip(part, self._impl.get_frames(np.asarray(part, dtype=np.int64)))

    def close(self) -> None:
        self._impl.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"VideoReader({self.path!r}, backend={self.backend!r}, frames={self.num_frames}, fps={self.fps:.3f}, "
            f"{self.width}x{self.height})"
        )


def probe_video(path: str | os.PathLike, backend: str = "pyav") -> dict:
    """Header facts of a video: ``{"path", "num_frames", "fps", "duration", "width", "height"}``."""
    with VideoReader(path, backend=backend, num_threads=1) as r:
        return {
            "path": str(path),
            "num_frames": r.num_frames,
            "fps": r.fps,
            "duration": r.duration,
            "width": r.width,
            "height": r.height,
        }


class _PyAVBackend:
    def __init__(self, path: str, num_threads: int = 0, seek_gap: int = 300):
        import av
        import av.error  # get_frames catches av.error.FFmpegError

        self._av = av
        self.path = path
        self.seek_gap = int(seek_gap)
        try:
            self.container = av.open(path)
        except Exception as e:  # av.error.* (InvalidDataError, ...) or OSError
            raise VideoError(f"cannot open video {path}: {e} (the file is corrupt, truncated or not a video)") from e
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(f"no video stream in {path}")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.stream.thread_count = int(num_threads)
        st = self.stream
        rate = st.average_rate or st.guessed_rate or st.base_rate
        if not rate:
            self.close()
            raise VideoError(f"cannot determine the frame rate of {path}")
        self.rate = Fraction(rate)
        self.time_base = Fraction(st.time_base) if st.time_base else None
        if self.time_base is not None:  # frame index = (pts - start) * _idx_num / _idx_den, rounded
            per_pts = self.time_base * self.rate
            self._idx_num, self._idx_den = per_pts.numerator, per_pts.denominator
        self.start_pts = st.start_time if st.start_time is not None else 0
        self.width = st.codec_context.width
        self.height = st.codec_context.height
        n = st.frames
        if st.duration is not None and self.time_base is not None:
            duration = float(st.duration * self.time_base)
        elif self.container.duration is not None:
            duration = self.container.duration / 1_000_000
        else:
            duration = 0.0
        if not n:  # container without a frame count: count packets (demux only, no decoding)
            n = self._count_packets()
            self.container.seek(0)
        if not duration:
            duration = n / float(self.rate)
        self.num_frames = int(n)
        self.fps = float(self.rate)
        self.duration = duration
        if self.num_frames <= 0:
            self.close()
            raise VideoError(f"video {path} has no frames")

    def _count_packets(self) -> int:
        try:
            return sum(1 for p in self.container.demux(self.stream) if p.size > 0)
        except Exception as e:
            raise VideoError(f"cannot read video {self.path}: {e}") from e

    def _frame_index(self, frame, fallback: int) -> int:
        return self._pts_index(frame.pts, fallback)

    def _pts_index(self, pts, fallback: int) -> int:
        """``round((pts - start) * time_base * fps)`` (half to even, as ``round`` of a Fraction) in integers."""
        if pts is None or self.time_base is None:
            return fallback
        q, r = divmod((pts - self.start_pts) * self._idx_num, self._idx_den)
        return q + 1 if 2 * r > self._idx_den or (2 * r == self._idx_den and q % 2) else q

    def _decode(self, needed: set[int]):
        """Decoded frames from the current position, in presentation order. Packets whose frame is not in
        ``needed`` are decoded with ``skip_frame="NONREF"``: FFmpeg drops such a frame if no other frame refers to
        it (B-frames, mostly) and decodes it otherwise, so every needed frame and every frame it depends on is
        decoded exactly as without skipping. For THUMOS' every-4th-frame snippets this skips about a third of
        an x264 stream's frames."""
        cc = self.stream.codec_context
        skipping: bool | None = None  # the decoder's setting is set by the first packet (a run may end mid-skip)
        try:
            for packet in self.container.demux(self.stream):
                fi = self._pts_index(packet.pts, -1) if packet.size else -1
                skip = fi >= 0 and fi not in needed
                if skip is not skipping:
                    cc.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
                yield from packet.decode()
        finally:
            cc.skip_frame = "DEFAULT"

    def _seek_to(self, index: int) -> None:
        """Seek to the keyframe at or before frame ``index``."""
        if index <= 0 or self.time_base is None:
            self.container.seek(0, stream=self.stream) if self.time_base is not None else self.container.seek(0)
            return
        pts = self.start_pts + int(Fraction(index) / self.rate / self.time_base)
        self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)

    def get_frames(self, idx: np.ndarray) -> np.ndarray:
        got = dict(self.iter_frames(np.unique(idx).tolist()))  # each distinct frame decoded at most once
        return np.stack([got[int(i)] for i in idx], axis=0)

    def iter_frames(self, needed: list[int]):
        """Yield ``(index, frame)`` for the sorted distinct frame indices ``needed``, in order, from one forward
        decode (seeking only to the first and over gaps of more than ``seek_gap`` frames)."""
        av = self._av
        pos = 0
        seek_target = needed[0] if needed else 0
        backoff = 0
        wanted = set(needed)
        while pos < len(needed):
            start = max(seek_target - backoff, 0)
            self._seek_to(start)
            last_idx = -1  # index of the last decoded frame in this run
            last_frame = None  # that frame
            run_start = pos  # seek again only after this run served at least one frame
            action = "end"
            try:
                for frame in self._decode(wanted):
                    fi = self._frame_index(frame, last_idx + 1)
                    if last_frame is None and fi > needed[pos] and start > 0:
                        action = "backoff"  # the seek landed after the frame we need
                        break
                    # requested frames skipped over (pts gap): serve them with the closest earlier frame
                    while pos < len(needed) and needed[pos] < fi:
                        yield needed[pos], (last_frame if last_frame is not None else frame).to_ndarray(format="rgb24")
                        pos += 1
                    if pos < len(needed) and needed[pos] == fi:
                        yield fi, frame.to_ndarray(format="rgb24")
                        pos += 1
                    last_idx, last_frame = fi, frame
                    if pos >= len(needed):
                        action = "done"
                        break
                    if pos > run_start and needed[pos] - fi > self.seek_gap:
                        action = "seek"
                        break
            except av.error.FFmpegError as e:
                where = needed[pos] if pos < len(needed) else last_idx
                raise VideoError(
                    f"decoding failed in {self.path} near frame {where} (last good frame {last_idx}): {e}; "
                    "the file is corrupt or truncated",
                    path=self.path,
                    frame=int(where),
                ) from e
            if action == "backoff":
                backoff = max(2 * backoff, 2 * int(self.rate) + 1)
            elif action == "seek":
                seek_target, backoff = needed[pos], 0
            elif action == "end" and pos < len(needed):  # the stream ended before all requested frames
                if last_frame is None or needed[pos] - last_idx > TAIL_TOLERANCE:
                    raise VideoError(
                        f"cannot decode frame {needed[pos]} of {self.path}: the stream ended after frame "
                        f"{last_idx} but the header says {self.num_frames} frames; the file is truncated or corrupt",
                        path=self.path,
                        frame=int(needed[pos]),
                    )
                tail = last_frame.to_ndarray(format="rgb24")
                for k in needed[pos:]:
                    yield k, tail
                pos = len(needed)

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass


class _DecordBackend:  # optional; only used when decord is installed
    def __init__(self, path: str, num_threads: int = 0):
        try:
            import decord  # pyright: ignore[reportMissingImports]  # optional, not in the dev environment
        except ImportError as e:
            raise VideoError("backend 'decord' requested but decord is not installed; use backend='pyav'") from e
        try:
            self.vr = decord.VideoReader(path, num_threads=num_threads)
        except Exception as e:
            raise VideoError(f"cannot open video {path}: {e}") from e
        self.path = path
        self.num_frames = len(self.vr)
        self.fps = float(self.vr.get_avg_fps())
        self.duration = self.num_frames / self.fps if self.fps else 0.0
        h, w = self.vr[0].shape[:2]
        self.width, self.height = int(w), int(h)

    def get_frames(self, idx: np.ndarray) -> np.ndarray:
        if self.vr is None:
            raise VideoError(f"decoding failed in {self.path}: the reader is closed")
        try:
            return self.vr.get_batch(idx.tolist()).asnumpy()
        except Exception as e:
            raise VideoError(f"decoding failed in {self.path}: {e}") from e

    def close(self) -> None:
        self.vr = None


TORCHCODEC_HELP = (
    "backend 'torchcodec' needs the torchcodec package (pip install 'adatad[torchcodec]') and FFmpeg's shared "
    "libraries (libavcodec, libavformat, ...; on Debian/Ubuntu: apt-get install ffmpeg); or use dataset.backend='pyav'"
)


def _torchcodec_decoder():
    """torchcodec's ``VideoDecoder`` class, its FFmpeg libraries loaded; :class:`VideoError` saying what to install."""
    import importlib

    try:
        from torchcodec.decoders import VideoDecoder  # pyright: ignore[reportMissingImports, reportPrivateImportUsage]  # optional extra
    except (ImportError, OSError, RuntimeError) as e:
        raise VideoError(f"{TORCHCODEC_HELP} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    # torchcodec imports without FFmpeg and fails on first use; it records whether its FFmpeg libraries loaded
    if getattr(importlib.import_module("torchcodec._core.ops"), "_FFMPEG_AVAILABLE", True) is False:
        raise VideoError(f"{TORCHCODEC_HELP} (torchcodec found no FFmpeg libraries it supports)")
    return VideoDecoder


class _TorchCodecBackend:  # optional; PyTorch's own decoder (FFmpeg underneath), CPU
    def __init__(self, path: str, num_threads: int = 0):
        decoder = _torchcodec_decoder()
        self.path = path
        try:
            # exact mode: the file is scanned once, frame i is the i-th frame in presentation order (as PyAV's pts rule)
            self.dec = decoder(path, dimension_order="NHWC", num_ffmpeg_threads=int(num_threads), seek_mode="exact")
        except Exception as e:  # torchcodec raises RuntimeError/ValueError for unreadable files
            raise VideoError(f"cannot open video {path}: {e} (the file is corrupt, truncated or not a video)", path=path) from e
        m = self.dec.metadata
        self.num_frames = int(m.num_frames or 0)
        self.fps = float(m.average_fps or 0.0)
        self.duration = float(m.duration_seconds or (self.num_frames / self.fps if self.fps else 0.0))
        self.width, self.height = int(m.width or 0), int(m.height or 0)
        if self.num_frames <= 0 or self.fps <= 0:
            raise VideoError(f"video {path} has no frames or no frame rate", path=path)

    def get_frames(self, idx: np.ndarray) -> np.ndarray:
        if self.dec is None:
            raise VideoError(f"decoding failed in {self.path}: the reader is closed")
        needed = np.unique(idx)  # sorted: one forward pass, each distinct frame decoded once
        try:
            got = self.dec.get_frames_at(needed.tolist()).data.numpy()
        except Exception as e:
            raise VideoError(
                f"decoding failed in {self.path} between frames {int(needed[0])} and {int(needed[-1])}: {e}; "
                "the file is corrupt or truncated",
                path=self.path,
                frame=int(needed[0]),
            ) from e
        return got[np.searchsorted(needed, idx)]

    def close(self) -> None:
        self.dec = None
