"""The command-line surface: help texts, version, exit codes, the seed's dry-run commands."""

import subprocess
import sys
from pathlib import Path

import pytest

from adatad import __version__
from adatad.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
SEED_CFG = "configs/adatad/thumos/e2e_thumos_videomae_s_768x1_160_adapter.py"


def run(*args, env=None):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


def test_version(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_command(capsys):
    assert main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("train", "test", "eval", "infer", "prepare", "demo", "download"):
        assert command in out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_subcommand_help_without_torch(command):
    """Every sub-command's --help works and imports neither torch nor the heavy libraries (instant start)."""
    code = (
        f"import sys; from adatad.cli import main\ntry:\n    main([{command!r}, '--help'])\nexcept SystemExit as e:\n"
        "    assert e.code == 0, e.code\nprint(sorted(m for m in ('torch', 'av', 'matplotlib') if m in sys.modules))"
    )
    res = run("-c", code)
    assert res.returncode == 0, res.stderr
    assert f"usage: adatad {command}" in res.stdout
    assert res.stdout.strip().endswith("[]"), res.stdout[-300:]


def test_help_does_not_import_torch():
    code = "import sys; from adatad.cli import main\nmain(['--help'])\nprint('torch' in sys.modules)"
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
    assert "'accumulate': 2" in res.stdout and "restored to 2" in res.stdout  # the recipe's global batch is 2


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
