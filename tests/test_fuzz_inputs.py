"""Seeded fuzz of every loader that reads a file a user (or another tool) hands to adatad.

Rule under test: a bad input file never gives a traceback or a hang. Each loader fails with exit status 1 or 2
and ONE line on stderr, ``adatad: ...``, naming the file (and the key / line / value at fault where that helps);
an input that is still valid after the mutation loads (exit status 0). ``prepare custom`` is the one exception
by design: a file that parses but has bad rows gets its per-row report (every line names the file and row).

Entry points that read a user file (inventory: a grep of ``adatad/`` for open / read_text / read_bytes / json /
csv / torch.load / compile), each with the loader name(s) of this module that fuzz it:

- ``annotation_io.read_file_bytes/read_text_file/parse_json_bytes/read_json/read_annotation_json``: the shared
  readers under everything below.
- ``annotation_io.load_class_map``: ``category_idx.txt`` of a config (train, test, ``evaluate``), and the
  ``--class-map`` of ``eval``, ``report``, ``infer``, ``prepare check`` -> ``classmap``.
- ``data/annotations.load_annotations``: OpenTAD annotation JSON (train, test, ``prepare check``) -> ``annotations``;
  its ``block_list`` file -> ``block_list``.
- ``data/annotations._read_csv_split/_read_video_info_csv``: ``prepare thumos --csv-dir`` -> ``thumos_csv``,
  ``thumos_info``; ``_read_txt_split``: ``prepare thumos --anno-dir`` -> ``thumos_txt``.
- ``data/prepare._cmd_check``: ``prepare check --ann`` (read_annotation_json + load_annotations) -> subprocess test.
- ``data/custom.read_annotations``: ``prepare custom`` CSV / JSON -> ``custom_csv``, ``custom_json``.
- ``evaluation/cli`` + ``detection_map.load_ground_truth/load_predictions/read_blocked_videos``: ``adatad eval``
  -> ``eval_gt``, ``eval_pred``, ``eval_blocked`` (and ``classmap``).
- ``commands/report`` (+ ``report/build``): ``adatad report`` predictions and annotations -> ``report_pred``,
  ``report_gt``.
- ``commands/infer``: ``--gt`` (read_annotation_json) and the class map (load_class_map): the shared readers above.
- ``config.load_config``: Python config files with their ``_base_`` chain -> ``config``; ``--cfg-options`` ->
  ``test_fuzz_cfg_options``.
- ``compat/convert_config.load_opentad_config``: OpenTAD config (``convert-config``) -> ``convert_config``.
- ``engine/checkpoint.load_checkpoint/load_detector_checkpoint``: adatad / OpenTAD detector checkpoints (``test``,
  ``infer``, ``--resume``) -> ``detector_ckpt``.
- ``models/weights.load_pretrained_backbone``: VideoMAE / mmaction2 / OpenTAD backbone weights -> ``backbone_ckpt``;
  a Hugging Face folder's ``config.json`` -> ``hf_config``.

Rules decided here (also in the README's Faults table):

- JSON: UTF-8, with or without a byte-order mark; UTF-16/32 (with BOM) too, as Python's ``json`` detects them.
  ``NaN``/``Infinity`` literals parse, and the loader then names the entry whose value must be finite.
- Duplicate keys in an annotation file are refused naming the key (the second copy would silently replace the
  first); in a predictions file the last copy wins, as with ``json.load`` (OpenTAD), so that 30 MB files keep
  orjson's speed.
- A class map with a UTF-8 byte-order mark is refused (OpenTAD keeps it as part of the first class name, which
  then matches no label); any other non-UTF-8 byte too.
- Python config files are read as Python reads source files (a BOM or an encoding declaration is fine); a
  config that raises while it runs (NameError, ImportError, ...) fails naming the file and line. A config is
  code: one that loops forever is not guarded against.
- Checkpoints: anything ``torch.load(weights_only=True)`` refuses, a truncated zip, a damaged adatad checkpoint
  (its SHA-256 record), a non-dict object, and tensors under unexpected keys all fail naming the file (a few
  flipped bytes in a file without the record, e.g. OpenTAD's, may still load: "either").
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_custom import GOOD as CUSTOM_ROWS
from test_custom import videos  # noqa: F401 - the module-scoped fixture of synthetic videos
from tinyrun import ROOT

from adatad.cli import main as cli_main
from adatad.cli import run_guarded
from adatad.data.annotations import thumos14_csv_dir

SEED = 20241124
HANG_S = 20  # a case that takes longer hangs (each takes well under a second)

# --------------------------------------------------------------------------------------------- valid inputs
GT = {
    "database": {
        "vid_a": {
            "subset": "validation",
            "duration": 10.0,
            "frame": 300,
            "annotations": [{"segment": [1.0, 3.0], "label": "Jump"}, {"segment": [5.0, 6.5], "label": "Run"}],
        },
        "vid_b": {"subset": "validation", "duration": 8.0, "frame": 240, "annotations": [{"segment": [0.5, 2.0], "label": "Run"}]},
        "vid_c": {"subset": "training", "duration": 9.0, "frame": 270, "annotations": [{"segment": [2.0, 4.0], "label": "Jump"}]},
    }
}
PRED = {
    "results": {
        "vid_a": [{"segment": [1.1, 3.0], "label": "Jump", "score": 0.9}, {"segment": [5.0, 6.0], "label": 1, "score": 0.4}],
        "vid_b": [{"segment": [0.4, 2.2], "label": "Run", "score": 0.8}],
    }
}
CLASSES = "Jump\nRun\n"


def _json(obj) -> bytes:
    return json.dumps(obj, indent=1).encode()


def _tiny_backbone():
    from adatad.models.videomae import VideoMAEBackbone

    return VideoMAEBackbone(depth=1, embed_dims=32, num_heads=2, adapter_index=[0], with_cp=False, out_len=None)


def _tiny_detector_stand_in():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 2))


@dataclass
class Loader:
    """One entry point: ``files(tmp)`` writes the valid inputs and returns them by role; ``target`` is the role
    that is mutated; ``run(files, tmp)`` calls the entry point in-process and returns the exit status."""

    name: str
    kind: str  # json | text | csv | python | torch
    files: Callable[[Path], dict[str, Path]]
    target: str
    run: Callable[[dict[str, Path], Path], int]
    also_named: tuple[str, ...] = ()  # other names a message may give instead of the file's (e.g. its folder)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _guarded(fn: Callable[[], object]) -> int:
    """The CLI's guard around a library call (the way each command reaches it)."""

    def call() -> int:
        fn()
        return 0

    return run_guarded(call)


