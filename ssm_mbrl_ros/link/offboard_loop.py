"""The offboard control loop: state from the link -> controller -> supervisor -> PX4 setpoint or failsafe.

The controller is any callable `controller(state17, t_s) -> ctbr (4,)` (state in the simulator layout,
ENU/FLU; ctbr = thrust m/s^2 + FLU rates rad/s), so an ONNX policy runtime can replace the
geometric controller used here. Sequence: wait for the FC, set telemetry rates, wait for fresh
state, pre-arm checks, then a loop that streams setpoints; once the stream runs the drone is armed
and switched to OFFBOARD. A supervisor failsafe sends the PX4 mode command (HOLD/LAND) or the force
disarm in the same control period (link/offboard_session.py, shared with the ROS fc_link node).

Two ways to pace the loop (fly(lockstep=...)):
- real time (default): a wall-clock timer at rate_hz; a helper thread arms and enters OFFBOARD.
- lockstep (with MavLink(lockstep=True) against `fc-sim --lockstep`): each step waits for the FC's
  next simulated step (SYSTEM_TIME marker, all of that step's telemetry in), computes and sends one
  setpoint, which advances the simulation one period; arming and OFFBOARD happen in the loop, each
  acknowledged before the next setpoint, so the whole flight is a deterministic function of the
  seed. Durations and log times are simulated time; the flight runs as fast as the two processes.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from ssm_mbrl_ros.link.mavlink_link import LinkError, MavLink
from ssm_mbrl_ros.link.offboard_session import FlightLog, OffboardSession, send_failsafe  # noqa: F401 (re-export)
from ssm_mbrl_ros.link.supervisor import Supervisor

TELEMETRY_RATES_HZ = {"ATTITUDE_QUATERNION": 100.0, "LOCAL_POSITION_NED": 100.0, "HIGHRES_IMU": 50.0,
                      "SYS_STATUS": 2.0}


class GeometricPolicy:
    """The geometric controller as a `state17 -> ctbr` callable holding a fixed position (ENU m, yaw 0).

    Over a MAVLink link the attitude loop closes through the link's delay (tens of ms, more with
    jitter), so by default it uses softer gains than the simulator yardstick (LINK_GAINS) and a
    "carrot" reference: at most carrot_m ahead of the vehicle toward the target, which bounds the
    take-off and approach accelerations instead of launching at full thrust.
    """

    def __init__(self, vehicle, target_pos_m, control_dt_s: float = 0.01, gains=None, carrot_m: float = 1.0):
        from ssm_mbrl_ros.control.geometric_single import SingleGeometricController

        self.ctrl = SingleGeometricController(vehicle, gains or link_gains(), control_dt_s=control_dt_s)
        self.target = np.asarray(target_pos_m, dtype=float)
        self.carrot_m = carrot_m

    def __call__(self, state17: np.ndarray, t_s: float) -> np.ndarray:
        state17 = np.asarray(state17, float)
        err = self.target - state17[0:3]
        dist = float(np.linalg.norm(err))
        ref = self.target if dist <= self.carrot_m else state17[0:3] + err * (self.carrot_m / dist)
        return self.ctrl.compute(state17, ref)


def link_gains():
    """Geometric gains for flying through a link with up to ~100 ms round-trip delay (softer attitude loop)."""
    from ssm_mbrl_ros.control.geometric import GeometricGains

    return GeometricGains(kp_pos=(5.0, 5.0, 6.0), kv_pos=(4.0, 4.0, 4.5), ki_pos=(1.5, 1.5, 2.0),
                          k_att=(6.0, 6.0, 3.0))


def connect(link: MavLink, max_state_age_s: float = 0.05, timeout_s: float = 10.0) -> None:
    """FC heartbeat, telemetry rates (TELEMETRY_RATES_HZ), fresh state, a battery report, the FC's pre-arm checks
    passed (raises LinkError)."""
    link.wait_for_fc(timeout_s)
    for name, hz in TELEMETRY_RATES_HZ.items():
        link.set_message_interval(name, hz)
    link.wait_for_state(timeout_s, max_state_age_s)
    deadline = time.monotonic() + timeout_s
    while link.snapshot().battery_fraction is None and time.monotonic() < deadline:  # SYS_STATUS is slow (1-2 Hz)
        time.sleep(0.01)
    link.wait_for_prearm(max(0.0, deadline - time.monotonic()))


def prepare(link: MavLink, supervisor: Supervisor, model_validated: bool = True, timeout_s: float = 10.0) -> None:
    """Handshake: connect() then the supervisor's pre-arm checks (raises LinkError)."""
    connect(link, supervisor.cfg.max_state_age_s, timeout_s)
    result = OffboardSession(link, supervisor).prearm(link.clock(), link.snapshot(), model_validated)
    if not result.ok:
        raise LinkError("pre-arm checks failed: " + "; ".join(result.failures))


