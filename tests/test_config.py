"""Config system: inheritance, _delete_, overrides, typo and type errors, dump round trip."""

from pathlib import Path

import pytest

from adatad.config import SCHEMA, ConfigError, config_root, dump_config, load_config, merge, packaged_config, parse_value

ROOT = Path(__file__).resolve().parents[1]
SEED_CFG = packaged_config("adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_merge_rules():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    child = {"a": {"y": [3]}, "c": 3}
    assert merge(base, child) == {"a": {"x": 1, "y": [3]}, "b": 2, "c": 3}  # lists replaced, dicts merged
    assert merge(base, {"a": {"_delete_": True, "z": 0}}) == {"a": {"_delete_": True, "z": 0}, "b": 2}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2}  # inputs untouched


def test_inheritance_chain_and_delete(tmp_path):
    write(tmp_path / "base/data.py", "dataset = dict(name='x', window_size=128, train=dict(trunc_thresh=0.5))\n")
    write(tmp_path / "base/model.py", "model = dict(backbone=dict(depth=4, embed_dims=96), head=dict(num_classes=3))\n")
    write(tmp_path / "mid.py", "_base_ = ['base/data.py', 'base/model.py']\nwindow = 64\ndataset = dict(window_size=window)\n")
    child = write(
        tmp_path / "sub/child.py", "_base_ = '../mid.py'\nmodel = dict(backbone=dict(depth=2), head=dict(_delete_=True, num_classes=5))\n"
    )
    cfg = load_config(child)
    assert cfg["dataset"]["window_size"] == 64
    assert cfg["dataset"]["train"]["trunc_thresh"] == 0.5
    assert cfg["model"]["backbone"]["depth"] == 2 and cfg["model"]["backbone"]["embed_dims"] == 96
    # _delete_ dropped the base head keys; defaults are filled back in from the schema
    assert cfg["model"]["head"]["num_classes"] == 5
    assert cfg["window"] == 64  # free helper variable kept
    assert cfg["_meta"]["config_name"] == "child"


def test_delete_in_a_later_sibling_base(tmp_path):
    """A base file's _delete_ replaces what an earlier base of the same child set (cpu_small.py after the seed)."""
    write(tmp_path / "a.py", "optimizer = dict(lr=1.0, backbone=dict(lr=0.0, custom=[dict(name='adapter', lr=2.0)]))\n")
    write(tmp_path / "b.py", "optimizer = dict(backbone=dict(_delete_=True, lr=5e-4, weight_decay=0.05))\n")
    child = write(tmp_path / "c.py", "_base_ = ['a.py', 'b.py']\noptimizer = dict(lr=3.0)\n")
    cfg = load_config(child)
    assert cfg["optimizer"]["lr"] == 3.0
    assert cfg["optimizer"]["backbone"]["lr"] == 5e-4 and cfg["optimizer"]["backbone"]["custom"] == []  # schema default
    assert "_delete_" not in cfg["optimizer"]["backbone"] and "_delete_" not in cfg["optimizer"]


def test_missing_base_and_circular(tmp_path):
    bad = write(tmp_path / "a.py", "_base_ = ['nope.py']\n")
    with pytest.raises(ConfigError, match="nope.py"):
        load_config(bad)
    write(tmp_path / "x.py", "_base_ = ['y.py']\n")
    write(tmp_path / "y.py", "_base_ = ['x.py']\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "x.py")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1", 1),
        ("1.5", 1.5),
        ("1e-4", 1e-4),
        ("true", True),
        ("False", False),
        ("None", None),
        ("[1,2]", [1, 2]),
        ("(1, 2)", (1, 2)),
        ("abc", "abc"),
        ("'quoted'", "quoted"),
        ("[a,b]", ["a", "b"]),
        ("{'k': 1}", {"k": 1}),
    ],
)
def test_parse_value(text, expected):
    assert parse_value(text) == expected


def test_seed_config_overrides():
    cfg = load_config(
        SEED_CFG, ["solver.train.batch_size=1", "optimizer.lr=2e-4", "solver.amp=false", "dataset.transform.test.crop_size=128"]
    )
    assert cfg["solver"]["train"]["batch_size"] == 1
    assert cfg["optimizer"]["lr"] == 2e-4
    assert cfg["solver"]["amp"] is False
    assert cfg["dataset"]["transform"]["test"]["crop_size"] == 128
    assert cfg["_meta"]["overrides"][0] == "solver.train.batch_size=1"


def test_seed_config_values():
    """The seed's reference facts live in the config files."""
    cfg = load_config(SEED_CFG)
    d, m, s = cfg["dataset"], cfg["model"], cfg["solver"]
    assert d["window_size"] == 768 and d["feature_stride"] * d["sample_stride"] == 4
    assert d["train"]["trunc_thresh"] == 0.75 and d["test"]["window_overlap_ratio"] == 0.5
    assert d["train"]["subset_name"] == "training" and d["test"]["subset_name"] == "validation"
    assert m["backbone"]["embed_dims"] == 384 and m["backbone"]["adapter_index"] == list(range(12))
    assert m["projection"]["n_mha_win_size"] == -1 and m["projection"]["out_channels"] == 512
    assert s["train"]["batch_size"] == 2 and "reference_batch" not in s and s["ema"] and s["amp"] and s["amp_dtype"] == "fp16"
    assert cfg["optimizer"]["backbone"]["custom"] == [{"name": "adapter", "lr": 2e-4, "weight_decay": 0.05}]
    assert cfg["post_processing"]["nms"]["sigma"] == 0.7
    assert cfg["workflow"]["end_epoch"] == 60 and cfg["workflow"]["val_start_epoch"] == 40


