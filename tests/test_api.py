"""adatad as a library (``adatad.api``): ``Detector`` against ``adatad test``'s own path, two detectors in one
process, tensors, batching across videos, errors, the output formats (SRT / WebVTT parsed back, ``0.00`` never
``-0.0``), the annotated video (decoded back with PyAV), ``adatad infer`` on top, and the README's example."""

import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from tinyrun import ROOT, save_tiny_checkpoint, write_tiny_config
from videos import write_test_video

from adatad import Detections, Detector
from adatad.config import load_config
from adatad.data.video import VideoError, VideoReader
from adatad.engine.checkpoint import CheckpointError


@pytest.fixture(scope="module")
def ckpts(tiny_dataset, tmp_path_factory):
    """Two tiny checkpoints with different weights and different class sets (5 classes; 2 classes)."""
    root = tmp_path_factory.mktemp("api")
    cfg_path = write_tiny_config(root / "tiny.py", tiny_dataset)
    a = save_tiny_checkpoint(root / "a.pth", cfg_path, seed=0)
    b = save_tiny_checkpoint(root / "b.pth", cfg_path, seed=1, class_names=["Jump", "Sit"], cfg_options=["model.head.num_classes=2"])
    videos = sorted(Path(tiny_dataset["video_dir"]).glob("synth_*.mp4"))
    return dict(root=root, cfg=cfg_path, a=a, b=b, videos=videos)


def _same(x: Detections, y: Detections) -> None:
    assert x.video == y.video and x.info == y.info and x.records() == y.records()


def test_detector_gives_what_adatad_test_gives(ckpts, tmp_path):
    """The oracle is `adatad test`'s own path (dataset, loader, merge_windows): the same detections, except that
    the predictions file keeps OpenTAD's -0.0 and the Detector prints 0.0."""
    from adatad.engine.runner import run_testing

    cfg = load_config(ckpts["cfg"])
    res = run_testing(cfg, ckpts["a"], tmp_path / "test", device="cpu", not_eval=True)
    assert res is not None
    text = Path(res["predictions"]).read_text()
    preds = json.loads(text)["results"]
    det = Detector.from_checkpoint(ckpts["a"], device="cpu", score_threshold=0)
    assert det.class_names == ["MoveRight", "MoveLeft", "Grow", "Shrink", "Blink"]  # saved in the checkpoint
    negative_zero_seen = "-0.0" in text
    for video, records in preds.items():
        dets = det(Path(cfg["dataset"]["data_path"]) / f"{video}.mp4")
        assert dets.video == video and len(dets) == len(records) > 0
        assert dets.records() == records  # -0.0 == 0.0 as numbers
        out = dets.to_json() + dets.to_csv() + dets.to_srt() + dets.to_vtt()
        assert "-0.0" not in out and "-0:" not in out
    assert negative_zero_seen  # the file did have OpenTAD's -0.0 (segments clamped at the start): the check bites


def test_two_detectors_in_one_process_give_what_each_gives_alone(ckpts):
    vids = ckpts["videos"][:3]
    alone_a = [Detector.from_checkpoint(ckpts["a"], device="cpu", score_threshold=0)(v) for v in vids]
    alone_b = [Detector.from_checkpoint(ckpts["b"], device="cpu", score_threshold=0)(v) for v in vids]
    assert {lab for d in alone_b for lab in d.labels} <= {"Jump", "Sit"} and alone_b[0].records() != alone_a[0].records()
    rng = torch.get_rng_state()
    a = Detector.from_checkpoint(ckpts["a"], device="cpu", score_threshold=0)
    b = Detector.from_checkpoint(ckpts["b"], device="cpu", score_threshold=0)
    assert torch.equal(torch.get_rng_state(), rng)  # loading leaves the process's RNG alone
    stream_a = a.run(vids, batch_windows=1, progress=False)  # a generator left open while b works
    for i, v in enumerate(vids):
        _same(b(v), alone_b[i])
        _same(next(stream_a), alone_a[i])
        _same(a(v), alone_a[i])
    assert next(stream_a, None) is None