def _eval_files(tmp: Path) -> dict[str, Path]:
    return {
        "gt": _write(tmp / "gt.json", _json(GT)),
        "pred": _write(tmp / "pred.json", _json(PRED)),
        "cmap": _write(tmp / "category_idx.txt", CLASSES.encode()),
        "blocked": _write(tmp / "blocked.json", b'["vid_x"]'),
    }


def _eval_run(f: dict[str, Path], tmp: Path) -> int:
    argv = ["eval", "--gt", str(f["gt"]), "--pred", str(f["pred"]), "--class-map", str(f["cmap"]), "--blocked", str(f["blocked"])]
    return cli_main(argv)


def _report_run(f: dict[str, Path], tmp: Path) -> int:
    return cli_main(
        ["report", "--pred", str(f["pred"]), "--gt", str(f["gt"]), "--class-map", str(f["cmap"]), "--out", str(tmp / "out" / "r.html")]
    )


def _annotations_run(f: dict[str, Path], tmp: Path) -> int:
    from adatad.data.annotations import load_annotations

    return _guarded(lambda: load_annotations(f["gt"], f["cmap"], "validation", block_list=f["blocked_txt"]))


def _annotations_files(tmp: Path) -> dict[str, Path]:
    return {**_eval_files(tmp), "blocked_txt": _write(tmp / "blocked.txt", b"vid_x\n")}


def _thumos_files(tmp: Path) -> dict[str, Path]:
    """A small copy of the shipped THUMOS-14 CSVs (the first videos of each split) for ``prepare thumos --csv-dir``."""
    src = thumos14_csv_dir()
    out = {}
    for split in ("val", "test"):
        ann = (src / f"{split}_Annotation_ours.csv").read_text().splitlines()
        keep = list(dict.fromkeys(line.split(",")[0] for line in ann[1:]))[:3]
        rows = [ann[0]] + [line for line in ann[1:] if line.split(",")[0] in keep]
        info = (src / f"{split}_video_info.csv").read_text().splitlines()
        info = [info[0]] + [line for line in info[1:] if line.split(",")[0] in keep]
        out[f"{split}_ann"] = _write(tmp / "csv" / f"{split}_Annotation_ours.csv", ("\n".join(rows) + "\n").encode())
        out[f"{split}_info"] = _write(tmp / "csv" / f"{split}_video_info.csv", ("\n".join(info) + "\n").encode())
    return out


def _thumos_run(f: dict[str, Path], tmp: Path) -> int:
    return cli_main(["prepare", "thumos", "--csv-dir", str(f["val_ann"].parent), "--out", str(tmp / "out")])


INFO_HEADER = b"video,fps,sample_fps,count,sample_count\n"


def _thumos_txt_files(tmp: Path) -> dict[str, Path]:
    d = tmp / "txt"
    return {
        "jump_val": _write(d / "Jump_val.txt", b"vid_a 1.0 3.0\nvid_b 2.0 4.5\n"),
        "run_test": _write(d / "Run_test.txt", b"vid_c 0.5 2.0\n"),
        "val_info": _write(
            d / "val_video_info.csv", b"video,fps,sample_fps,count,sample_count\nvid_a,30.0,10,300,100\nvid_b,30.0,10,300,100\n"
        ),
        "test_info": _write(d / "test_video_info.csv", b"video,fps,sample_fps,count,sample_count\nvid_c,30.0,10,300,100\n"),
    }


def _thumos_txt_run(f: dict[str, Path], tmp: Path) -> int:
    return cli_main(["prepare", "thumos", "--anno-dir", str(f["jump_val"].parent), "--out", str(tmp / "out")])


def _custom_csv_files(tmp: Path) -> dict[str, Path]:
    return {"ann": _write(tmp / "ann.csv", ("video,start,end,label\n" + "\n".join(CUSTOM_ROWS) + "\n").encode())}


def _custom_json_files(tmp: Path) -> dict[str, Path]:
    db = {}
    for row in CUSTOM_ROWS:
        video, start, end, label = row.split(",")
        db[video] = {"annotations": [{"segment": [float(start), float(end)], "label": label}]}
    return {"ann": _write(tmp / "ann.json", _json({"database": db}))}


