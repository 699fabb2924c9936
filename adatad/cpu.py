"""How many CPU threads to use: the cores this process may run on, minus the ones other processes keep busy.

PyTorch's intra-op pool starts one thread per core and every parallel op waits for all of them. When another
process holds one of the cores, the thread the kernel parks on it stalls every op: on a 2-core machine the demo's
training step went from 0.5 s to 15-20 s (``benchmarks/shared_cpu.py`` measures it). So adatad picks the
intra-op thread count from the cores that are actually free, and re-checks while it trains:

* *usable* cores: ``os.sched_getaffinity`` (taskset, cgroups cpusets), not ``os.cpu_count``;
* *busy* cores: the CPU time other processes used on those cores over a short interval (``/proc/stat`` minus
  this process and its children, e.g. DataLoader workers), in cores;
* threads = usable - round(busy), at least 1, divided among the processes ``torchrun`` started on this machine.

``ADATAD_THREADS=N`` (or ``OMP_NUM_THREADS=N``) fixes the count and switches the re-checks off. Torch-free (the
``prepare`` tools use it too); the caller applies the count (``torch.set_num_threads``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

ENV_OVERRIDE = "ADATAD_THREADS"
OVERRIDE_HINT = f"override with {ENV_OVERRIDE}=N (or OMP_NUM_THREADS=N)"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; ``os.cpu_count`` where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_in_processes(fn: Callable[[Any], Any], jobs: Sequence, workers: int) -> Iterator:
    """``fn(job)`` for every job, in this process when ``workers <= 1`` (or one job), else in a pool of ``workers``
    spawned processes (PyAV's decoder threads and fork do not mix); yields the results as they complete."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        for fut in as_completed([pool.submit(fn, job) for job in jobs]):
            yield fut.result()


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:
        return None


def _cpu_jiffies(cpus: set[int] | None) -> tuple[int, int] | None:
    """(busy, total) jiffies summed over ``cpus`` from ``/proc/stat`` (None where it cannot be read)."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        try:
            cpu = int(name[3:])
            fields = [int(x) for x in rest.split()]
        except ValueError:
            continue
        if cpus is not None and cpu not in cpus:
            continue
        # user nice system idle iowait irq softirq steal [guest guest_nice: already counted in user/nice]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        all_ = sum(fields[:8])
        busy += all_ - idle
        total += all_
    return (busy, total) if total else None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def _process_jiffies(pid: int) -> int:
    """user + system jiffies of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    except (OSError, ValueError, IndexError):
        return 0


def _own_jiffies() -> dict[int, int]:
    """Jiffies of this process and every descendant, by pid (a child that exits between samples is not counted)."""
    out, todo = {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        out[pid] = _process_jiffies(pid)
        todo.extend(_children(pid))
    return out


@dataclass
class CpuSample:
    cpu: tuple[int, int] | None
    own: dict[int, int]
    time: float


def _clock() -> float:
    return time.monotonic()


def sample() -> CpuSample:
    return CpuSample(_cpu_jiffies(_affinity()), _own_jiffies(), _clock())


def busy_by_others(a: CpuSample, b: CpuSample) -> float | None:
    """Cores' worth of CPU time that other processes used on our cores between two samples (None: unknown)."""
    if a.cpu is None or b.cpu is None or b.cpu[1] <= a.cpu[1]:
        return None
    busy, total = b.cpu[0] - a.cpu[0], b.cpu[1] - a.cpu[1]
    own = sum(j - a.own.get(pid, 0) for pid, j in b.own.items() if pid in a.own)
    cores = usable_cores()
    return max(0.0, min(float(cores), (busy - own) / total * cores))


def measure_busy(interval: float = 0.3) -> float | None:
    """Cores kept busy by other processes now, measured over ``interval`` seconds."""
    a = sample()
    time.sleep(interval)
    return busy_by_others(a, sample())


def local_processes() -> int:
    """Training processes ``torchrun`` started on this machine (1 without torchrun)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def fixed_threads() -> tuple[int, str] | None:
    """(threads, source) when the user fixed the count through the environment."""
    for var in (ENV_OVERRIDE, "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value:
            try:
                n = int(value)
            except ValueError:
                continue
            if n > 0:
                return n, f"{var}={n}"
    return None


def threads_for(usable: int, busy: float | None, processes: int = 1) -> int:
    """Intra-op threads for one of ``processes`` processes: the free cores, shared, at least 1."""
    free = usable - (int(busy + 0.5) if busy is not None else 0)
    return max(1, free // max(1, processes))


@dataclass
class ThreadPlan:
    threads: int
    usable: int
    busy: float | None
    processes: int
    fixed: str | None  # the environment variable that fixed the count, or None (chosen, re-checked)

    def describe(self) -> str:
        if self.fixed:
            return f"cpu: {self.threads} intra-op thread(s), fixed by {self.fixed}"
        busy = "unknown" if self.busy is None else f"{self.busy:.1f}"
        shared = f", shared by {self.processes} local processes" if self.processes > 1 else ""
        return (
            f"cpu: {self.threads} intra-op thread(s): {self.usable} usable core(s), {busy} busy with other processes{shared}; "
            f"re-checked while training; {OVERRIDE_HINT}"
        )


def plan_threads(interval: float = 0.3) -> ThreadPlan:
    usable, processes = usable_cores(), local_processes()
    fixed = fixed_threads()
    if fixed is not None:
        return ThreadPlan(fixed[0], usable, None, processes, fixed[1])
    busy = measure_busy(interval)
    return ThreadPlan(threads_for(usable, busy, processes), usable, busy, processes, None)


class ThreadGovernor:
    """Re-checks the free cores every ``period`` seconds (call :meth:`tick` often; it is cheap in between) and
    calls ``apply(n)`` when the thread count should change. Inactive when the count was fixed by the user."""

    def __init__(self, plan: ThreadPlan, apply: Callable[[int], None], period: float = 20.0, log: Callable[[str], None] | None = None):
        self.plan, self.apply, self.period, self.log = plan, apply, period, log
        self._last = sample() if plan.fixed is None else None
        self.threads = plan.threads

    def tick(self) -> int | None:
        """The new thread count when it changed (and was applied), else None."""
        if self._last is None or _clock() - self._last.time < self.period:
            return None
        now = sample()
        busy = busy_by_others(self._last, now)
        self._last = now
        if busy is None:
            return None
        n = threads_for(self.plan.usable, busy, self.plan.processes)
        if n == self.threads:
            return None
        old, self.threads = self.threads, n
        self.apply(n)
        if self.log:
            self.log(f"cpu: {busy:.1f} core(s) busy with other processes: intra-op threads {old} -> {n} ({OVERRIDE_HINT})")
        return n