def test_run_batches_windows_across_videos(ckpts):
    det = Detector.from_checkpoint(ckpts["a"], device="cpu", score_threshold=0)
    one_by_one = [det(v) for v in ckpts["videos"]]
    sizes: list[int] = []
    hook = det.model.register_forward_pre_hook(lambda _m, args: sizes.append(int(args[0].shape[0])))
    batched = list(det.run(ckpts["videos"], batch_windows=3, progress=False))
    hook.remove()
    total = sum(d.info["num_windows"] for d in one_by_one)
    assert max(d.info["num_windows"] for d in one_by_one) < 3  # so full batches must mix videos
    assert sum(sizes) == total and sizes[:-1] == [3] * (len(sizes) - 1)
    assert [d.video for d in batched] == [v.stem for v in ckpts["videos"]]
    for x, y in zip(batched, one_by_one):
        assert x.video == y.video and x.labels == y.labels
        assert np.allclose(x.segments, y.segments, atol=0.011) and np.allclose(x.scores, y.scores, atol=2e-4)


def test_tensor_input_gives_the_file_result(ckpts):
    det = Detector.from_checkpoint(ckpts["a"], device="cpu", score_threshold=0)
    video = ckpts["videos"][0]
    with VideoReader(video) as r:
        frames, fps = torch.from_numpy(r.get_frames(np.arange(r.num_frames))), r.fps
    from_file, from_tensor = det(video), det(frames, fps=fps, name=video.stem)
    assert from_tensor.source is None and from_file.source == str(video)
    _same(from_tensor, from_file)
    with pytest.raises(ValueError, match="fps"):
        det(frames)
    with pytest.raises(ValueError, match="uint8"):
        det(frames.float(), fps=fps)


def test_a_broken_video_is_skipped_with_on_error_and_raises_without(ckpts, tmp_path):
    det = Detector.from_checkpoint(ckpts["a"], device="cpu")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    seen = []
    out = list(det.run([ckpts["videos"][0], broken, ckpts["videos"][1]], progress=False, on_error=lambda v, e: seen.append(v)))
    assert [d.video for d in out] == [ckpts["videos"][0].stem, ckpts["videos"][1].stem] and seen == [broken]
    with pytest.raises(VideoError):
        det(broken)


def test_config_sources(ckpts, tmp_path):
    """The saved config, the config file and a dict give one detector; an OpenTAD checkpoint without a config is
    refused naming the file; an OpenTAD config file is converted."""
    saved = Detector.from_checkpoint(ckpts["a"], device="cpu", score_threshold=0)
    from_file = Detector.from_checkpoint(ckpts["a"], ckpts["cfg"], device="cpu", score_threshold=0)
    from_dict = Detector.from_checkpoint(ckpts["a"], torch.load(ckpts["a"], weights_only=True)["config"], device="cpu", score_threshold=0)
    video = ckpts["videos"][0]
    _same(from_file(video), saved(video))
    _same(from_dict(video), saved(video))
    bare = tmp_path / "opentad_epoch_1.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in saved.model.state_dict().items()}}, bare)
    with pytest.raises(CheckpointError, match=r"opentad_epoch_1\.pth has no saved config"):
        Detector.from_checkpoint(bare, device="cpu")
    named = Detector.from_checkpoint(bare, ckpts["cfg"], device="cpu", score_threshold=0)  # class names: the config's map
    _same(named(video), saved(video))

    from test_recipes import RECIPES, opentad_config_from_recipe

    from adatad.api import detector_config
    from adatad.compat.convert_config import convert_file

    name = "e2e_thumos_videomae_s_768x1_160_adapter"
    opentad = tmp_path / "opentad_cfg.py"
    opentad.write_text("".join(f"{k} = {v!r}\n" for k, v in opentad_config_from_recipe(RECIPES[name]).items()))
    convert_file(opentad, tmp_path / "converted.py")
    strip = lambda c: {k: v for k, v in c.items() if k != "_meta"}  # noqa: E731
    assert strip(detector_config(opentad)) == strip(load_config(tmp_path / "converted.py"))


# ---------------------------------------------------------------------------------------------------- formats
_SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n(\S+) (\d\.\d\d)\n")
_VTT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)\n(\S+) (\d\.\d\d)\n")


def _parse(text: str, cue: re.Pattern, header: str = "") -> list[tuple[float, float, str, str]]:
    """A strict reader: the whole text must be the header then cues separated by one blank line, numbered 1..N."""
    assert text.startswith(header)
    blocks = text[len(header) :].split("\n\n") if text[len(header) :] else []
    out = []
    for i, block in enumerate(blocks, 1):
        block = block if block.endswith("\n") else block + "\n"
        m = cue.fullmatch(block)
        assert m, repr(block)
        n, h1, m1, s1, ms1, h2, m2, s2, ms2, label, score = m.groups()
        assert int(n) == i
        t = lambda h, m_, s, ms: int(h) * 3600 + int(m_) * 60 + int(s) + int(ms) / 1000  # noqa: E731
        out.append((t(h1, m1, s1, ms1), t(h2, m2, s2, ms2), label, score))
    return out


