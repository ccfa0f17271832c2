"""Where a benchmark's CPU goes: the CPU seconds each group of processes used during the measured window.

A throughput figure on a small machine is often a CPU budget shared by the server, the database, the load
generator and whatever runs beside them. Read from /proc at the window's start and end (Linux only): a
process's own time, plus the reaped children's (an RQ worker runs each job in a forked child); a process
that starts or ends inside the window counts for what it used while both snapshots saw it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, with_reaped_children: bool = False) -> float | None:
    """User + system CPU of `pid` so far (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces, inside parentheses): utime, stime, cutime and
    # cstime are the 14th to 17th fields of the line, the 12th to 15th after the name.
    fields = stat.rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def matching(*needles: str) -> Callable[[], list[int]]:
    """The processes whose command line holds every one of `needles`."""
    return lambda: [pid for pid in all_pids() if all(needle in _cmdline(pid) for needle in needles)]


def postgres_server_processes() -> list[int]:
    """PostgreSQL's own processes (WAL writer, checkpointer, ...), shared by every database: not client backends."""
    return [pid for pid in matching("postgres: ")() if "127.0.0.1(" not in _cmdline(pid)]


def with_descendants(root: int) -> Callable[[], list[int]]:
    """`root` and every process below it (an RQ worker's job process while it runs)."""

    def find() -> list[int]:
        parents = {pid: _parent(pid) for pid in all_pids()}
        found, frontier = {root}, [root]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
            found.update(children)
            frontier += children
        return sorted(found)

    return find


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class CpuWindow:
    """Snapshot groups of processes at `start()` and `stop()`; `seconds()` gives each group's CPU between."""

    groups: dict[str, Callable[[], list[int]]]
    reaped_children: set[str] = field(default_factory=set)  # groups whose reaped children count too
    _start: dict[str, dict[int, float]] = field(default_factory=dict)
    _end: dict[str, dict[int, float]] = field(default_factory=dict)
    _machine: list[tuple[int, int]] = field(default_factory=list)

    def _snapshot(self) -> dict[str, dict[int, float]]:
        taken = {}
        for name, find in self.groups.items():
            times = {pid: cpu_seconds(pid, with_reaped_children=name in self.reaped_children) for pid in find()}
            taken[name] = {pid: used for pid, used in times.items() if used is not None}
        return taken

    def start(self) -> None:
        self._start = self._snapshot()
        self._machine = [machine_ticks()]

    def stop(self) -> None:
        self._end = self._snapshot()
        self._machine.append(machine_ticks())

    def seconds(self) -> dict[str, float]:
        return {
            name: sum(used - self._start[name][pid] for pid, used in self._end[name].items() if pid in self._start[name])
            for name in self.groups
        }

    def machine_busy_share(self) -> float:
        (busy_before, total_before), (busy_after, total_after) = self._machine
        return (busy_after - busy_before) / max(1, total_after - total_before)
