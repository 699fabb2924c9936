"""adatad installs anywhere: a wheel built from the package, installed into a fresh virtual environment outside the
source tree, runs its commands from a temporary directory with only what the wheel ships (configs, THUMOS-14 CSVs).

The new environment gets no copy of torch & co.: a plain path line in a ``.pth`` file makes this interpreter's
site-packages visible (a plain line does not run the editable-install finder there, so ``adatad`` itself can only
come from the wheel; checked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from tinyrun import ROOT

# the THUMOS-14 facts of OpenTAD's annotation file (adatad/data/thumos14/README.md), an oracle independent of the code
THUMOS_SUBSETS = {"training": (200, 3003), "validation": (211, 3325)}


def _copy_sources(dst: Path) -> Path:
    """What a wheel is built from: the package, pyproject.toml and the README (no build/ litter in the checkout)."""
    shutil.copytree(ROOT / "adatad", dst / "adatad", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dst / name)
    return dst


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel, install it into a new venv; -> {"python", "adatad", "site", "wheel"}."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = _copy_sources(tmp / "src")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = dict(capture_output=True, text=True, timeout=300, env=env, cwd=tmp)
    build = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist")]
    res = subprocess.run(build, **run)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("adatad-*.whl")

    venv = tmp / "venv"
    res = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], **run)
    assert res.returncode == 0, res.stderr[-2000:]
    python = venv / "bin" / "python"
    res = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], **run)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], **run).stdout.strip())
    # torch, numpy, av, ... from this interpreter's environment, as a plain path (not executed, unlike its editable finder)
    (site / "zz_adatad_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return {"python": python, "adatad": venv / "bin" / "adatad", "site": site, "wheel": wheel, "env": env, "cwd": tmp / "cwd"}


def _run(inst: dict, *args, timeout=120) -> subprocess.CompletedProcess:
    inst["cwd"].mkdir(exist_ok=True)
    return subprocess.run([*map(str, args)], capture_output=True, text=True, timeout=timeout, env=inst["env"], cwd=inst["cwd"])


def test_wheel_ships_configs_and_thumos_annotations(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "adatad" / "configs").rglob("*.py")}
    assert shipped and shipped <= names
    for split in ("val", "test"):
        assert {f"adatad/data/thumos14/{split}_Annotation_ours.csv", f"adatad/data/thumos14/{split}_video_info.csv"} <= names
    assert "adatad/data/thumos14/class_index_detection.txt" in names
    assert not any(n.startswith("tests/") for n in names)


def test_installed_package_comes_from_the_new_environment(installed):
    code = (
        "import adatad, json; from adatad.config import config_root, load_config, packaged_config; "
        "from adatad.data.annotations import thumos14_csv_dir; "
        "cfg = load_config(packaged_config('adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py')); "
        "print(json.dumps([adatad.__file__, str(config_root()), str(thumos14_csv_dir()), cfg['model']['backbone']['embed_dims']]))"
    )
    res = _run(installed, installed["python"], "-c", code)
    assert res.returncode == 0, res.stderr[-3000:]
    module, configs, thumos, dims = json.loads(res.stdout.splitlines()[-1])
    for path in (module, configs, thumos):
        assert Path(path).is_relative_to(installed["site"]), path
    assert dims == 384  # the seed recipe resolved through its _base_ files inside the installed tree


def test_installed_commands_run_from_any_directory(installed, tmp_path):
    res = _run(installed, installed["adatad"], "demo", "--help")
    assert res.returncode == 0 and "synthetic" in res.stdout, res.stderr[-2000:]

    res = _run(installed, installed["adatad"], "prepare", "thumos", "--out", tmp_path / "thumos")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    db = json.loads((tmp_path / "thumos" / "thumos_14_anno.json").read_text())["database"]
    for subset, (videos, instances) in THUMOS_SUBSETS.items():
        vids = [v for v in db.values() if v["subset"] == subset]
        assert (len(vids), sum(len(v["annotations"]) for v in vids)) == (videos, instances), subset
    assert len((tmp_path / "thumos" / "category_idx.txt").read_text().split()) == 20


def test_installed_prepare_custom_writes_a_config_that_loads(installed, tmp_path):
    """The generated config inherits the seed recipe from the installed package (its _base_ points there)."""
    from adatad.data.synthetic import random_video_spec, render_video, write_video

    for i in range(3):
        spec = random_video_spec(f"clip{i}", 4.0, fps=30.0, size=(32, 32), seed=i, actions=[("Grow", 1.0, 2.5)])
        write_video(tmp_path / "videos" / f"clip{i}.mp4", render_video(spec), 30.0)
    (tmp_path / "labels.csv").write_text("video,start,end,label\n" + "".join(f"clip{i},1.0,2.5,Jump\n" for i in range(3)))
    args = ["--videos", tmp_path / "videos", "--annotations", tmp_path / "labels.csv", "--out", tmp_path / "ds"]
    res = _run(installed, installed["adatad"], "prepare", "custom", *args)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    code = "from adatad.config import load_config; m = load_config('ds/config.py')['model']; print(m['backbone']['embed_dims'])"
    res = subprocess.run([str(installed["python"]), "-c", code], capture_output=True, text=True, env=installed["env"], cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.split() == ["384"], res.stderr[-2000:]
    assert "site-packages/adatad/configs/adatad/thumos/" in (tmp_path / "ds" / "config.py").read_text()


def test_repository_configs_link_is_the_shipped_tree():
    """configs/ (the seed's paths) is a relative symlink to adatad/configs: one copy; both paths load the same config."""
    link = ROOT / "configs"
    assert link.is_symlink() and os.readlink(link) == "adatad/configs"
    name = "adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py"
    from adatad.config import load_config, packaged_config

    a, b = load_config(link / name), load_config(packaged_config(name))
    assert {k: v for k, v in a.items() if k != "_meta"} == {k: v for k, v in b.items() if k != "_meta"}
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-s", "configs"], capture_output=True, text=True).stdout
    assert tracked.startswith("120000 ") or not tracked  # git stores a symlink (no output outside a git checkout)


# --- place for the lead: a `Detector` call in the installed environment (adatad.Detector, branch `detector`) ---
def detector_call_in_installed_env(installed: dict, checkpoint: Path, video: Path) -> subprocess.CompletedProcess:
    """Run ``adatad.Detector.from_checkpoint(checkpoint)(video)`` with the installed package, from a temp cwd."""
    code = f"import adatad; print(adatad.Detector.from_checkpoint({str(checkpoint)!r})({str(video)!r}).to_json())"
    return _run(installed, installed["python"], "-c", code, timeout=300)


def test_installed_detector_runs_from_any_directory(installed, cfg_file, tiny_dataset, tmp_path):
    """``adatad.Detector`` from the installed wheel: a checkpoint with its saved config, one video, JSON out."""
    import json

    from tinyrun import save_tiny_checkpoint

    ckpt = save_tiny_checkpoint(tmp_path / "tiny.pth", cfg_file)
    video = sorted(Path(tiny_dataset["video_dir"]).glob("*.mp4"))[0]
    res = detector_call_in_installed_env(installed, ckpt, video)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = json.loads(res.stdout[res.stdout.index("{") :])
    assert out["video"] == video.stem and out["num_frames"] > 0 and isinstance(out["detections"], list)