def test_subtitles_parse_back_to_the_detections(tmp_path):
    records = [
        {"segment": [3725.04, 3730.5], "label": "Grow", "score": 0.5},
        {"segment": [-0.0, 1.25], "label": "Blink", "score": 0.875},
        {"segment": [12.3, 14.0], "label": "MoveLeft", "score": 0.0},
        {"segment": [1.0, 61.99], "label": "Blink", "score": 0.12345},
    ]
    dets = Detections.from_records("v", records)
    want = [(0.0, 1.25, "Blink", "0.88"), (1.0, 61.99, "Blink", "0.12"), (12.3, 14.0, "MoveLeft", "0.00")]
    want.append((3725.04, 3730.5, "Grow", "0.50"))
    srt = dets.to_srt(tmp_path / "v.srt")
    assert (tmp_path / "v.srt").read_text() == srt and "01:02:05,040 --> 01:02:10,500" in srt
    vtt = dets.to_vtt(tmp_path / "v.vtt")
    assert "01:02:05.040 --> 01:02:10.500" in vtt
    for got in (_parse(srt, _SRT_CUE), _parse(vtt, _VTT_CUE, "WEBVTT\n\n")):
        assert [(a, b, lab, sc) for a, b, lab, sc in got] == [(pytest.approx(a), pytest.approx(b), lab, sc) for a, b, lab, sc in want]
    assert _parse(Detections.from_records("e", []).to_srt(), _SRT_CUE) == []
    csv_text = dets.to_csv()
    assert csv_text.splitlines()[2] == "0.00,1.25,Blink,0.8750" and "-0" not in csv_text + dets.to_json()
    assert json.loads(dets.to_json(tmp_path / "v.json"))["detections"][1]["segment"] == [0.0, 1.25]
    assert len(dets.above(0.4)) == 2 and [r["label"] for r in dets.active_at(1.1)] == ["Blink", "Blink"]


def _decode(path) -> tuple[Fraction, list[np.ndarray]]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return Fraction(s.average_rate), [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(s)]


def test_annotated_video_draws_the_active_detections(tmp_path):
    src = write_test_video(tmp_path / "src.mp4", num_frames=50, fps=Fraction(25), width=320, height=180)
    dets = Detections.from_records("src", [{"segment": [0.8, 1.2], "label": "Grow", "score": 0.9}], source=str(src))
    n = dets.annotate_video(tmp_path / "out.mp4")
    fps_in, frames_in = _decode(src)
    fps_out, frames_out = _decode(tmp_path / "out.mp4")
    assert fps_out == fps_in == 25 and n == len(frames_out) == len(frames_in) == 50
    diff = [float(np.abs(a - b).mean()) for a, b in zip(frames_in, frames_out)]
    inside = [i for i in range(50) if 0.8 <= i / 25 < 1.2]  # frames 20..29
    assert inside == list(range(20, 30))
    assert min(diff[i] for i in inside) > 3.0, diff  # border + label drawn
    assert max(d for i, d in enumerate(diff) if i not in inside) < 1.5, diff  # re-encoding noise only
    with pytest.raises(ValueError, match="tensor"):
        Detections.from_records("t", []).annotate_video(tmp_path / "x.mp4")