def fly(link: MavLink, controller, supervisor: Supervisor, duration_s: float, rate_hz: float = 100.0,
        inject=None, kill=None, arm_after_s: float = 0.2, stop_when=None, lockstep: bool = False,
        lockstep_timeout_s: float = 2.0) -> FlightLog:
    """Run the offboard loop for duration_s (link clock: wall, or simulated in lockstep) and return the FlightLog.

    inject(now_s, t_since_offboard_s) may return a dict overriding this step's inputs to the
    supervisor (keys: stamp_s, pos_m, quat_wxyz, ctbr, policy_s, surprise, battery_fraction), for
    failsafe tests; kill is an optional threading.Event acting as the operator kill switch;
    stop_when(log, now_s) -> bool may end the flight early. lockstep=True steps on the FC's simulated
    clock (module doc; needs a lockstep link); no tick within lockstep_timeout_s of wall time counts
    as lost state (the supervisor's stale_state failsafe) and ends the flight. Keep lockstep_timeout_s
    above fc-sim's (1 s): after a failsafe no setpoint drives the FC, which free-runs only after its own
    timeout.
    """
    if lockstep and not link.lockstep:
        raise LinkError("fly(lockstep=True) needs MavLink(lockstep=True) against fc-sim --lockstep")
    log = FlightLog()
    session = OffboardSession(link, supervisor, log)
    dt = 1.0 / rate_hz
    done = threading.Event()

    def handshake():  # real time: arm + OFFBOARD off the control thread
        time.sleep(arm_after_s)
        while not link.setpoints_streaming():
            if done.is_set() or supervisor.failsafe is not None:
                return
            time.sleep(dt)
        session.engage()

    helper = None
    if not lockstep:
        helper = threading.Thread(target=handshake, name="offboard-handshake", daemon=True)
        helper.start()
    wall0 = time.monotonic()
    start = link.clock()
    next_t, last_t, engaged, tick = start, None, False, None
    while link.clock() - start < duration_s:
        ticked = True
        if lockstep:
            ticked = link.wait_for_tick(tick, lockstep_timeout_s)
            tick = link.clock()
            if ticked and tick - start >= duration_s:
                break
            if not ticked:
                log.errors.append(f"lockstep: no FC step within {lockstep_timeout_s} s (is fc-sim running with "
                                  f"--lockstep?)")
            elif not engaged and tick - start >= arm_after_s and session.ready():
                engaged = True
                session.engage()  # ACKed before this step's setpoint: applied at a deterministic time
        now = link.clock()
        if stop_when is not None and stop_when(log, now):
            break
        if last_t is not None:
            log.loop_dt_s.append(now - last_t)
        last_t = now
        tel = link.snapshot()
        state17 = tel.state17()
        t0 = time.perf_counter()
        ctbr = np.asarray(controller(state17, now), dtype=float)
        policy_s = time.perf_counter() - t0
        x = {}
        if inject is not None and log.offboard_s is not None:
            x = inject(now, now - log.offboard_s) or {}
        if not ticked:
            x["stamp_s"] = None  # no word from the FC: treat as lost state
        d = session.step(now, tel, ctbr, policy_s, getattr(controller, "last_surprise", None),
                         kill=kill is not None and kill.is_set(), overrides=x)
        log.sent_ctbr.append(d.ctbr)
        log.t_s.append(now)
        log.pos_m.append(state17[0:3].copy())
        log.vel_mps.append(state17[7:10].copy())
        log.quat_wxyz.append(state17[3:7].copy())
        log.ctbr.append(ctbr)
        log.policy_s.append(policy_s)
        if not ticked:
            break
        if not lockstep:
            next_t += dt
            sleep = next_t - link.clock()
            if sleep > 0:
                time.sleep(sleep)
            else:
                next_t = link.clock()  # overran: do not burst to catch up
    done.set()
    if helper is not None:
        helper.join(1.0)
    log.wall_s = time.monotonic() - wall0
    return log
