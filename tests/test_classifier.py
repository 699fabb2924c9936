"""External video classifiers (ActivityNet's CUHK / Standard fusion) and the whole-video post-processing.

Oracle: OpenTAD's own ``CUHKANETClassifier`` / ``StandardClassifier`` and ``SingleStageDetector.post_processing``
(class-agnostic soft-NMS with voting as the ActivityNet configs set it), run on random proposals by
``tests/fixtures/opentad/anet_classifier/make_fixture.py`` and stored in ``fixture.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adatad.errors import UserError
from adatad.models.classifier import ClassifierError, ExternalClassifier, build_classifier, whole_video_results
from adatad.models.postprocess import batched_nms

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "opentad" / "anet_classifier" / "fixture.json"


@pytest.fixture(scope="module")
def fx():
    return json.loads(FIXTURE.read_text())


def _classifier(fx, case, tmp_path) -> ExternalClassifier:
    c = fx["cases"][case]
    path = tmp_path / f"{c['classifier']}.json"
    path.write_text(json.dumps(fx["classifiers"][c["classifier"]]))
    return build_classifier({**c["config"], "path": str(path)})  # type: ignore[return-value]


@pytest.mark.parametrize("case", ["cuhk_top2", "cuhk_top3", "standard_top2", "standard_softmax_top2"])
def test_classifier_equals_opentad(fx, case, tmp_path):
    clf = _classifier(fx, case, tmp_path)
    for v in fx["videos"]:
        vid = v["meta"]["video_name"]
        ref = fx["cases"][case]["videos"][vid]["classifier_out"]
        segs = torch.tensor(v["segments"], dtype=torch.float32)
        scores = torch.tensor(v["scores"], dtype=torch.float32)
        s, lab, sc = clf(vid, segs, scores)
        assert s.tolist() == ref["segments"]
        assert [clf.classes[i] for i in lab.tolist()] == ref["labels"]
        assert sc.dtype == torch.float32 and sc.tolist() == ref["scores"]  # bit for bit


def test_class_agnostic_soft_nms_with_voting_equals_opentad(fx):
    nms = fx["nms"]
    assert nms["multiclass"] is False and nms["voting_thresh"] > 0  # what the ActivityNet configs set
    for v in fx["videos"]:
        ref = fx["cases"]["cuhk_top2"]["videos"][v["meta"]["video_name"]]["nms"]
        segs, scores, _ = batched_nms(
            torch.tensor(v["segments"], dtype=torch.float32),
            torch.tensor(v["scores"], dtype=torch.float32),
            torch.zeros(len(v["scores"])),
            **nms,
        )
        assert segs.shape[0] == len(ref["segments"])
        torch.testing.assert_close(segs, torch.tensor(ref["segments"]), rtol=0, atol=1e-4)
        torch.testing.assert_close(scores, torch.tensor(ref["scores"]), rtol=0, atol=1e-4)


@pytest.mark.parametrize("case", ["cuhk_top2", "standard_softmax_top2"])
def test_whole_video_results_equal_opentad(fx, case, tmp_path):
    clf = _classifier(fx, case, tmp_path)
    for v in fx["videos"]:
        vid = v["meta"]["video_name"]
        ref = fx["cases"][case]["videos"][vid]["results"]
        got = whole_video_results(
            torch.tensor(v["segments"]), torch.tensor(v["scores"]), torch.zeros(len(v["scores"])), v["meta"], fx["nms"], clf
        )
        # compared as multisets (OpenTAD's final sort is not stable under ties); here every rounded number is equal
        key = lambda r: (r["label"], r["segment"][0], r["segment"][1], r["score"])  # noqa: E731
        assert sorted(got, key=key) == sorted(ref, key=key)


def test_classifier_errors_name_the_file_and_the_video(tmp_path):
    good = {"results": {"abc": [0.2, 0.8], "v_def": [0.5, 0.5]}, "class": ["A", "B"]}
    f = tmp_path / "cuhk.json"
    f.write_text(json.dumps(good))
    clf = ExternalClassifier(f, topk=2)
    segs, scores = torch.tensor([[1.0, 2.0]]), torch.tensor([0.5])
    with pytest.raises(ClassifierError, match=r"cuhk\.json has no scores for video 'xyz'"):
        clf("xyz", segs, scores)
    with pytest.raises(ClassifierError, match=r"video 'def'.*has \"v_def\""):
        clf("def", segs, scores)
    with pytest.raises(ClassifierError, match=r"'nope1'.*2 of the 3 test videos are missing"):
        clf.check_videos(["abc", "nope1", "nope2"])
    clf.check_videos(["abc", "v_def"])
    assert issubclass(ClassifierError, UserError)
    cases = [
        (None, "does not exist"),
        ("{not json", "cannot be read as JSON"),
        (json.dumps({"class": ["A"]}), 'no "results"'),
        (json.dumps({"results": {}}), '"class"'),
    ]
    for text, msg in cases:
        p = tmp_path / "bad.json"
        p.unlink(missing_ok=True)
        if text is not None:
            p.write_text(text)
        with pytest.raises(ClassifierError, match=msg) as e:
            ExternalClassifier(p)
        assert "bad.json" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ClassifierError, match="topk=3"):
        ExternalClassifier(f, topk=3)
    f.write_text(json.dumps({"results": {"abc": [0.2]}, "class": ["A", "B"]}))
    with pytest.raises(ClassifierError, match="'abc' must have 2 finite scores"):
        ExternalClassifier(f)("abc", segs, scores)
    with pytest.raises(ClassifierError, match="type must be one of"):
        build_classifier({"type": "TCANetHACSClassifier", "path": str(f)})