def test_typo_suggests_closest_key():
    with pytest.raises(ConfigError) as err:
        load_config(SEED_CFG, ["solver.train.batchsize=1"])
    assert "solver.train.batchsize" in str(err.value) and "batch_size" in str(err.value)
    with pytest.raises(ConfigError, match="optimizer"):
        load_config(SEED_CFG, ["optimzer.lr=1"])


def test_typo_in_file(tmp_path):
    bad = write(tmp_path / "bad.py", "model = dict(backbone=dict(embed_dim=384))\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "model.backbone.embed_dim" in str(err.value) and "embed_dims" in str(err.value)


def test_type_errors(tmp_path):
    with pytest.raises(ConfigError, match="solver.train.batch_size.*int"):
        load_config(SEED_CFG, ["solver.train.batch_size=two"])
    with pytest.raises(ConfigError, match="solver.amp.*bool"):
        load_config(SEED_CFG, ["solver.amp=1"])
    bad = write(tmp_path / "bad.py", "solver = dict(train=3)\n")
    with pytest.raises(ConfigError, match="solver.train"):
        load_config(bad)
    ok = load_config(SEED_CFG, ["optimizer.lr=1"])  # an int is a valid float
    assert ok["optimizer"]["lr"] == 1


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(SEED_CFG, ["solver.train.batch_size"])


def test_dump_round_trip(tmp_path):
    cfg = load_config(SEED_CFG, ["solver.train.batch_size=1"])
    path = tmp_path / "resolved.py"
    dump_config(cfg, path)
    again = load_config(path)
    strip = lambda c: {k: v for k, v in c.items() if k in SCHEMA}
    assert strip(again) == strip(cfg)


def test_dump_drops_the_base_files_helper_variables(tmp_path):
    """The resolved config of a run says what the run used: the sections, not the bases' helper variables
    (``window_size``, ``annotation_path``, ... at top level), which later overrides can make stale."""
    cfg = load_config(SEED_CFG, ["dataset.window_size=512"])
    helpers = {k for k in cfg if not k.startswith("_") and k not in SCHEMA}
    assert helpers == {"window_size", "annotation_path"}  # the recipe's and its _base_ file's
    text = dump_config(cfg, tmp_path / "config.py")
    namespace: dict = {}
    exec(text, namespace)  # noqa: S102
    assert {k for k in namespace if not k.startswith("__")} == {k for k in cfg if k in SCHEMA}
    assert cfg["window_size"] == 768 and namespace["dataset"]["window_size"] == 512  # the stale helper is gone


def test_all_shipped_configs_load():
    for path in sorted((config_root()).rglob("*.py")):
        if "_base_" in path.parts:
            continue
        cfg = load_config(path)
        assert cfg["model"]["projection"]["in_channels"] == cfg["model"]["backbone"]["embed_dims"], path


def test_choices_and_removed_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"solver.amp_dtype' must be one of 'fp16', 'bf16', got 'auto'"):
        load_config(SEED_CFG, ["solver.amp_dtype=auto"])
    with pytest.raises(ConfigError, match=r"dataset.transform.train.crop' must be one of"):
        load_config(SEED_CFG, ["dataset.transform.train.crop=random"])
    old = write(tmp_path / "old.py", "evaluation = dict(subset='validation')\n")
    with pytest.raises(ConfigError, match=r"evaluation.subset' was removed: the evaluator uses the split's own"):
        load_config(old)
    assert load_config(SEED_CFG)["solver"]["amp_dtype"] == "fp16"  # OpenTAD's fp16 autocast + GradScaler


def _leaf_items(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            if v.get("_delete_"):
                continue  # replaces what it inherits: its values are not restatements
            yield from _leaf_items(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_recipe_configs_state_only_what_they_change():
    """Each value lives once: a recipe file sets a key only to a value that differs from what it inherits (its
    _base_ files, then the schema's defaults)."""
    from adatad.config import SCHEMA, _exec_file, _load_file, _schema_defaults, _strip_delete, get

    restated = []
    for path in sorted((config_root() / "adatad").rglob("*.py")):
        raw = _exec_file(path)
        bases = raw.pop("_base_", [])
        inherited: dict = {}
        for base in [bases] if isinstance(bases, str) else bases:
            inherited = merge(inherited, _load_file((path.parent / base).resolve()))
        inherited = merge(_schema_defaults(SCHEMA), _strip_delete(inherited))
        sections = {k: v for k, v in raw.items() if isinstance(v, dict)}
        for key, value in _leaf_items(sections):
            if get(inherited, key, object()) == value:
                restated.append(f"{path.name}: {key} = {value!r}")
    assert restated == []
