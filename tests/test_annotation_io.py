"""The shared readers of annotation-type files (adatad.annotation_io): class-map rule and JSON reading.

Oracle for the class map: OpenTAD's ``get_class_map`` reads ``open(path, "r", encoding="utf8").readlines()``
and strips only the ``"\\n"`` of each line (restated in ``_opentad_names``). Every file the reader accepts
must give OpenTAD's names at OpenTAD's indices (up to unnamed classes OpenTAD appends for blank lines at
the end of the file); the files OpenTAD would read into a nameless or space-padded class are rejected.
"""

from __future__ import annotations

import json
import math

import pytest

from adatad.annotation_io import AnnotationError, MissingFileError, load_class_map, read_json
from adatad.data.annotations import load_class_map as data_load_class_map
from adatad.evaluation import cli


def _opentad_names(path) -> list[str]:
    with open(path, encoding="utf8") as f:
        return [line.rstrip("\n") for line in f.readlines()]


def _write(tmp_path, data: bytes):
    p = tmp_path / "category_idx.txt"
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    "data, names",
    [
        (b"A\nB\n", ["A", "B"]),
        (b"A\nB", ["A", "B"]),  # no newline after the last name
        (b"A\nB\n\n\n", ["A", "B"]),  # blank lines at the end
        (b"A\nB\n \t\n", ["A", "B"]),  # whitespace-only line at the end
        (b"A\r\nB\r\n", ["A", "B"]),  # CRLF (Windows)
        (b"A\r\nB\r\n\r\n", ["A", "B"]),
        (b"A\rB\r", ["A", "B"]),  # old Mac line ends: universal newlines, as OpenTAD's open(..., "r")
        (b"Playing guitar\nLong jump\n", ["Playing guitar", "Long jump"]),  # spaces inside a name are kept
    ],
)
def test_class_map_accepted_files_give_opentads_names(tmp_path, data, names):
    p = _write(tmp_path, data)
    assert load_class_map(p) == names
    ref = _opentad_names(p)
    assert ref[: len(names)] == names and all(n.strip() == "" for n in ref[len(names) :])


@pytest.mark.parametrize(
    "data, match",
    [
        (b"A\n\nB\n", "line 2 is blank"),  # a blank line in the middle would renumber B if skipped
        (b"A\n  \nB\n", "line 2 is blank"),
        (b"A\r\n\r\nB\r\n", "line 2 is blank"),
        (b"A \nB\n", r"line 1 'A ' has leading or trailing whitespace"),  # OpenTAD keeps 'A ': no label matches
        (b"A\n\tB\n", r"line 2 '\\tB' has leading or trailing whitespace"),
        (b"A\nB\nA\n", r"duplicated class names \['A'\]"),
        (b"", "is empty"),
        (b"\n\n", "is empty"),
    ],
)
def test_class_map_rejected_files_name_the_line(tmp_path, data, match):
    p = _write(tmp_path, data)
    with pytest.raises(AnnotationError, match=match) as e:
        load_class_map(p)
    assert str(p) in str(e.value)


def test_class_map_one_reader_for_data_and_eval(tmp_path):
    # training (adatad.data) and `adatad eval` read the same file the same way: no more divergent rules
    assert data_load_class_map is load_class_map
    p = _write(tmp_path, b"A\n\nB\n")
    g = tmp_path / "gt.json"
    g.write_text(json.dumps({"database": {"v": {"subset": "validation", "annotations": [{"segment": [0, 1], "label": "A"}]}}}))
    pr = tmp_path / "pred.json"
    pr.write_text(json.dumps({"results": {"v": [{"segment": [0, 1], "label": 0, "score": 0.5}]}}))
    assert cli.main(["--gt", str(g), "--pred", str(pr), "--class-map", str(p)]) == 2


def test_class_map_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="class map not found") as e:
        load_class_map(tmp_path / "nope.txt")
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, AnnotationError)


def test_read_json_errors_name_the_file(tmp_path):
    p = tmp_path / "a.json"
    with pytest.raises(MissingFileError, match=r"annotation file not found: .*a\.json \(the file does not exist"):
        read_json(p, "annotation file")
    p.write_text('{"database": {"v": 1}')
    with pytest.raises(AnnotationError, match=r"annotation file .*a\.json is not valid JSON: .*line 1 column"):
        read_json(p, "annotation file", key="database")
    p.write_text('{"results": {}}')
    with pytest.raises(AnnotationError, match=r'a\.json has no "database" mapping at the top level'):
        read_json(p, "annotation file", key="database")
    assert read_json(p, "prediction file", key="results") == {"results": {}}


def test_read_json_reads_what_pythons_json_reads(tmp_path):
    # orjson refuses NaN / Infinity literals (json.dump writes them) and numbers that overflow a double;
    # such files are read as the standard library reads them, so that callers can name the bad entry
    p = tmp_path / "p.json"
    p.write_text('{"results": {"v": [{"segment": [0, Infinity], "score": NaN, "label": "A"}, {"segment": [1e400, 2], "score": 1}]}}')
    r = read_json(p, key="results")["results"]["v"]
    assert math.isnan(r[0]["score"]) and r[0]["segment"] == [0, math.inf] and r[1]["segment"] == [math.inf, 2]
