"""Intra-op threads from the free cores (adatad/cpu.py): the rule, the measurement of other processes' CPU time,
the re-checks while training, and the overrides. The step-time effect is a benchmark
(``benchmarks/shared_cpu.py``), not a test."""

import logging
import os
import subprocess
import sys
import time

import pytest
import torch

from adatad import cpu


@pytest.mark.parametrize(
    "usable, busy, processes, expected",
    [
        (2, 0.0, 1, 2),  # idle machine: every core (torch's own default)
        (2, 0.1, 1, 2),  # background noise is not a core
        (2, 1.0, 1, 1),  # another process holds one of 2 cores
        (2, 2.0, 1, 1),  # never fewer than one
        (16, 3.4, 1, 13),
        (16, 3.6, 1, 12),
        (16, 0.0, 2, 8),  # torchrun --nproc_per_node 2 shares the cores
        (16, 4.0, 4, 3),
        (2, None, 1, 2),  # no /proc/stat: assume free
    ],
)
def test_threads_for(usable, busy, processes, expected):
    assert cpu.threads_for(usable, busy, processes) == expected


def _orphan_busy_loop() -> int:
    """A busy loop that is not our descendant (its parent shell exits), as another user's job would be."""
    out = subprocess.run(
        ["sh", "-c", f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def test_a_foreign_busy_process_counts_as_a_busy_core():
    pid = _orphan_busy_loop()
    try:
        time.sleep(0.2)
        busy = cpu.measure_busy(0.5)
    finally:
        os.kill(pid, 9)
    assert busy is not None and busy >= 0.7, busy


def test_our_own_children_are_not_other_processes():
    """DataLoader workers are ours: their CPU time is subtracted (they appear in the descendant jiffies)."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        a = cpu.sample()
        time.sleep(0.5)
        b = cpu.sample()
    finally:
        child.kill()
        child.wait()
    assert child.pid in a.own and child.pid in b.own
    assert b.own[child.pid] > a.own[child.pid]  # it ran, and was counted as ours


def test_overrides_fix_the_count_and_switch_the_rechecks_off(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("ADATAD_THREADS", "3")
    plan = cpu.plan_threads(interval=0.01)
    assert (plan.threads, plan.fixed) == (3, "ADATAD_THREADS=3")
    assert "fixed by ADATAD_THREADS=3" in plan.describe()
    monkeypatch.delenv("ADATAD_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu.plan_threads(interval=0.01).fixed == "OMP_NUM_THREADS=1"
    applied = []
    gov = cpu.ThreadGovernor(cpu.plan_threads(interval=0.01), applied.append, period=0.0)
    assert gov.tick() is None and applied == []


def test_governor_follows_the_free_cores(monkeypatch):
    """Scripted measurements: a process takes a core, then leaves; the governor applies 2 -> 1 -> 2 and logs each."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("ADATAD_THREADS", raising=False)
    clock = [0.0]
    monkeypatch.setattr(cpu, "_clock", lambda: clock[0])
    monkeypatch.setattr(cpu, "sample", lambda: cpu.CpuSample((0, 0), {}, clock[0]))
    busy = iter([1.0, 1.0, 0.0])
    monkeypatch.setattr(cpu, "busy_by_others", lambda a, b: next(busy))
    plan = cpu.ThreadPlan(threads=2, usable=2, busy=0.0, processes=1, fixed=None)
    applied, logs = [], []
    gov = cpu.ThreadGovernor(plan, applied.append, period=10.0, log=logs.append)
    assert gov.tick() is None  # within the period: nothing measured
    clock[0] = 11.0
    assert gov.tick() == 1
    clock[0] = 22.0
    assert gov.tick() is None  # still busy: no change
    clock[0] = 33.0
    assert gov.tick() == 2
    assert applied == [1, 2]
    assert "intra-op threads 2 -> 1" in logs[0] and "ADATAD_THREADS" in logs[0]


def test_configure_sets_torch_and_logs_how_to_override(monkeypatch, caplog):
    from adatad.engine.runner import configure_cpu_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("ADATAD_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        with caplog.at_level(logging.INFO, logger="adatad"):
            gov = configure_cpu_threads()
        assert torch.get_num_threads() == gov.plan.threads
        assert 1 <= gov.plan.threads <= cpu.usable_cores()
        assert f"{cpu.usable_cores()} usable core(s)" in caplog.text and "ADATAD_THREADS=N" in caplog.text
    finally:
        torch.set_num_threads(before)


def test_library_runs_give_the_callers_thread_count_back():
    """run_training / run_testing choose their threads but leave the caller's count when they return or raise."""
    from adatad.engine import runner

    assert getattr(runner.run_training, "__wrapped__", None) is not None and getattr(runner.run_testing, "__wrapped__", None) is not None
    before = torch.get_num_threads()

    def choose_and_fail():
        torch.set_num_threads(1 if before > 1 else 2)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        runner._restoring_threads(choose_and_fail)()
    assert torch.get_num_threads() == before
