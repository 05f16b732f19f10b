"""`bench fc`: hover through fc-sim over MAVLink/UDP and failsafe reaction times of the offboard loop.

One fc-sim subprocess serves every flight: a hover of `duration_s` (position RMSE after a settle
time, control-loop timing), then one short flight per failsafe reason in which the trigger is
injected 1 s after OFFBOARD. Reaction = time from the control step that first sees the trigger
to the failsafe command (PX4 mode change or force disarm) leaving our socket; the FC's COMMAND_ACK
time is reported beside it. Between flights the supervisor is reset and the drone re-armed.
"""
from __future__ import annotations

import math
import threading
import time

import numpy as np

from ssm_mbrl_ros.core.frames import quat_from_euler_zyx
from ssm_mbrl_ros.link.offboard_loop import GeometricPolicy, fly, prepare
from ssm_mbrl_ros.link.rehearsal import default_supervisor_config, session, summarize
from ssm_mbrl_ros.link.supervisor import Supervisor


def failsafe_injections(kill: threading.Event, at_s: float = 1.0) -> dict:
    """reason -> inject(now, t_since_offboard) producing that trigger from at_s after OFFBOARD on."""
    tilted = quat_from_euler_zyx(math.radians(75.0), 0.0, 0.0)

    def after(overrides_fn):
        return lambda now, t: overrides_fn(now) if t >= at_s else None

    def kill_fn(now, t):
        if t >= at_s:
            kill.set()

    return {
        "stale_state": after(lambda now: {"stamp_s": now - 0.06}),
        "nan_action": after(lambda now: {"ctbr": np.full(4, np.nan)}),
        "geofence": after(lambda now: {"pos_m": np.array([0.0, 0.0, 10.0])}),
        "tilt": after(lambda now: {"quat_wxyz": tilted}),
        "surprise": after(lambda now: {"surprise": 1e3}),
        "overrun": after(lambda now: {"policy_s": 0.05}),
        "battery": after(lambda now: {"battery_fraction": 0.05}),
        "operator_kill": kill_fn,
    }


def bench_fc(duration_s: float = 60.0, target_pos_m=(0.0, 0.0, 1.5), settle_s: float = 5.0,
             vehicle_name: str = "agile5", failsafes: bool = True, fc_overrides=(),
             inject_at_s: float = 1.0, failsafe_flight_s: float = 1.6) -> dict:
    """Hover RMSE and loop timing over duration_s at 100 Hz, plus failsafe reaction times, as a dict."""
    out: dict = {"fc_sim_overrides": list(fc_overrides), "vehicle": vehicle_name, "rate_hz": 100.0,
                 "duration_s": duration_s, "target_pos_m": list(target_pos_m)}
    with session(vehicle_name, fc_overrides) as (link, vehicle, _proc):
        policy = GeometricPolicy(vehicle, target_pos_m)
        policy(np.r_[0.0, 0, 0, 1, 0, 0, 0, np.zeros(10)], 0.0)  # warm-up
        sup_cfg = default_supervisor_config(vehicle, surprise_threshold=1.0, surprise_steps=5, overrun_steps=3)
        sup = Supervisor(sup_cfg)
        prepare(link, sup, timeout_s=30.0)
        log = fly(link, policy, sup, duration_s + 1.0)  # + about the arming time before OFFBOARD
        out.update(summarize(log, target_pos_m, settle_s))
        out["failsafe_reaction_ms"], out["failsafe_ack_ms"] = {}, {}
        if not failsafes:
            return out
        kill = threading.Event()
        for reason, inject in failsafe_injections(kill, inject_at_s).items():
            kill.clear()
            sup.reset()
            log = fly(link, policy, sup, failsafe_flight_s, inject=inject, kill=kill)
            ok = log.failsafe is not None and log.failsafe.reason == reason
            out["failsafe_reaction_ms"][reason] = (1e3 * (log.failsafe_sent_s - log.failsafe.triggered_s)
                                                   if ok else None)
            deadline = time.monotonic() + 1.0
            while log.failsafe_ack_s is None and time.monotonic() < deadline:
                time.sleep(0.01)
            out["failsafe_ack_ms"][reason] = (1e3 * (log.failsafe_ack_s - log.failsafe.triggered_s)
                                              if ok and log.failsafe_ack_s else None)
            out.setdefault("errors_failsafe_flights", []).extend(f"{reason}: {e}" for e in log.errors)
            if reason == "operator_kill":
                time.sleep(1.5)  # let it fall and settle on the ground before anything else
            else:
                time.sleep(0.3)
    vals = [v for v in out["failsafe_reaction_ms"].values() if v is not None]
    out["failsafe_reaction_ms_max"] = max(vals) if vals else None
    complete = bool(vals) and len(vals) == len(out["failsafe_reaction_ms"])
    out["failsafes_within_one_period"] = complete and max(vals) <= 1e3 / out["rate_hz"]
    return out
