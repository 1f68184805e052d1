"""Resident memory of a process tree, sampled from /proc while a workload runs.

Contract: ``tree_memory(pid)`` sums VmRSS and VmHWM (kB in /proc, bytes here) over
``pid`` and every live descendant, so a uvicorn master with its workers counts as one
gateway. VmHWM is each process's lifetime peak, so its sum is an upper bound (the peaks
need not coincide) that also covers spikes shorter than the sampling period.
``RssSampler`` polls in a daemon thread (re-listing the tree once a second), not on the event loop, so a stalled loop in the
load generator cannot hide a peak; it reads only /proc and never signals the process.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TreeMemory:
    """One sample of a process tree: summed VmRSS / VmHWM in bytes, process count."""

    rss: int
    hwm: int
    processes: int


def _status_fields(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, value = line.split(":", 1)
                    fields[name] = int(value.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass  # the process exited between listing and reading
    return fields


def _parent_map() -> dict[int, int]:
    """pid -> ppid for every process (no /proc/PID/task/*/children on this kernel)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: split after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents[int(entry.name)] = ppid
    return parents


def process_tree(pid: int) -> list[int]:
    """``pid`` followed by all of its live descendants."""
    children: dict[int, list[int]] = {}
    for child, parent in _parent_map().items():
        children.setdefault(parent, []).append(child)
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def tree_memory(pid: int, members: list[int] | None = None) -> TreeMemory:
    """Summed VmRSS and VmHWM of ``pid`` and its descendants (or of ``members``, a tree
    listed earlier by ``process_tree``); zeros if they are gone."""
    rss = hwm = count = 0
    for member in members if members is not None else process_tree(pid):
        fields = _status_fields(member)
        if fields:
            count += 1
            rss += fields.get("VmRSS", 0)
            hwm += fields.get("VmHWM", 0)
    return TreeMemory(rss, hwm, count)


@dataclass
class RssSampler:
    """Poll ``tree_memory(pid)`` every ``interval`` seconds between start() and stop().

    ``baseline`` is the sample taken at start(); ``peak_rss`` the largest summed VmRSS
    seen; ``last`` the sample taken at stop() (its ``hwm`` is the lifetime-peak bound).
    """

    pid: int
    interval: float = 0.1
    baseline: TreeMemory | None = None
    last: TreeMemory | None = None
    peak_rss: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        self.baseline = tree_memory(self.pid)
        self.peak_rss = self.baseline.rss
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        # Listing the tree scans all of /proc (~4 ms); reading statuses is cheap. Re-list
        # once a second so the sampler costs the measuring client little CPU, yet a
        # restarted worker is still counted.
        for tick in itertools.count():
            if tick % 10 == 0:
                members = process_tree(self.pid)
            if self._stop.wait(self.interval):
                return
            self._record(tree_memory(self.pid, members))

    def _record(self, sample: TreeMemory) -> None:
        self.samples += 1
        self.peak_rss = max(self.peak_rss, sample.rss)

    def stop(self) -> TreeMemory:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.last = tree_memory(self.pid)
        self._record(self.last)
        return self.last

    def report(self) -> dict[str, int]:
        """Figures in bytes: baseline, peak sampled RSS, and the summed VmHWM at stop."""
        base = self.baseline or TreeMemory(0, 0, 0)
        last = self.last or base
        return {
            "baseline_rss": base.rss,
            "peak_rss": self.peak_rss,
            "hwm": last.hwm,
            "processes": last.processes,
            "samples": self.samples,
        }