# ---------------------------------------------------------------------------------------------- adatad infer
def test_infer_without_config_writes_subtitles_and_annotated_video(ckpts, tmp_path):
    from adatad.commands.infer import main

    video = ckpts["videos"][0]
    out = tmp_path / "out"
    argv = [str(video), "--checkpoint", str(ckpts["a"]), "--out", str(out), "--device", "cpu", "--score-threshold", "0.01"]
    assert main([*argv, "--srt", "--vtt", "--annotated-video"]) == 0
    want = Detector.from_checkpoint(ckpts["a"], device="cpu", score_threshold=0.01)(video)
    record = json.loads((out / f"{video.stem}.json").read_text())
    assert record["detections"] == want.records() and record["num_frames"] == want.info["num_frames"]
    assert "saved config" in record["config"] and "-0.0" not in (out / f"{video.stem}.json").read_text()
    assert (out / f"{video.stem}.csv").read_text() == want.to_csv()
    srt = _parse((out / f"{video.stem}.srt").read_text(), _SRT_CUE)
    vtt = _parse((out / f"{video.stem}.vtt").read_text(), _VTT_CUE, "WEBVTT\n\n")
    by_start = sorted(want.records(), key=lambda r: (r["segment"][0], r["segment"][1], -r["score"], r["label"]))
    assert len(srt) == len(vtt) == len(want) > 0
    for (a, b, lab, _), (c, d, lab2, _), r in zip(srt, vtt, by_start):
        assert (a, b, lab) == (c, d, lab2) == (pytest.approx(r["segment"][0]), pytest.approx(r["segment"][1]), r["label"])
    with VideoReader(out / f"{video.stem}_annotated.mp4") as ann, VideoReader(video) as orig:
        assert ann.num_frames == orig.num_frames and ann.fps == pytest.approx(orig.fps)
    from adatad.errors import UserError

    with pytest.raises(UserError, match="one output file for 2 videos"):
        main([str(ckpts["videos"][1]), *argv, "--annotated-video", str(tmp_path / "one.mp4")])


