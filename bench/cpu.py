"""CPU time of processes, read from /proc: what a run cost a process, robust to other load on the machine
(wall-clock ratios are not)."""

from __future__ import annotations

import asyncio
import os
import time

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and every live descendant (uvicorn's worker processes)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat(entry)
        except OSError:
            continue  # gone meanwhile
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in tree]
        tree.update(children)
        frontier += children
    return sum(ticks.get(p, 0) for p in tree) / TICKS


def load_average() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


async def wait_quiet(pids: list[int], *, share: float = 0.05, window: float = 0.5, timeout: float = 30) -> float:
    """Waits until the processes (and their children) together use under `share` of a core over `window`
    seconds (their background work after a run, such as the audit feeder, is done); returns the seconds
    waited. A run measured while another gateway is still catching up would share the machine with it."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = sum(tree_cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(window)
        if sum(tree_cpu_seconds(pid) for pid in pids) - before < share * window:
            break
    return time.monotonic() - started


def listener_of(port: int) -> int | None:
    """The local process listening on a TCP port (read from /proc; needs the right to see its sockets), or
    None when none of ours is."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").removeprefix("socket:[").rstrip("]") in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def listening_pid(port: int) -> int:
    """`listener_of`, for a benchmark that cannot go on without it."""
    pid = listener_of(port)
    if pid is None:
        raise SystemExit(f"no process of ours found listening on port {port}; is the EHR local?")
    return pid
