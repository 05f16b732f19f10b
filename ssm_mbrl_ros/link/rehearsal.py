"""Rehearse an offboard flight end to end: fc-sim in a subprocess, our link, supervisor and controller.

controller -> supervisor -> MAVLink (UDP loopback) -> fc-sim (QuadrotorSim) -> telemetry -> controller.
The fc-sim runs as its own process (`python -m ssm_mbrl_ros.cli.fc_sim fc-sim ...`) so its physics
never competes with the control loop for the Python GIL, like a real autopilot.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np

from ssm_mbrl_ros.link.mavlink_link import MavLink, bound_port
from ssm_mbrl_ros.link.offboard_loop import GeometricPolicy, fly, prepare
from ssm_mbrl_ros.link.supervisor import Supervisor, default_supervisor_config
from ssm_mbrl_ros.link.thrust_map import ThrustMap
from ssm_mbrl_ros.link.transport import SIGNING_KEY_ENV


@contextmanager
def fc_sim_process(port: int, overrides=(), vehicle: str = "agile5", lockstep: bool = False,
                   signing_key: bytes | None = None):
    """Start `ssm-mbrl fc-sim` sending to 127.0.0.1:port in a subprocess; stops it (by pid) on exit. A signing key
    reaches it through the environment (never the command line, which other users can read)."""
    cmd = [sys.executable, "-m", "ssm_mbrl_ros.cli.fc_sim", "fc-sim", "--url", f"udpout:127.0.0.1:{port}",
           "--vehicle", vehicle] + (["--lockstep"] if lockstep else [])
    for o in overrides:
        cmd += ["--set", o]
    env = {k: v for k, v in os.environ.items() if k != SIGNING_KEY_ENV}
    if signing_key is not None:
        env[SIGNING_KEY_ENV] = signing_key.hex()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        yield proc
    finally:
        stop_and_read(proc)


def stop_and_read(proc: subprocess.Popen, timeout_s: float = 10.0) -> str:
    """Stop fc-sim (SIGTERM, then SIGKILL after timeout_s: on a loaded machine it can take seconds to wind down) and
    return its output; the flight's results never hang on it. Calling it again returns the same output (it is kept on
    proc.fc_output), so the output stays readable after fc_sim_process has stopped the process."""
    if getattr(proc, "fc_output", None) is not None:
        return proc.fc_output
    if proc.poll() is None:
        proc.terminate()
    try:
        out = proc.communicate(timeout=timeout_s)[0] or ""
    except subprocess.TimeoutExpired:
        proc.kill()
        out = proc.communicate(timeout=timeout_s)[0] or ""
        out += f"\n[fc-sim did not stop within {timeout_s:.0f} s of SIGTERM and was killed]"
    proc.fc_output = out
    return out


@contextmanager
def session(vehicle_name: str = "agile5", fc_overrides=(), lockstep: bool = False, signing_key: bytes | None = None):
    """A link connected to a freshly started fc-sim subprocess (both signed with signing_key if given); yields
    (link, vehicle, process)."""
    from ssm_mbrl_ros.sim.vehicle import load_vehicle

    vehicle = load_vehicle(vehicle_name)
    with MavLink("udpin:127.0.0.1:0", ThrustMap.for_vehicle(vehicle), lockstep=lockstep,
                 signing_key=signing_key) as link:
        with fc_sim_process(bound_port(link.conn), fc_overrides, vehicle_name, lockstep, signing_key) as proc:
            yield link, vehicle, proc


def summarize(log, target_pos_m, settle_s: float) -> dict:
    """Hover RMSE, loop timing and failsafe outcome of one FlightLog as a JSON-ready dict."""
    dts = np.asarray(log.loop_dt_s) if log.loop_dt_s else np.zeros(1)
    return {
        "hover_rmse_m": log.rmse_m(target_pos_m, settle_s),
        "settle_s": settle_s,
        "rmse_window_s": (log.t_s[-1] - log.offboard_s - settle_s) if log.offboard_s and log.t_s else None,
        "final_pos_m": [float(x) for x in log.pos_m[-1]] if log.pos_m else None,
        "loop_period_ms": {"mean": 1e3 * float(dts.mean()), "p99": 1e3 * float(np.quantile(dts, 0.99)),
                           "max": 1e3 * float(dts.max())},
        "policy_ms_mean": 1e3 * float(np.mean(log.policy_s)) if log.policy_s else None,
        "wall_s": log.wall_s,
        "realtime_factor": (log.t_s[-1] - log.t_s[0]) / log.wall_s if log.wall_s and len(log.t_s) > 1 else None,
        "failsafe": None if log.failsafe is None else log.failsafe.reason,
        "errors": list(log.errors),
    }


def rehearse(duration_s: float = 10.0, target_pos_m=(0.0, 0.0, 1.5), vehicle_name: str = "agile5",
             fc_overrides=(), supervisor_overrides: dict | None = None, settle_s: float = 3.0,
             inject=None, controller=None, land: bool = True, lockstep: bool = False,
             signing_key: bytes | None = None) -> dict:
    """Fly `duration_s` s of offboard hover through fc-sim; returns summarize() plus the FlightLog.

    lockstep=True runs fc-sim --lockstep and the loop on its simulated clock: duration_s and settle_s are
    simulated seconds, and the flight takes as long as the computation (faster than real time here).
    """
    with session(vehicle_name, fc_overrides, lockstep, signing_key) as (link, vehicle, proc):
        sup = Supervisor(default_supervisor_config(vehicle, **(supervisor_overrides or {})))
        controller = controller or GeometricPolicy(vehicle, target_pos_m)
        controller(np.r_[0.0, 0, 0, 1, 0, 0, 0, np.zeros(10)], 0.0)  # warm-up: a first ONNX/torch call is slow
        prepare(link, sup, timeout_s=30.0)  # the subprocess imports numpy, pymavlink and the vehicle first
        log = fly(link, controller, sup, duration_s, inject=inject, lockstep=lockstep)
        if land and log.failsafe is None:
            link.set_mode("LAND")
            # PX4 heartbeats come at 1 Hz; in lockstep fc-sim first waits its timeout (1 s) for a setpoint
            wait_until(lambda: link.mode == "LAND", 3.5 if lockstep else 1.5)
        final_mode = link.mode
        fc_output = stop_and_read(proc)
        refused = link.security_counts()
    return {**summarize(log, target_pos_m, settle_s), "duration_s": duration_s, "final_mode": final_mode,
            "signed": signing_key is not None, "link_refused": refused,
            "fc_sim_output": fc_output[-2000:], "log": log}


def wait_until(pred, timeout_s: float, poll_s: float = 0.01) -> bool:
    """Poll pred() until true or timeout; returns the last value."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(poll_s)
    return bool(pred())
