"""Wake-up jitter of a bare periodic loop: how late the machine lets a thread run at its deadlines, with no ROS, DDS
or policy in the loop.

The policy loop's deadline budget (`bench ros`) is shared between the stack and the host: a cycle is missed when the
answer comes later than one period. This loop does no work at all; it sleeps until each absolute deadline
(clock_nanosleep on CLOCK_MONOTONIC through time.sleep on the remaining time) and records how late it woke. Any
wake-up later than one period is a stall the host imposed (the scheduler, another process, or on a virtual machine
the hypervisor): no code inside the loop could have met that deadline, so it bounds what `bench ros` can reach.
"""
from __future__ import annotations

import gc
import time

import numpy as np


def bench_jitter(rate_hz: float = 250.0, duration_s: float = 60.0, realtime_priority: int = 0) -> dict:
    """Sleep to every 1/rate_hz deadline for duration_s; lateness percentiles (ms), stalls (lateness >= one
    period) and the worst wake-ups with their times (s from the start)."""
    period = 1.0 / rate_hz
    sched = "default"
    if realtime_priority:
        from ssm_mbrl_ros.ros.realtime import set_fifo_priority

        sched = set_fifo_priority(realtime_priority)
    n = int(round(duration_s * rate_hz))
    late = np.empty(n)
    gc_was = gc.isenabled()
    gc.disable()  # the loop allocates nothing per cycle worth collecting; a collection is not the host's jitter
    try:
        t0 = time.perf_counter() + period
        for i in range(n):
            due = t0 + i * period
            while True:
                rest = due - time.perf_counter()
                if rest <= 0:
                    break
                time.sleep(rest)
            late[i] = time.perf_counter() - due
    finally:
        if gc_was:
            gc.enable()
    late_ms = late * 1e3
    worst = np.argsort(late_ms)[::-1][:5]
    return {"rate_hz": rate_hz, "duration_s": duration_s, "cycles": n, "scheduling": sched,
            "lateness_ms": {"p50": float(np.percentile(late_ms, 50)), "p99": float(np.percentile(late_ms, 99)),
                            "p999": float(np.percentile(late_ms, 99.9)), "max": float(late_ms.max())},
            "stalls": int((late >= period).sum()),
            "late_over_1ms": int((late_ms >= 1.0).sum()),
            "worst": [{"t_s": round(float(i * period), 3), "late_ms": round(float(late_ms[i]), 3)} for i in worst]}