def _custom_run_with(videos_dir: Path) -> Callable[[dict[str, Path], Path], int]:
    def run(f: dict[str, Path], tmp: Path) -> int:
        return cli_main(["prepare", "custom", "--videos", str(videos_dir), "--annotations", str(f["ann"]), "--out", str(tmp / "out")])

    return run


CONFIG_TEXT = f"""\
_base_ = ["{ROOT / "configs/demo/demo_tiny.py"}"]
window_size = 64
dataset = dict(annotation_path="ann.json", class_map="category_idx.txt", data_path="videos", window_size=window_size)
solver = dict(train=dict(batch_size=2, num_workers=0))
scheduler = dict(warmup_epoch=1, max_epoch=4)
"""


def _config_run(f: dict[str, Path], tmp: Path) -> int:
    from adatad.config import load_config

    return _guarded(lambda: load_config(f["cfg"]))


def _convert_files(tmp: Path) -> dict[str, Path]:
    """A self-contained OpenTAD config: the seed's AdaTAD recipe as OpenTAD writes it (as tests/test_recipes.py builds it)."""
    from test_recipes import RECIPES, opentad_config_from_recipe

    cfg = opentad_config_from_recipe(RECIPES["e2e_thumos_videomae_s_768x1_160_adapter"])
    return {"cfg": _write(tmp / "opentad_cfg.py", "".join(f"{k} = {v!r}\n" for k, v in cfg.items()).encode())}


def _convert_run(f: dict[str, Path], tmp: Path) -> int:
    return cli_main(["convert-config", str(f["cfg"]), "--out", str(tmp / "converted.py")])


def _detector_ckpt_files(tmp: Path) -> dict[str, Path]:
    from adatad.engine.checkpoint import save_atomic

    sd = _tiny_detector_stand_in().state_dict()
    return {"ckpt": save_atomic({"state_dict": sd, "epoch": 3, "class_names": ["Jump", "Run"]}, tmp / "epoch_3.pth")}


def _detector_ckpt_run(f: dict[str, Path], tmp: Path) -> int:
    from adatad.engine.checkpoint import load_detector_checkpoint

    return _guarded(lambda: load_detector_checkpoint(_tiny_detector_stand_in(), f["ckpt"]))


def _backbone_files(tmp: Path) -> dict[str, Path]:
    import torch

    sd = {"backbone." + k: v for k, v in _tiny_backbone().state_dict().items() if ".adapter." not in k}
    path = tmp / "vit_my.pth"
    torch.save({"meta": {}, "state_dict": sd}, path)
    return {"ckpt": path}


def _backbone_run(f: dict[str, Path], tmp: Path) -> int:
    from adatad.models.weights import load_pretrained_backbone

    return _guarded(lambda: load_pretrained_backbone(_tiny_backbone(), f["ckpt"]))


def _hf_files(tmp: Path) -> dict[str, Path]:
    """A Hugging Face model folder: config.json + pytorch_model.bin (the folder is what the user passes)."""
    import torch

    d = tmp / "hf"
    d.mkdir()
    model = _tiny_backbone()
    cfg = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 16, "tubelet_size": 2, "hidden_act": "gelu"}
    sd = {"blocks.0." + k[len("blocks.0.") :]: v for k, v in model.state_dict().items() if ".adapter." not in k}
    torch.save(sd, d / "pytorch_model.bin")
    return {"config": _write(d / "config.json", _json(cfg))}


def _hf_run(f: dict[str, Path], tmp: Path) -> int:
    from adatad.models.weights import load_pretrained_backbone

    return _guarded(lambda: load_pretrained_backbone(_tiny_backbone(), f["config"].parent, allow_missing=True, allow_unused=True))


LOADERS: dict[str, Loader] = {
    loader.name: loader
    for loader in [
        Loader("eval_gt", "json", _eval_files, "gt", _eval_run),
        Loader("eval_pred", "json", _eval_files, "pred", _eval_run),
        Loader("eval_blocked", "json", _eval_files, "blocked", _eval_run),
        Loader("classmap", "text", _eval_files, "cmap", _eval_run),
        Loader("report_pred", "json", _eval_files, "pred", _report_run),
        Loader("report_gt", "json", _eval_files, "gt", _report_run),
        Loader("annotations", "json", _annotations_files, "gt", _annotations_run),
        Loader("block_list", "text", _annotations_files, "blocked_txt", _annotations_run),
        Loader("thumos_csv", "csv", _thumos_files, "test_ann", _thumos_run),
        Loader("thumos_info", "csv", _thumos_files, "val_info", _thumos_run),
        Loader("thumos_txt", "text", _thumos_txt_files, "jump_val", _thumos_txt_run, also_named=("txt",)),
        Loader("custom_csv", "csv", _custom_csv_files, "ann", None),  # type: ignore[arg-type] - set per test
        Loader("custom_json", "json", _custom_json_files, "ann", None),  # type: ignore[arg-type]
        Loader("config", "python", lambda tmp: {"cfg": _write(tmp / "cfg.py", CONFIG_TEXT.encode())}, "cfg", _config_run),
        Loader("convert_config", "python", _convert_files, "cfg", _convert_run),
        Loader("detector_ckpt", "torch", _detector_ckpt_files, "ckpt", _detector_ckpt_run),
        Loader("backbone_ckpt", "torch", _backbone_files, "ckpt", _backbone_run),
        Loader("hf_config", "json", _hf_files, "config", _hf_run),
    ]
}

