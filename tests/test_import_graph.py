"""The shape of the package: every module imports on its own, the import graph of ``adatad/`` (imports inside
functions included) has no cycle, and the layering rules hold (library modules never import the command line;
the evaluator and the config layer never import torch or the data pipeline)."""

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adatad.config import config_root

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "adatad"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


# the shipped config files (adatad/configs) are read as data, never imported
MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py")) if not p.is_relative_to(config_root())}


def imports_of(name: str) -> set[str]:
    """Every module of the package that ``name`` imports, at module level or inside a function."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name and t != "adatad":
                out.add(t)
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def external_imports(name: str) -> set[str]:
    """Top-level names of the non-adatad packages ``name`` imports anywhere."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out - {"adatad"}


def test_import_graph_has_no_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for dep in sorted(GRAPH[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)


COMMAND_LINE = {m for m in MODULES if m.startswith("adatad.commands") or m.endswith(".cli") or m in ("adatad.cli", "adatad.__main__")}


def test_layering_rules():
    for name, deps in GRAPH.items():
        if name not in COMMAND_LINE:
            assert not deps & COMMAND_LINE, f"library module {name} imports the command line: {sorted(deps & COMMAND_LINE)}"
    for name, deps in GRAPH.items():  # the library API sits between the command line and the engine
        if "adatad.api" in deps:
            assert name in COMMAND_LINE or name == "adatad", f"{name} imports adatad.api (only commands/ and adatad/__init__ may)"
    assert not GRAPH["adatad.api"] & COMMAND_LINE
    for name in ("adatad.config", "adatad.errors", "adatad.annotation_io"):
        assert GRAPH[name] <= {"adatad.errors"}, (name, GRAPH[name])
    for name in [m for m in MODULES if m.startswith("adatad.evaluation")]:
        bad = {d for d in GRAPH[name] if d.startswith(("adatad.data", "adatad.models", "adatad.engine"))}
        assert not bad, f"{name} (numpy-only evaluator) imports {sorted(bad)}"
        assert "torch" not in external_imports(name), name


@pytest.mark.parametrize("chunk", range(4))
def test_every_module_imports_alone(chunk):
    """Each module in a fresh interpreter (an import-order dependency or a hidden cycle shows up here)."""
    names = sorted(set(MODULES) - {"adatad.__main__"})[chunk::4]  # __main__ runs the command line
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")

    def load(name):
        res = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
        return name, res.returncode, res.stderr[-800:]

    with ThreadPoolExecutor(2) as pool:
        failures = [(n, err) for n, rc, err in pool.map(load, names) if rc != 0]
    assert not failures, failures


def test_import_adatad_stays_torch_free():
    """``Detector`` and ``Detections`` come from ``adatad`` lazily: the package itself (what ``adatad --help`` and
    ``adatad eval`` import) does not pull in torch."""
    code = (
        "import sys, adatad\n"
        "assert 'torch' not in sys.modules, 'import adatad imported torch'\n"
        "from adatad import Detector, Detections\n"
        "assert 'torch' in sys.modules and Detector.__module__ == Detections.__module__ == 'adatad.api'\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
