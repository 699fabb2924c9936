"""VideoReader on real H.264 files written with PyAV; frames carry their own index."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from videos import decode_index, pattern_frame, write_test_video  # noqa: E402

from adatad.data.video import VideoError, VideoReader, probe_video  # noqa: E402

N = 240
RATES = {"30": 30, "29.97": Fraction(30000, 1001), "25": 25}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {k: write_test_video(d / f"v{k}.mp4", N, fps=r, gop=30) for k, r in RATES.items()}


@pytest.mark.parametrize("rate", list(RATES))
def test_header(clips, rate):
    info = probe_video(clips[rate])
    assert info["num_frames"] == N
    assert info["width"] == 320 and info["height"] == 180
    assert info["fps"] == pytest.approx(float(RATES[rate]), rel=1e-6)
    assert info["duration"] == pytest.approx(N / float(RATES[rate]), abs=1e-3)


@pytest.mark.parametrize("rate", list(RATES))
def test_requested_indices_exact(clips, rate):
    idx = [200, 3, 3, 0, 117, 239, 239, 500, -7, 64]
    with VideoReader(clips[rate]) as r:
        frames = r.get_frames(idx)
    assert frames.shape == (len(idx), 180, 320, 3) and frames.dtype == np.uint8
    expected = np.clip(idx, 0, N - 1)  # OpenTAD clips to [0, total_frames - 1]
    assert [decode_index(f) for f in frames] == expected.tolist()
    # pixels close to what was encoded (H.264 at crf 18)
    for f, i in zip(frames, expected):
        assert np.abs(f.astype(int) - pattern_frame(int(i)).astype(int)).mean() < 6


@pytest.mark.parametrize("rate", ["30", "29.97"])
def test_seek_equals_sequential(clips, rate):
    with VideoReader(clips[rate]) as r:
        seq = r.get_frames(np.arange(N))
    assert [decode_index(f) for f in seq] == list(range(N))
    sparse = [5, 61, 62, 150, 151, 233]
    with VideoReader(clips[rate], seek_gap=8) as r:  # forces a seek before each far frame
        got = r.get_frames(sparse)
    np.testing.assert_array_equal(got, seq[sparse])


def test_each_frame_decoded_once(clips, decoded_frames):
    with VideoReader(clips["30"]) as r:
        out = r.get_frames([8, 8, 8, 2, 8])
    assert [decode_index(f) for f in out] == [8, 8, 8, 2, 8]
    assert len(decoded_frames) == len(set(decoded_frames)) and max(decoded_frames) == 8


def test_missing_and_empty(tmp_path):
    with pytest.raises(VideoError, match="not found.*nope.mp4"):
        VideoReader(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4"):
        VideoReader(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoError, match="junk.mp4"):
        VideoReader(junk)


def test_truncated(clips, tmp_path):
    data = Path(clips["30"]).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # PyAV writes the index (moov) at the end: unreadable
    with pytest.raises(VideoError, match="cut.mp4"):
        VideoReader(cut).get_frames([0, 200])


def test_truncated_faststart(tmp_path):
    """Index at the front, media data cut: opening works, frames past the cut raise naming the frame."""
    import av

    src = write_test_video(tmp_path / "src.mp4", N, fps=30, gop=30)
    fs = tmp_path / "fs.mp4"
    with av.open(str(src)) as inp, av.open(str(fs), "w", options={"movflags": "faststart"}) as out:
        s_in = inp.streams.video[0]
        s_out = out.add_stream_from_template(s_in)
        for p in inp.demux(s_in):
            if p.dts is None:
                continue
            p.stream = s_out
            out.mux(p)
    data = fs.read_bytes()
    cut = tmp_path / "fs_cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.4)])
    r = VideoReader(cut)
    assert r.num_frames == N
    assert decode_index(r.get_frames([3])[0]) == 3
    with pytest.raises(VideoError, match=r"fs_cut.mp4") as e:
        r.get_frames([N - 1])
    assert str(N - 1) in str(e.value)


# ------------------------------------------------------------------------- torchcodec (the optional backend)
@pytest.fixture(scope="module")
def torchcodec_backend():
    """The torchcodec backend; skipped where it is not installed, except in CI (``CI`` set), where `make test`
    installs it (the test extra) and scripts/ci/install_ffmpeg.sh its FFmpeg libraries: there it must run."""
    import os

    from adatad.data.video import _torchcodec_decoder

    try:
        _torchcodec_decoder()
    except VideoError as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the torchcodec backend cannot run: {e}")
        pytest.skip(str(e))
    return "torchcodec"


@pytest.mark.parametrize("rate", list(RATES))
def test_torchcodec_same_frames_as_pyav(clips, rate, torchcodec_backend):
    with VideoReader(clips[rate]) as a, VideoReader(clips[rate], backend=torchcodec_backend, num_threads=1) as b:
        assert (b.num_frames, b.width, b.height) == (a.num_frames, a.width, a.height) == (N, 320, 180)
        assert b.fps == pytest.approx(a.fps, rel=1e-6) and b.duration == pytest.approx(a.duration, abs=1e-3)
        every = np.arange(N)
        np.testing.assert_array_equal(b.get_frames(every), a.get_frames(every))  # exact on CPU: the same FFmpeg decoder
        idx = [200, 3, 3, 0, 117, 239, 500, -7, 64]
        np.testing.assert_array_equal(b.get_frames(idx), a.get_frames(idx))
        assert [i for i, _ in b.iter_frames([9, 1, 1, 300])] == [1, 9, N - 1]


def test_torchcodec_errors_name_the_file(clips, tmp_path, torchcodec_backend):
    with pytest.raises(VideoError, match="not found"):
        VideoReader(tmp_path / "nope.mp4", backend=torchcodec_backend)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoError, match="junk.mp4"):
        VideoReader(junk, backend=torchcodec_backend)


@pytest.mark.parametrize("threads,seek_gap", [(1, 300), (0, 300), (2, 10)])
def test_skipped_unreferenced_frames_leave_needed_frames_exact(tmp_path, decoded_frames, threads, seek_gap):
    """Frames nobody asked for are decoded with skip_frame=NONREF (FFmpeg drops them when no other frame refers
    to them). Oracle: every frame of a plain PyAV decode without skipping; the frames served must be those,
    bit for bit, with frame threading too, and fewer frames than the video holds must have been decoded."""
    import av

    path = write_test_video(tmp_path / "b.mp4", 180, gop=48)  # bf=2: unreferenced B-frames
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_count = 1
        oracle = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        c.seek(0)
        kinds = [f.pict_type for f in c.decode(s)]
    assert kinds.count(av.video.frame.PictureType.B) > 40  # the stream does have B-frames to skip
    want = list(range(0, 180, 4)) + [7, 101, 179]
    with VideoReader(path, num_threads=threads, seek_gap=seek_gap) as r:
        got = r.get_frames(want)
        n_decoded = len(decoded_frames)
        # the same reader again: a run that stopped while skipping (mid-video) must not leave the decoder skipping
        mid = r.get_frames(np.arange(0, 100, 4))
        every = r.get_frames(np.arange(60))
    np.testing.assert_array_equal(mid, np.stack(oracle[0:100:4]))
    for f, i in zip(got, want):
        np.testing.assert_array_equal(f, oracle[i], err_msg=f"frame {i}")
    np.testing.assert_array_equal(every, np.stack(oracle[:60]))
    assert set(want) <= set(decoded_frames[:n_decoded]) and n_decoded < 150  # about a quarter of the frames skipped