# ---------------------------------------------------------------------------------------------- mutations
# A mutation maps the valid bytes (and the file's path) to new bytes, or None for "leave the path alone" after
# replacing it by something that is not a regular file. ``expect``: "error", "ok" or "either" (valid or not
# depending on where the seeded mutation lands; either way: no traceback, and an error is one clean line).

NAN, INF = float("nan"), float("inf")


@dataclass
class Mutation:
    name: str
    expect: str
    apply: Callable[[bytes, Path], bytes | None]


def _set_at(obj, path: tuple, value):
    if not path:
        return value
    head, *rest = path
    obj[head] = _set_at(obj[head], tuple(rest), value)
    return obj


def _paths(obj, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _replace_json(path: tuple, value) -> Callable[[bytes, Path], bytes]:
    def apply(raw: bytes, _p: Path) -> bytes:
        obj = json.loads(raw)
        return json.dumps(_set_at(obj, path, value)).encode()

    return apply


def _truncate(frac: float) -> Callable[[bytes, Path], bytes]:
    return lambda raw, _p: raw[: max(1, int(len(raw) * frac))] if frac < 1 else raw[:-1]


def _remove(_raw: bytes, p: Path) -> None:
    p.unlink()


def _make_dir(_raw: bytes, p: Path) -> None:
    p.unlink()
    p.mkdir()


def _latin1(raw: bytes, _p: Path) -> bytes:
    # an 'é' written by a latin-1 editor, inside the first name of the file (a single 0xE9 byte: not UTF-8)
    text = raw.decode()
    i = next(k for k, ch in enumerate(text) if ch.isalpha())
    return (text[: i + 1] + "é" + text[i + 1 :]).encode("latin-1")


def _random_bytes(n: int, seed: int) -> Callable[[bytes, Path], bytes]:
    return lambda _raw, _p: random.Random(seed).randbytes(n)


def _flip_bytes(seed: int) -> Callable[[bytes, Path], bytes]:
    def apply(raw: bytes, _p: Path) -> bytes:
        rng = random.Random(seed)
        b = bytearray(raw)
        for _ in range(8):
            b[rng.randrange(len(b) // 4, len(b))] ^= 0xFF
        return bytes(b)

    return apply


def _common_mutations(kind: str) -> list[Mutation]:
    trunc_expect = "error" if kind in ("json", "torch") else "either"
    muts = [Mutation(f"truncate_{f}", trunc_expect, _truncate(f)) for f in (0.1, 0.5, 0.9, 1.0)]
    muts += [
        Mutation("empty", "error", lambda _raw, _p: b""),
        Mutation("missing", "error", _remove),
        Mutation("directory", "error", _make_dir),
        Mutation("random_binary", "error", _random_bytes(4096, SEED)),
    ]
    if kind != "torch":
        muts += [
            Mutation("latin1", "error", _latin1),
            # JSON and Python accept UTF-8 with a BOM (as Python's json / interpreter do); a class map refuses it
            Mutation("utf8_bom", "ok" if kind in ("json", "python", "csv") else "either", lambda raw, _p: b"\xef\xbb\xbf" + raw),
            Mutation("utf16_bom", "ok" if kind == "json" else "error", lambda raw, _p: raw.decode().encode("utf-16")),
            Mutation("nul_bytes", "error", lambda raw, _p: raw[: len(raw) // 2] + b"\x00\x00" + raw[len(raw) // 2 :]),
        ]
    if kind == "json":
        muts += [
            Mutation("deeply_nested", "error", lambda _raw, _p: b"[" * 100_000 + b"]" * 100_000),
            Mutation("huge_integer_literal", "error", lambda raw, _p: b'{"x": ' + b"9" * 5000 + b"}"),
            Mutation("top_level_list", "error", lambda raw, _p: b"[" + raw + b"]"),
            Mutation("top_level_string", "error", lambda _raw, _p: b'"database"'),
            Mutation("top_level_null", "error", lambda _raw, _p: b"null"),
        ]
    if kind == "torch":
        muts += [Mutation("flipped_bytes", "either", _flip_bytes(SEED)), Mutation("json_as_checkpoint", "error", lambda _r, _p: _json(GT))]
    return muts


REPLACEMENTS = {
    "list": [],
    "dict": {},
    "string": "x",
    "null": None,
    "true": True,
    "huge_float": 1e308,
    "huge_int": 10**30,
    "nan": NAN,
    "inf": INF,
    "ninf": -INF,
}


def _dup_key(old: bytes, new: bytes) -> Callable[[bytes, Path], bytes]:
    """The first ``old`` (a ``"key": `` text) gets a copy of its own entry in front (same key twice)."""

    def apply(raw: bytes, _p: Path) -> bytes:
        obj = json.loads(raw)
        text = json.dumps(obj)
        assert old in text.encode()
        return text.encode().replace(old, new + b", " + old, 1)

    return apply


def _csv_cell(row: int, col: int, value: str) -> Callable[[bytes, Path], bytes]:
    def apply(raw: bytes, _p: Path) -> bytes:
        lines = raw.decode().splitlines()
        cells = lines[row].split(",")
        cells[col] = value
        lines[row] = ",".join(cells)
        return ("\n".join(lines) + "\n").encode()

    return apply


def _text_line(row: int, value: str) -> Callable[[bytes, Path], bytes]:
    def apply(raw: bytes, _p: Path) -> bytes:
        lines = raw.decode().splitlines()
        lines[row] = value
        return ("\n".join(lines) + "\n").encode()

    return apply


def _append(text: str) -> Callable[[bytes, Path], bytes]:
    return lambda raw, _p: raw + text.encode()


# targeted mutations with a decided outcome, per loader
TARGETED: dict[str, list[Mutation]] = {
    "report_gt": [
        Mutation("nan_start", "error", _replace_json(("database", "vid_a", "annotations", 0, "segment", 0), NAN)),
        Mutation("duplicate_video", "error", _dup_key(b'"vid_b": {', b'"vid_b": {"subset": "validation", "annotations": []}')),
    ],
    "eval_gt": [
        Mutation("nan_start", "error", _replace_json(("database", "vid_a", "annotations", 0, "segment", 0), NAN)),
        Mutation("inf_end", "error", _replace_json(("database", "vid_a", "annotations", 0, "segment", 1), INF)),
        Mutation("string_segment", "error", _replace_json(("database", "vid_a", "annotations", 0, "segment"), "1-3")),
        Mutation("int_label", "error", _replace_json(("database", "vid_a", "annotations", 0, "label"), 3)),
        Mutation("annotations_dict", "error", _replace_json(("database", "vid_a", "annotations"), {})),
        Mutation("database_list", "error", _replace_json(("database",), [])),
        Mutation("video_null", "error", _replace_json(("database", "vid_a"), None)),
        Mutation("subset_list", "error", _replace_json(("database", "vid_a", "subset"), ["validation"])),
        Mutation("duplicate_video", "error", _dup_key(b'"vid_b": {', b'"vid_b": {"subset": "validation", "annotations": []}')),
        Mutation("huge_end", "ok", _replace_json(("database", "vid_a", "annotations", 0, "segment", 1), 1e308)),
    ],
    "eval_pred": [
        Mutation("nan_score", "error", _replace_json(("results", "vid_a", 0, "score"), NAN)),
        Mutation("inf_segment", "error", _replace_json(("results", "vid_a", 0, "segment", 1), INF)),
        Mutation("string_score", "error", _replace_json(("results", "vid_a", 0, "score"), "0.9")),
        Mutation("null_label", "error", _replace_json(("results", "vid_a", 0, "label"), None)),
        Mutation("label_out_of_range", "error", _replace_json(("results", "vid_a", 0, "label"), 10**30)),
        Mutation("results_list", "error", _replace_json(("results",), [])),
        Mutation("entries_dict", "error", _replace_json(("results", "vid_a"), {})),
        Mutation("duplicate_video_last_wins", "ok", _dup_key(b'"vid_b": [', b'"vid_b": []')),
        Mutation("huge_score", "ok", _replace_json(("results", "vid_a", 0, "score"), 1e308)),
        Mutation("million_element_list", "error", _replace_json(("results", "vid_a"), [0] * 10**6)),
    ],
    "eval_blocked": [
        Mutation("non_string_names", "error", lambda _r, _p: b'["vid_a", 3]'),
        Mutation("dict_not_list", "error", lambda _r, _p: b'{"vid_a": 1}'),
        Mutation("names_as_lines", "ok", lambda _r, _p: b"vid_x\nvid_y\n"),
    ],
    "classmap": [
        Mutation("blank_line", "error", lambda _r, _p: b"Jump\n\nRun\n"),
        Mutation("duplicate_name", "error", lambda _r, _p: b"Jump\nJump\n"),
        Mutation("crlf", "ok", lambda _r, _p: b"Jump\r\nRun\r\n"),
        Mutation("utf8_bom_refused", "error", lambda raw, _p: b"\xef\xbb\xbf" + raw),
        Mutation("huge_line", "ok", lambda _r, _p: b"Jump\nRun\n" + b"x" * 10**6 + b"\n"),  # a long third name
        Mutation("control_character", "error", lambda _r, _p: b"Jump\nR\x1bun\n"),
    ],
    "annotations": [
        Mutation("nan_start", "error", _replace_json(("database", "vid_a", "annotations", 0, "segment", 0), NAN)),
        Mutation("ninf_end", "error", _replace_json(("database", "vid_a", "annotations", 0, "segment", 1), -INF)),
        Mutation("huge_end", "error", _replace_json(("database", "vid_a", "annotations", 0, "segment", 1), 1e308)),
        Mutation("nan_duration", "error", _replace_json(("database", "vid_a", "duration"), NAN)),
        Mutation("inf_frames", "error", _replace_json(("database", "vid_a", "frame"), INF)),
        Mutation("string_duration", "error", _replace_json(("database", "vid_a", "duration"), "10")),
        Mutation("segment_dict", "error", _replace_json(("database", "vid_a", "annotations", 0, "segment"), {"start": 1})),
        Mutation("label_list", "error", _replace_json(("database", "vid_a", "annotations", 0, "label"), ["Jump"])),
        Mutation("subset_dict", "error", _replace_json(("database", "vid_a", "subset"), {})),
        Mutation("duplicate_video", "error", _dup_key(b'"vid_b": {', b'"vid_b": {"subset": "validation", "annotations": []}')),
        Mutation("duplicate_field", "error", _dup_key(b'"duration": 8.0', b'"duration": 80.0')),
    ],
    "block_list": [Mutation("lines_with_spaces", "ok", lambda _r, _p: b"  vid_x  \n\n")],
    "thumos_csv": [
        Mutation("nan_start", "error", _csv_cell(1, 3, "nan")),
        Mutation("inf_end", "error", _csv_cell(1, 4, "inf")),
        Mutation("word_start", "error", _csv_cell(1, 3, "abc")),
        Mutation("huge_end", "either", _csv_cell(1, 4, "1e308")),
        Mutation("missing_column", "error", _text_line(0, "video,type,type_idx,begin,end,startFrame,endFrame")),
        Mutation("short_row", "error", _text_line(1, "video_test_0000004,CricketBowling")),
        Mutation("utf8_bom_header", "ok", lambda raw, _p: b"\xef\xbb\xbf" + raw),
    ],
    "thumos_info": [
        Mutation("nan_fps", "error", _csv_cell(1, 1, "nan")),
        Mutation("zero_fps", "error", _csv_cell(1, 1, "0")),
        Mutation("inf_count", "error", _csv_cell(1, 3, "inf")),
        Mutation("negative_count", "error", _csv_cell(1, 3, "-5")),
        Mutation("word_count", "error", _csv_cell(1, 3, "many")),
    ],
    "thumos_txt": [
        Mutation("nan_start", "error", _text_line(0, "vid_a nan 3.0")),
        Mutation("inf_end", "error", _text_line(0, "vid_a 1.0 inf")),
        Mutation("two_fields", "error", _text_line(0, "vid_a 1.0")),
    ],
    "custom_csv": [
        Mutation("nan_start", "report", _csv_cell(1, 1, "nan")),
        Mutation("inf_end", "report", _csv_cell(1, 2, "inf")),
        Mutation("word_start", "report", _csv_cell(1, 1, "abc")),
        Mutation("no_header", "error", lambda raw, _p: raw.split(b"\n", 1)[1]),
        Mutation("short_row", "report", _text_line(1, "clip_a,1.0")),
        Mutation("utf8_bom_header", "ok", lambda raw, _p: b"\xef\xbb\xbf" + raw),
    ],
    "custom_json": [
        Mutation("nan_start", "report", _replace_json(("database", "clip_a", "annotations", 0, "segment", 0), NAN)),
        Mutation("string_segment", "report", _replace_json(("database", "clip_a", "annotations", 0, "segment"), ["a", "b"])),
        Mutation("annotations_dict", "error", _replace_json(("database", "clip_a", "annotations"), {"x": 1})),
        Mutation("video_list", "error", _replace_json(("database", "clip_a"), [1, 2])),
        Mutation("annotation_null", "error", _replace_json(("database", "clip_a", "annotations", 0), None)),
        Mutation("duplicate_video", "error", _dup_key(b'"clip_b": {', b'"clip_b": {"annotations": []}')),
    ],
    "config": [
        Mutation("syntax_error", "error", _append("dataset = dict(\n")),
        Mutation("name_error", "error", _append("x = undefined_name\n")),
        Mutation("zero_division", "error", _append("x = 1 / 0\n")),
        Mutation("import_error", "error", _append("import no_such_module_adatad\n")),
        Mutation("base_int", "error", lambda raw, _p: raw.replace(b"_base_ = [", b"_base_ = 5 #[")),
        Mutation("base_none_item", "error", lambda raw, _p: raw.replace(b"_base_ = [", b"_base_ = [None, ")),
        Mutation("base_directory", "error", lambda raw, _p: raw.replace(b"_base_ = [", b'_base_ = [".", ')),
        Mutation("section_list", "error", _append("dataset = [1, 2]\n")),
        Mutation("string_for_int", "error", _append("solver = dict(train=dict(batch_size='2'))\n")),
        Mutation("nan_for_int", "error", _append("solver = dict(train=dict(batch_size=float('nan')))\n")),
        Mutation("huge_for_int", "error", _append("solver = dict(train=dict(batch_size=1e308))\n")),
        Mutation("unknown_key", "error", _append("solver = dict(trian=dict(batch_size=2))\n")),
        Mutation("encoding_cookie_latin1", "ok", lambda raw, _p: b"# -*- coding: latin-1 -*-\n" + raw + "x = 'é'\n".encode("latin-1")),
        Mutation("recursion", "error", _append("def f(n):\n    return f(n + 1)\nx = f(0)\n")),
    ],
    "convert_config": [
        Mutation("syntax_error", "error", _append("model = dict(\n")),
        Mutation("name_error", "error", _append("x = undefined_name\n")),
        Mutation("model_list", "error", _append("model = [1]\n")),
        Mutation("model_type_int", "error", _append("model = dict(type=3)\n")),
        Mutation("dataset_string", "error", _append("dataset = 'thumos'\n")),
        Mutation("solver_none", "error", _append("solver = None\n")),
        Mutation(
            "post_processing_nan",
            "error",
            _append("post_processing = dict(post_processing, nms=dict(post_processing['nms'], sigma=float('nan')))\n"),
        ),
        Mutation("window_string", "error", _append("dataset = dict(dataset, train=dict(dataset['train'], window_size='768'))\n")),
    ],
    "detector_ckpt": [],
    "backbone_ckpt": [],
    "hf_config": [
        Mutation("hidden_size_string", "error", _replace_json(("hidden_size",), "32")),
        Mutation("layers_null", "error", _replace_json(("num_hidden_layers",), None)),
    ],
}


def _torch_mutations(loader: str) -> list[Mutation]:
    """Checkpoints: objects torch.load(weights_only=True) refuses or that are not what the loader needs."""

    def save(obj_fn, **kw) -> Callable[[bytes, Path], bytes]:
        def apply(_raw: bytes, p: Path) -> bytes:
            import torch

            buf = io.BytesIO()
            torch.save(obj_fn(), buf, **kw)
            return buf.getvalue()

        return apply

    def evil():
        class Evil:
            def __reduce__(self):
                return (os.getpid, ())

        return {"state_dict": {}, "payload": Evil()}

    def tensors():
        import torch

        return {"weight": torch.zeros(2, 3)}

    muts = [
        Mutation("pickle_arbitrary_object", "error", save(evil)),
        Mutation("list_not_dict", "error", save(lambda: [1, 2, 3])),
        Mutation("none", "error", save(lambda: None)),
        Mutation("state_dict_of_strings", "error", save(lambda: {"state_dict": {"a": "b"}})),
        Mutation("legacy_format_garbage_tail", "error", lambda raw, _p: raw[:200] + b"\x80\x02}q\x00." + raw[200:400]),
        Mutation("plain_pickle_protocol_0", "error", lambda _r, _p: b"(dp0\nS'state_dict'\np1\n(dp2\ns."),
        Mutation("nan_tensor_wrong_keys", "error", save(lambda: {"state_dict": {"x": __import__("torch").full((2,), NAN)}})),
    ]
    if loader == "detector_ckpt":
        muts.append(Mutation("legacy_serialization", "error", save(tensors, _use_new_zipfile_serialization=False)))

        def bad_names():
            sd = _tiny_detector_stand_in().state_dict()
            return {"state_dict": sd, "class_names": 5}

        muts.append(Mutation("class_names_int", "error", save(bad_names)))
    return muts


# where a loader's rule differs from the kind's default (see the module docstring)
OVERRIDES: dict[tuple[str, str], str] = {
    ("eval_blocked", "empty"): "ok",  # an empty list of blocked videos
    ("eval_blocked", "utf16_bom"): "error",  # read as text (a JSON list or one name per line): UTF-8 only
    ("eval_blocked", "top_level_null"): "ok",  # one name per line: a video called "null"
    ("block_list", "empty"): "ok",
    ("thumos_txt", "empty"): "ok",  # a class without instances in that split
    ("config", "empty"): "ok",  # every setting at its default
    ("convert_config", "empty"): "either",
    ("classmap", "utf8_bom"): "error",
    # the last byte of a zip is in the checksum comment (adatad's record): without it the file is an unrecorded
    # checkpoint whose tensors are intact, and it loads
    ("detector_ckpt", "truncate_1.0"): "either",
}


def _cases() -> list[tuple[str, str]]:
    out = []
    for name, loader in LOADERS.items():
        muts = [m.name for m in _common_mutations(loader.kind)] + [m.name for m in TARGETED.get(name, [])]
        if loader.kind == "json":
            muts += [f"random_{i}" for i in range(N_RANDOM_JSON)]
        if loader.kind in ("csv", "text"):
            muts += [f"random_{i}" for i in range(N_RANDOM_TEXT)]
        if loader.kind == "torch":
            muts += [m.name for m in _torch_mutations(name)]
        out += [(name, m) for m in muts]
    return out


N_RANDOM_JSON = 12  # random (value, place) replacements per JSON loader, drawn from REPLACEMENTS x places
N_RANDOM_TEXT = 8  # random (value, cell or line) replacements per CSV / text loader, drawn from TEXT_VALUES x places
TEXT_VALUES = ["", "nan", "inf", "-Infinity", "1e308", "-1", "9" * 5000, "x y,z", '"unclosed', "\t", "é"]


def _mutation(loader: Loader, name: str, valid: bytes) -> Mutation:
    muts = _common_mutations(loader.kind) + TARGETED.get(loader.name, [])
    if loader.kind == "torch":
        muts += _torch_mutations(loader.name)
    for m in muts:
        if m.name == name:
            return Mutation(m.name, OVERRIDES.get((loader.name, name), m.expect), m.apply)
    k = int(name.split("_")[1])
    rng = random.Random(f"{SEED}-{loader.name}-{k}")
    if loader.kind in ("csv", "text"):
        lines = valid.decode().splitlines()
        row, value = rng.randrange(len(lines)), rng.choice(TEXT_VALUES)
        if loader.kind == "csv":
            col = rng.randrange(len(lines[row].split(",")))
            return Mutation(f"{value[:12]!r}_at_row{row}_col{col}", "either", _csv_cell(row, col, value))
        return Mutation(f"{value[:12]!r}_at_line{row}", "either", _text_line(row, value))
    paths = [p for p in _paths(json.loads(valid)) if p]
    label, value = rng.choice(list(REPLACEMENTS.items()))
    path = rng.choice(paths)
    return Mutation(f"{label}_at_{'.'.join(map(str, path))}", "either", _replace_json(path, value))


class Hang(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float, what: str):
    def on_alarm(signum, frame):
        raise Hang(f"{what} still running after {seconds} s: it hangs")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_outcome(
    rc: int, err: str, expect: str, file_name: str, what: str, others: tuple[str, ...] = (), report_ok: bool = False, n_also: int = 0
) -> str:
    """The rule; returns 'ok' or 'error' (what happened). ``others``: the case's other input files, which an
    "either" case may name instead (e.g. a truncated class map makes a prediction's class index out of range).
    ``report_ok``: ``prepare custom``'s per-row report is an accepted form of the error."""
    assert "Traceback" not in err, f"{what}: traceback\n{err}"
    if rc == 0:
        assert expect in ("ok", "either"), f"{what}: accepted, but it must fail\nstderr: {err}"
        return "ok"
    lines = [line for line in err.splitlines() if line.strip()]
    if report_ok and len(lines) > 1 and expect != "ok":
        assert rc == 1 and lines[0].startswith("adatad prepare custom:") and all(file_name in ln for ln in lines[1:]), f"{what}\n{err}"
        return "error"
    assert expect != "ok", f"{what}: refused, but it is valid input (rc {rc})\nstderr: {err}"
    assert rc in (1, 2), f"{what}: exit status {rc}\n{err}"
    assert len(lines) == 1, f"{what}: expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("adatad:"), f"{what}: {lines[0]!r}"
    named = (file_name, *others) if expect == "either" else (file_name, *others[len(others) - n_also :])
    assert any(n in lines[0] for n in named), f"{what}: the message does not name {file_name}: {lines[0]!r}"
    return "error"


def run_case(loader: Loader, mutation_name: str, tmp: Path, run: Callable[[dict[str, Path], Path], int]) -> str:
    files = loader.files(tmp)
    target = files[loader.target]
    valid = target.read_bytes()
    mut = _mutation(loader, mutation_name, valid)
    new = mut.apply(valid, target)
    if new is not None:
        target.write_bytes(new)
    what = f"{loader.name} / {mut.name} ({target.name})"
    out, err = io.StringIO(), io.StringIO()
    with _deadline(HANG_S, what), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = run(files, tmp)
    others = tuple(p.name for k, p in files.items() if k != loader.target) + loader.also_named
    expect = "error" if mut.expect == "report" else mut.expect
    return check_outcome(rc, err.getvalue(), expect, target.name, what, others, loader.name.startswith("custom_"), len(loader.also_named))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("loader_name,mutation", _cases())
def test_fuzz(loader_name, mutation, tmp_path, request):
    loader = LOADERS[loader_name]
    run = loader.run
    if loader_name.startswith("custom_"):
        run = _custom_run_with(request.getfixturevalue("videos"))
    run_case(loader, mutation, tmp_path, run)


@pytest.mark.parametrize("loader_name", list(LOADERS))
def test_valid_input_loads(loader_name, tmp_path, request):
    """The unmutated inputs are valid (so that each error above is the mutation's)."""
    loader = LOADERS[loader_name]
    run = _custom_run_with(request.getfixturevalue("videos")) if loader_name.startswith("custom_") else loader.run
    files = loader.files(tmp_path)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert run(files, tmp_path) == 0, err.getvalue()


@pytest.mark.parametrize(
    "option,expect",
    [
        ("solver.train.batch_size", "error"),
        ("=3", "error"),
        ("solver.train.batch_size=abc", "error"),
        ("solver.train.batch_size=1e308", "error"),
        ("solver.train.batch_size=nan", "error"),
        ("solver.train.batch_size=" + "9" * 5000, "error"),
        ("solver.train.batch_size=[" * 300 + "]" * 300, "error"),
        ("solver.trian.batch_size=2", "error"),
        ("dataset=[1]", "error"),
        ("solver.train.batch_size=4", "ok"),
        ("solver.train.batch_size=\udcff", "error"),
    ],
)
def test_fuzz_cfg_options(option, expect, tmp_path):
    """``--cfg-options`` values: wrong types, huge values, non-finite numbers, deep nesting, undecodable bytes."""
    from adatad.config import load_config

    cfg = _write(tmp_path / "cfg.py", CONFIG_TEXT.encode())
    err = io.StringIO()
    with _deadline(HANG_S, option[:40]), contextlib.redirect_stderr(err):
        rc = _guarded(lambda: load_config(cfg, [option]))
    got = err.getvalue()
    assert "Traceback" not in got
    if expect == "ok":
        assert rc == 0, got
    else:
        lines = got.strip().splitlines()
        assert rc in (1, 2) and len(lines) == 1 and lines[0].startswith("adatad:"), got
        assert "cfg-options" in lines[0] or "config key" in lines[0], got


@pytest.mark.parametrize(
    "argv_of",
    [
        lambda f, t: ["eval", "--gt", str(f["gt"]), "--pred", str(t / "nope.json")],
        lambda f, t: ["eval", "--gt", str(t), "--pred", str(f["pred"])],
        lambda f, t: ["prepare", "check", "--ann", str(f["pred"]), "--videos", str(t)],
    ],
    ids=["missing_pred", "directory_gt", "pred_as_annotations"],
)
def test_subprocess_end_to_end(argv_of, tmp_path):
    """The same rule through the installed entry point (a fresh interpreter, real stderr)."""
    f = _eval_files(tmp_path)
    argv = argv_of(f, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "adatad", *argv], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode in (1, 2) and "Traceback" not in res.stderr, res.stderr
    assert len(lines) == 1 and lines[0].startswith("adatad:"), res.stderr


def test_hang_guard_names_the_case():
    """The guard every case runs under does fire (a hanging loader fails naming its case instead of blocking)."""
    import time

    with pytest.raises(Hang, match="classmap / slow"):
        with _deadline(0.2, "classmap / slow"):
            time.sleep(5)
