"""Helpers that write small real H.264 mp4 files with PyAV for the tests.

Every frame encodes its own index as 10 big black/white blocks (2 rows x 5 columns, most significant bit
first), so a decoded frame can be matched to the frame that was encoded whatever the compression noise.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

BITS = 10  # up to 1024 distinct frame indices
ROWS, COLS = 2, 5


def pattern_frame(index: int, height: int = 180, width: int = 320) -> np.ndarray:
    """uint8 ``[H, W, 3]`` RGB frame whose blocks spell ``index`` in binary (white = 1)."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    bh, bw = height // ROWS, width // COLS
    for b in range(BITS):
        if (index >> (BITS - 1 - b)) & 1:
            r, c = divmod(b, COLS)
            img[r * bh : (r + 1) * bh, c * bw : (c + 1) * bw] = 255
    # a coloured stripe (red grows with the index) so channel order errors show up too
    img[:, :4, 0] = min(index, 255)
    return img


def decode_index(frame: np.ndarray) -> int:
    """Inverse of :func:`pattern_frame` on a decoded (noisy) frame ``[H, W, 3]``."""
    h, w = frame.shape[:2]
    bh, bw = h // ROWS, w // COLS
    value = 0
    for b in range(BITS):
        r, c = divmod(b, COLS)
        block = frame[r * bh + bh // 4 : (r + 1) * bh - bh // 4, c * bw + bw // 4 : (c + 1) * bw - bw // 4]
        value = (value << 1) | int(block.mean() > 127)
    return value


def write_test_video(
    path: str | Path,
    num_frames: int = 120,
    fps: Fraction | int | str = 30,
    width: int = 320,
    height: int = 180,
    gop: int = 25,
    frame_fn=None,
) -> Path:
    """Write an H.264 mp4 whose frame ``i`` is ``frame_fn(i, height, width)`` (default :func:`pattern_frame`)."""
    import av

    path = Path(path)
    rate = Fraction(fps)
    frame_fn = frame_fn or pattern_frame
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast", "crf": "18", "bf": "2", "g": str(gop), "keyint_min": str(gop)}
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_fn(i, height, width), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