# ---------------------------------------------------------------------------------------------------- README
def test_readme_use_from_python_example_runs(ckpts, tmp_path, capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Use from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "README: no python block under 'Use from Python'"
    assert len(code.group(1).strip().splitlines()) <= 12
    videos = [str(v) for v in ckpts["videos"][:2]]
    namespace = {"CKPT": str(ckpts["a"]), "VIDEO": videos[0], "VIDEOS": videos, "OUT": tmp_path}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # noqa: S102
    assert isinstance(namespace["srt"], str)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(f"{v.stem}.json" for v in ckpts["videos"][:2])


def test_each_frame_is_decoded_once(ckpts, tmp_path, decoded_frames):
    """Overlapping windows of a video come from one forward decode (adatad.data.stream): no frame twice."""
    video = write_test_video(tmp_path / "long.mp4", num_frames=1200, width=32, height=32)
    decoded_frames.clear()
    det = Detector.from_checkpoint(ckpts["a"], device="cpu")
    dets = det(video)
    assert dets.info["num_windows"] >= 2, dets.info  # the windows overlap, so window by window decodes frames twice
    assert len(decoded_frames) == len(set(decoded_frames))  # each once, up to the last snippet's frame
    # every snippet frame, and the frames others refer to; unreferenced B-frames are skipped
    grid = range(0, dets.info["num_frames"] - 8, det.snippet_stride // det.scale_factor)
    assert set(grid) <= set(decoded_frames) and len(decoded_frames) <= dets.info["num_frames"]


def _test_predictions(cfg_path: Path, ckpt: Path, overrides: list[str], work: Path) -> dict:
    """`adatad test`'s own path (dataset, loader, merge) on the checkpoint: {video: records}."""
    from adatad.engine.runner import run_testing

    res = run_testing(load_config(cfg_path, overrides), ckpt, work, device="cpu", not_eval=True)
    assert res is not None
    return json.loads(Path(res["predictions"]).read_text())["results"]


def test_detector_with_scale_factor_gives_what_adatad_test_gives(ckpts, tmp_path):
    """dataset.scale_factor=2: each window reads window x 2 frames on the finer grid (every snippet_stride / 2
    frames), as SlidingWindowDataset does; the model refuses any other number of frames, so a Detector that read the
    snippet grid would fail here."""
    opts = ["dataset.scale_factor=2"]
    ckpt = save_tiny_checkpoint(tmp_path / "s2.pth", ckpts["cfg"], seed=2, cfg_options=opts)
    preds = _test_predictions(ckpts["cfg"], ckpt, opts, tmp_path / "test")
    det = Detector.from_checkpoint(ckpt, device="cpu", score_threshold=0, batch_windows=2)
    assert det.scale_factor == 2 and det.model.scale_factor == 2
    paths = [Path(ckpts["videos"][0]).parent / f"{video}.mp4" for video in preds]
    for dets, (video, records) in zip(det.run(paths, progress=False), preds.items()):  # the test's batches (2 windows)
        assert dets.video == video and dets.info["num_windows"] >= 1
        assert len(dets) == len(records) > 0 and dets.records() == records


@pytest.fixture(scope="module")
def anet_ckpt(tmp_path_factory):
    """A random-weight whole-video (resize, scale_factor 2) class-agnostic checkpoint of configs/demo/anet_demo.py on
    a tiny ActivityNet-like set (v_<id>.mp4 videos, a CUHK-layout classifier file)."""
    from adatad.commands.demo import data_overrides
    from adatad.config import packaged_config
    from adatad.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("api_anet")
    data = generate_dataset(root / "data", 2, 3, (6.0, 12.0), 15.0, (32, 32), seed=1, layout="anet", progress=False)
    cfg_path = root / "anet.py"
    cfg_path.write_text(f'_base_ = ["{packaged_config("demo/anet_demo.py")}"]\n')
    opts = data_overrides(Path(data["root"]), anet=True) + ["solver.test.num_workers=0"]
    ckpt = save_tiny_checkpoint(root / "anet.pth", cfg_path, seed=3, cfg_options=opts)
    return dict(root=root, data=data, cfg=cfg_path, opts=opts, ckpt=ckpt)


def test_detector_on_a_resize_model_gives_what_adatad_test_gives(anet_ckpt, tmp_path):
    """Whole-video model: the video resized to 32 x 2 frames, one forward, OpenTAD's non-sliding post-processing and
    the CUHK classifier fusion (labels and scores from the classifier file, looked up by the id without "v_")."""
    a = anet_ckpt
    preds = _test_predictions(a["cfg"], a["ckpt"], a["opts"], tmp_path / "test")
    det = Detector.from_checkpoint(a["ckpt"], device="cpu", score_threshold=0)
    assert det.resize and det.classifier is not None and det.class_names == det.classifier.classes
    assert det.model.num_classes == 1
    paths = [Path(a["data"]["video_dir"]) / f"v_{video}.mp4" for video in preds]
    for dets, (video, records) in zip(det.run(paths, batch_windows=4, progress=False), preds.items()):
        assert dets.video == video and dets.info["num_windows"] == 1  # one batch of 3 videos, as the test loader's
        assert len(dets) == len(records) > 0 and dets.records() == records
        top2 = {det.classifier.classes[int(i)] for i in det.classifier.ranked(video)[0]}
        assert set(dets.labels) == top2  # every proposal copied to the video's two best classes
    with VideoReader(paths[-1]) as r:  # an unknown video (a tensor named otherwise): the classifier has no scores for it
        frames, fps = r.get_frames(np.arange(r.num_frames)), r.fps
    from adatad.models.classifier import ClassifierError

    with pytest.raises(ClassifierError, match=r"cuhk_val_simp_7\.json has no scores for video .street.*own class head"):
        det(frames, fps=fps, name="street")
    same = det(frames, fps=fps, name=f"v_{video}")  # the last video again, from memory, alone in its batch
    assert same.video == video and same.labels == dets.labels
    assert np.allclose(same.segments, dets.segments, atol=0.011) and np.allclose(same.scores, dets.scores, atol=2e-4)


def test_detector_on_a_resize_model_without_classifier(anet_ckpt, tmp_path):
    """A whole-video model that names its own classes (OpenTAD's `_cls` variant: 5-class head, no classifier) runs on
    any video; a class-agnostic one without a classifier is refused with a message saying what to set."""
    from adatad.errors import UserError

    a = anet_ckpt
    opts = a["opts"] + ["dataset.class_agnostic=False", "model.head.num_classes=5", "post_processing.external_cls=None"]
    ckpt = save_tiny_checkpoint(tmp_path / "cls.pth", a["cfg"], seed=4, cfg_options=opts)
    preds = _test_predictions(a["cfg"], ckpt, opts, tmp_path / "test")
    det = Detector.from_checkpoint(ckpt, device="cpu", score_threshold=0)
    assert det.classifier is None and det.class_names == ["MoveRight", "MoveLeft", "Grow", "Shrink", "Blink"]
    paths = [Path(a["data"]["video_dir"]) / f"v_{video}.mp4" for video in preds]
    for dets, (video, records) in zip(det.run(paths, batch_windows=4, progress=False), preds.items()):  # the test's batch
        assert dets.video == video and len(dets) == len(records) > 0 and dets.records() == records
    with pytest.raises(UserError, match="class-agnostic.*post_processing.external_cls"):
        Detector.from_checkpoint(a["ckpt"], device="cpu", cfg_options=["post_processing.external_cls=None"])
