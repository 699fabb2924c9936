"""The command-line surface: help texts, version, exit codes, the seed's dry-run commands."""

import subprocess
import sys
from pathlib import Path

import pytest

from adatad import __version__
from adatad.cli import main

ROOT = Path(__file__).resolve().parents[1]
SEED_CFG = "configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py"


def run(*args, env=None):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("train", "test", "eval", "infer", "prepare", "demo", "download"):
        assert command in out


@pytest.mark.parametrize("command", ["train", "test", "demo"])
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: adatad " + command in capsys.readouterr().out


def test_help_does_not_import_torch():
    code = "import sys; from adatad.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    res = run("-c", code)
    assert res.returncode == 0 and res.stdout.strip().endswith("False")


def test_train_dry_run_seed_command():
    res = run("tools/train.py", SEED_CFG, "--cfg-options", "solver.train.batch_size=1", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "'batch_size': 1" in res.stdout
    assert "effective batch is 1" in res.stdout and "--keep-effective-batch" in res.stdout


def test_train_dry_run_keep_effective_batch():
    res = run("tools/train.py", SEED_CFG, "--cfg-options", "solver.train.batch_size=1", "--keep-effective-batch", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "'accumulate': 4" in res.stdout and "restored to 4" in res.stdout


def test_train_typo_fails_with_suggestion():
    res = run("tools/train.py", SEED_CFG, "--cfg-options", "solver.train.batchsize=1", "--dry-run")
    assert res.returncode != 0
    assert "solver.train.batchsize" in res.stderr and "batch_size" in res.stderr
    assert "Traceback" not in res.stderr


def test_test_dry_run_and_missing_checkpoint_arg():
    res = run("tools/test.py", SEED_CFG, "--checkpoint", "nothing.pth", "--dry-run")
    assert res.returncode == 0, res.stderr
    res = run("tools/test.py", SEED_CFG)
    assert res.returncode == 2 and "--checkpoint" in res.stderr


def test_missing_config_file():
    res = run("tools/train.py", "configs/nope.py", "--dry-run")
    assert res.returncode == 2 and "not found" in res.stderr
