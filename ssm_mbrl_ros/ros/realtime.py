"""Real-time scheduling for latency-critical nodes: every thread of the process under SCHED_FIFO.

A policy loop on a shared onboard computer misses deadlines when ordinary processes (logging, a recorder, a
training job) take its core; SCHED_FIFO lets it preempt them. Linux only, and it needs CAP_SYS_NICE (root, or
`setcap cap_sys_nice+ep` on the interpreter, or an rtprio limit in /etc/security/limits.conf). The node is not a
busy loop (it blocks in the executor between messages), so a FIFO priority cannot starve the machine.
"""
from __future__ import annotations

import os
from pathlib import Path


def thread_ids() -> list[int]:
    """Ids of every thread of this process (DDS receive threads included), or [0] (this thread) off Linux."""
    tasks = Path("/proc/self/task")
    return sorted(int(p.name) for p in tasks.iterdir()) if tasks.is_dir() else [0]


def set_fifo_priority(priority: int) -> str:
    """Put every thread of this process under SCHED_FIFO at priority (1-99); returns a line saying what happened
    (also when it could not: the node then runs with the default scheduler). Threads created later inherit it."""
    if not 1 <= priority <= 99:
        raise ValueError(f"SCHED_FIFO priority must be in 1..99, got {priority}")
    if not hasattr(os, "sched_setscheduler"):
        return f"real-time priority {priority} not applied: this platform has no sched_setscheduler"
    param = os.sched_param(priority)
    done = 0
    try:
        for tid in thread_ids():
            try:
                os.sched_setscheduler(tid, os.SCHED_FIFO, param)
                done += 1
            except ProcessLookupError:  # a thread that ended meanwhile
                continue
    except PermissionError:
        return (f"real-time priority {priority} not applied: no permission (needs CAP_SYS_NICE: root, setcap "
                f"cap_sys_nice+ep on the interpreter, or an rtprio limit); running with the default scheduler")
    return f"SCHED_FIFO priority {priority} on {done} threads"


def current_policy() -> str:
    """This thread's scheduling policy name: 'fifo', 'rr', 'other', ... (diagnostics and tests)."""
    names = {getattr(os, n): n[6:].lower() for n in ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH",
                                                     "SCHED_IDLE") if hasattr(os, n)}
    return names.get(os.sched_getscheduler(0), "unknown") if hasattr(os, "sched_getscheduler") else "unknown"
