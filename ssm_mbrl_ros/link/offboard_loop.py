"""The offboard control loop: state from the link -> controller -> supervisor -> PX4 setpoint or failsafe.

The controller is any callable `controller(state17, t_s) -> ctbr (4,)` (state in the simulator layout,
ENU/FLU; ctbr = thrust m/s^2 + FLU rates rad/s), so an ONNX policy runtime can replace the
geometric controller used here. Sequence: wait for the FC, set telemetry rates, wait for fresh
state, pre-arm checks, then a fixed-rate loop that streams setpoints while a helper thread arms
and switches to OFFBOARD once the stream runs. A supervisor failsafe sends the PX4 mode command
(HOLD/LAND) or the force disarm in the same control period, then keeps retrying until acknowledged.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ssm_mbrl_ros.link.mavlink_link import LinkError, MavLink, mavutil
from ssm_mbrl_ros.link.supervisor import Action, Decision, StateSample, Supervisor

logger = logging.getLogger(__name__)
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
        import torch

        from ssm_mbrl_ros.control.geometric import GeometricController

        self._torch = torch
        self.ctrl = GeometricController(vehicle, 1, gains or link_gains(), control_dt_s=control_dt_s,
                                        dtype=torch.float64)
        self.target = np.asarray(target_pos_m, dtype=float)
        self.carrot_m = carrot_m

    def __call__(self, state17: np.ndarray, t_s: float) -> np.ndarray:
        state17 = np.asarray(state17, float)
        err = self.target - state17[0:3]
        dist = float(np.linalg.norm(err))
        ref = self.target if dist <= self.carrot_m else state17[0:3] + err * (self.carrot_m / dist)
        s = self._torch.as_tensor(state17[None])
        return self.ctrl.compute(s, self._torch.as_tensor(ref[None]))[0].numpy()


def link_gains():
    """Geometric gains for flying through a link with up to ~100 ms round-trip delay (softer attitude loop)."""
    from ssm_mbrl_ros.control.geometric import GeometricGains

    return GeometricGains(kp_pos=(5.0, 5.0, 6.0), kv_pos=(4.0, 4.0, 4.5), ki_pos=(1.5, 1.5, 2.0),
                          k_att=(6.0, 6.0, 3.0))


@dataclass
class FlightLog:
    """What one offboard flight did (times on the loop's monotonic clock, s)."""

    t_s: list = field(default_factory=list)
    pos_m: list = field(default_factory=list)
    vel_mps: list = field(default_factory=list)
    quat_wxyz: list = field(default_factory=list)
    ctbr: list = field(default_factory=list)  # controller output before the supervisor's clamps
    sent_ctbr: list = field(default_factory=list)  # what went to the FC (None during a failsafe)
    loop_dt_s: list = field(default_factory=list)
    policy_s: list = field(default_factory=list)
    offboard_s: float | None = None  # when OFFBOARD was acknowledged
    failsafe: Decision | None = None
    failsafe_sent_s: float | None = None  # when the failsafe command went out
    failsafe_ack_s: float | None = None  # when the FC acknowledged the failsafe command
    failsafe_mode_s: float | None = None  # when the FC heartbeat (1 Hz) first showed the failsafe mode
    errors: list = field(default_factory=list)

    def rmse_m(self, target_pos_m, after_s: float = 0.0) -> float:
        """Position RMSE to a fixed target over samples after `after_s` s from the OFFBOARD switch."""
        if self.offboard_s is None or not self.t_s:
            return float("nan")
        t, p = np.asarray(self.t_s), np.asarray(self.pos_m)
        sel = t >= self.offboard_s + after_s
        if not sel.any():
            return float("nan")
        return float(np.sqrt(np.mean(np.sum((p[sel] - np.asarray(target_pos_m)) ** 2, axis=1))))


def prepare(link: MavLink, supervisor: Supervisor, model_validated: bool = True, timeout_s: float = 10.0) -> None:
    """Handshake: FC heartbeat, telemetry rates, fresh state, pre-arm checks (raises LinkError)."""
    link.wait_for_fc(timeout_s)
    for name, hz in TELEMETRY_RATES_HZ.items():
        link.set_message_interval(name, hz)
    link.wait_for_state(timeout_s, supervisor.cfg.max_state_age_s)
    deadline = link.clock() + timeout_s
    while link.snapshot().battery_fraction is None and link.clock() < deadline:  # SYS_STATUS is slow (1-2 Hz)
        time.sleep(0.01)
    tel = link.snapshot()
    now = link.clock()
    sample = StateSample(tel.pos_m, tel.quat_wxyz, tel.stamp_s)
    result = supervisor.prearm(now, sample, link.fc_heartbeat_s, model_validated, tel.battery_fraction)
    if not result.ok:
        raise LinkError("pre-arm checks failed: " + "; ".join(result.failures))


def send_failsafe(link: MavLink, decision: Decision):
    """Command PX4 into the failsafe's mode now (first send in this thread), then log the reason
    (logger + STATUSTEXT to the FC/ground station); returns the ACK future."""
    m = mavutil.mavlink
    if decision.action is Action.KILL:
        fut = link.command_async(m.MAV_CMD_COMPONENT_ARM_DISARM, [0.0, 21196.0])
    else:
        fut = link.command_async(m.MAV_CMD_DO_SET_MODE, link.mode_params(decision.action.name))
    text = f"failsafe {decision.reason}: {decision.action.name}"
    logger.warning(text)
    link.send_statustext(text, m.MAV_SEVERITY_CRITICAL)
    return fut


def fly(link: MavLink, controller, supervisor: Supervisor, duration_s: float, rate_hz: float = 100.0,
        inject=None, kill=None, arm_after_s: float = 0.2, stop_when=None) -> FlightLog:
    """Run the offboard loop for duration_s at rate_hz and return the FlightLog.

    inject(now_s, t_since_offboard_s) may return a dict overriding this step's inputs to the
    supervisor (keys: stamp_s, pos_m, quat_wxyz, ctbr, policy_s, surprise, battery_fraction), for
    failsafe tests; kill is an optional threading.Event acting as the operator kill switch;
    stop_when(log, now_s) -> bool may end the flight early.
    """
    log = FlightLog()
    dt = 1.0 / rate_hz
    done = threading.Event()

    def handshake():
        try:
            time.sleep(arm_after_s)
            while not link.setpoints_streaming():
                if done.is_set() or supervisor.failsafe is not None:
                    return
                time.sleep(dt)
            link.arm()
            if supervisor.failsafe is not None:  # never enter OFFBOARD after a failsafe
                return
            link.set_mode("OFFBOARD")
            log.offboard_s = link.clock()
        except Exception as exc:  # reported in the log; the loop keeps the supervisor in charge
            log.errors.append(f"handshake: {exc}")

    def acked(fut):
        try:
            result = fut.result()
            if result == mavutil.mavlink.MAV_RESULT_ACCEPTED:
                log.failsafe_ack_s = link.clock()
            else:
                log.errors.append(f"failsafe command refused (MAV_RESULT {result})")
        except Exception as exc:
            log.errors.append(f"failsafe command: {exc}")

    helper = threading.Thread(target=handshake, name="offboard-handshake", daemon=True)
    helper.start()
    start = link.clock()
    next_t, last_t, resent_s = start, None, start
    while link.clock() - start < duration_s:
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
        x = dict(stamp_s=tel.stamp_s, pos_m=tel.pos_m, quat_wxyz=tel.quat_wxyz, ctbr=ctbr,
                 policy_s=time.perf_counter() - t0, surprise=getattr(controller, "last_surprise", None),
                 battery_fraction=tel.battery_fraction)
        if inject is not None and log.offboard_s is not None:
            x.update(inject(now, now - log.offboard_s) or {})
        if kill is not None and kill.is_set() and (supervisor.failsafe is None
                                                   or supervisor.failsafe.action is not Action.KILL):
            supervisor.kill(now)  # the operator kill also overrides an earlier HOLD/LAND
        sample = None if x["stamp_s"] is None else StateSample(x["pos_m"], x["quat_wxyz"], x["stamp_s"])
        d = supervisor.step(now, sample, x["ctbr"], x["policy_s"], x["surprise"], link.fc_heartbeat_s,
                            x["battery_fraction"])
        log.sent_ctbr.append(d.ctbr)
        if d.action is Action.STREAM:
            link.send_ctbr(d.ctbr)
        elif log.failsafe is None or d.action is not log.failsafe.action:
            log.failsafe = d
            fut = send_failsafe(link, d)
            log.failsafe_sent_s = max(link.last_command_sent_s.values())  # stamped just before the bytes left
            fut.add_done_callback(acked)
        elif log.failsafe_mode_s is None and _fc_in(link, d.action):
            log.failsafe_mode_s = link.clock()
        elif (link.mode == "OFFBOARD" and log.failsafe_ack_s is not None and now - resent_s > 0.5
              and link.fc_heartbeat_s > log.failsafe_ack_s + 0.1):
            send_failsafe(link, d)  # the FC still (or again) reports OFFBOARD after acking: a late switch raced us
            resent_s = now
        log.t_s.append(now)
        log.pos_m.append(state17[0:3].copy())
        log.vel_mps.append(state17[7:10].copy())
        log.quat_wxyz.append(state17[3:7].copy())
        log.ctbr.append(ctbr)
        log.policy_s.append(x["policy_s"])
        next_t += dt
        sleep = next_t - link.clock()
        if sleep > 0:
            time.sleep(sleep)
        else:
            next_t = link.clock()  # overran: do not burst to catch up
    done.set()
    helper.join(1.0)
    return log


def _fc_in(link: MavLink, action: Action) -> bool:
    """Whether the FC reports the failsafe's mode (or disarmed after a kill)."""
    if action is Action.KILL:
        return not link.armed
    return link.mode == action.name
