"""Who left this behind, and is that process gone? Process identities that outlive the process.

A pid names a process only within one pid namespace of one boot of one kernel: containers
that share a hostname (or a host) each number their processes from 1, so "same hostname and a
dead pid" can point at a live process of another container. An owner is therefore recorded
as the machine (the kernel's boot id and the pid namespace), the pid and the process's start
time. Its process is *gone* only when the machine is this one and no live process has that
pid with that start time (a reused pid has a later start). For another machine, boot or
namespace nothing can be said, and nothing is done.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from functools import cache

# psutil derives a start time from the boot time, which the kernel recomputes from the wall
# clock: the same process can read a few ms apart; a reused pid starts later than that
_START_TOLERANCE_S = 1.0


@cache
def machine_id() -> str:
    """This kernel boot and pid namespace: `<boot id>/pidns:<inode>` on Linux (the boot id of
    /proc/sys/kernel/random/boot_id is shared by every container on the host; the namespace
    tells their pids apart), else the hostname and boot time."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        import psutil

        boot = f"{socket.gethostname()}@{psutil.boot_time():.0f}"
    try:
        ns = re.sub(r"\D", "", os.readlink("/proc/self/ns/pid"))
    except OSError:
        ns = ""
    return f"{boot}/pidns:{ns}"


def started_at(pid: int | None = None) -> float:
    """When process `pid` (default: this one) started, in s since the epoch."""
    import psutil

    return psutil.Process(pid).create_time()


def gone(machine: str | None, pid: int, started: float | None) -> bool:
    """True only when the owner (machine, pid, start time) is certainly no longer running: its
    machine is this one and its pid is free, a zombie, or taken by a later process. False
    when it runs, when it cannot be told (another machine, access denied) or the machine is
    unknown (records made before the machine was recorded)."""
    import psutil

    if machine != machine_id():
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        now = proc.create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
    return started is not None and abs(now - started) > _START_TOLERANCE_S


def _machine_hash(machine: str) -> str:
    return hashlib.sha1(machine.encode()).hexdigest()[:8]


TOKEN = r"[0-9a-f]{8}-\d+-\d+"  # what token() makes, for a regular expression


def token() -> str:
    """This process's identity in a file name: `<machine hash>-<pid>-<start in cs>`."""
    return f"{_machine_hash(machine_id())}-{os.getpid()}-{round(started_at() * 100)}"


def token_gone(tok: str) -> bool:
    """`gone` for an identity written by `token()`; False for anything else."""
    m = re.fullmatch(r"([0-9a-f]{8})-(\d+)-(\d+)", tok)
    if m is None or m.group(1) != _machine_hash(machine_id()):
        return False
    return gone(machine_id(), int(m.group(2)), int(m.group(3)) / 100)
