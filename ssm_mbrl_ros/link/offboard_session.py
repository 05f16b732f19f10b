"""The safety path of one offboard flight, shared by link/offboard_loop.fly and the ROS fc_link node.

Per control step: latest state + command -> Supervisor (stale state, stale command, NaN, geofence,
tilt, battery, heartbeat, surprise, overrun; clamps and thrust slew) -> either SET_ATTITUDE_TARGET
or, on a failsafe, the PX4 command for it (HOLD/LAND mode or force disarm) sent in the same step,
its reason logged and sent as STATUSTEXT, its ACK recorded, re-sent while PX4 still reports
OFFBOARD after acknowledging (a late mode switch raced us). Plus the pre-arm check and the
arm + OFFBOARD handshake. Works on any object with the MavLink surface (mavlink_link.MavLink,
px4_msgs_bridge.Px4MsgsLink); all times are on `link.clock()`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ssm_mbrl_ros.link.px4_modes import FORCE_DISARM_MAGIC
from ssm_mbrl_ros.link.supervisor import Action, Decision, PreArmResult, StateSample, Supervisor

logger = logging.getLogger(__name__)
MAV_CMD_COMPONENT_ARM_DISARM = 400  # MAVLink common (PX4's VEHICLE_CMD_COMPONENT_ARM_DISARM has the same id)
MAV_CMD_DO_SET_MODE = 176
MAV_RESULT_ACCEPTED = 0
MAV_SEVERITY_CRITICAL = 2


@dataclass
class FlightLog:
    """What one offboard flight did (times on the link's clock, s: wall monotonic, or simulated in lockstep)."""

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
    wall_s: float | None = None  # wall-clock duration of the loop, s

    def rmse_m(self, target_pos_m, after_s: float = 0.0) -> float:
        """Position RMSE to a fixed target over samples after `after_s` s from the OFFBOARD switch."""
        if self.offboard_s is None or not self.t_s:
            return float("nan")
        t, p = np.asarray(self.t_s), np.asarray(self.pos_m)
        sel = t >= self.offboard_s + after_s
        if not sel.any():
            return float("nan")
        return float(np.sqrt(np.mean(np.sum((p[sel] - np.asarray(target_pos_m)) ** 2, axis=1))))


def send_failsafe(link, decision: Decision):
    """Command PX4 into the failsafe's mode now (first send in this thread), then log the reason
    (logger + STATUSTEXT to the FC/ground station); returns the ACK future."""
    if decision.action is Action.KILL:
        fut = link.command_async(MAV_CMD_COMPONENT_ARM_DISARM, [0.0, FORCE_DISARM_MAGIC])
    else:
        fut = link.command_async(MAV_CMD_DO_SET_MODE, link.mode_params(decision.action.name))
    text = f"failsafe {decision.reason}: {decision.action.name}"
    logger.warning(text)
    link.send_statustext(text, MAV_SEVERITY_CRITICAL)
    return fut


def fc_in(link, action: Action) -> bool:
    """Whether the FC reports the failsafe's mode (or disarmed after a kill)."""
    if action is Action.KILL:
        return not link.armed
    return link.mode == action.name


class OffboardSession:
    """One flight's supervisor + link actions; `step` once per control period, `engage` to arm and enter OFFBOARD."""

    def __init__(self, link, supervisor: Supervisor, log: FlightLog | None = None, on_failsafe=None):
        """on_failsafe(decision): called once per new failsafe action, right after its command went out."""
        self.link, self.sup = link, supervisor
        self.log = log if log is not None else FlightLog()
        self.on_failsafe = on_failsafe
        self._resent_s: float | None = None

    def prearm(self, now_s: float, tel, model_validated: bool = True) -> PreArmResult:
        """Supervisor pre-arm checks on the link's latest telemetry snapshot `tel`."""
        sample = None if tel.stamp_s is None else StateSample(tel.pos_m, tel.quat_wxyz, tel.stamp_s)
        return self.sup.prearm(now_s, sample, self.link.fc_heartbeat_s, model_validated, tel.battery_fraction,
                               getattr(tel, "prearm_ok", None))

    def ready(self) -> bool:
        """No failsafe latched and the setpoint stream runs (PX4 accepts OFFBOARD only then)."""
        return self.sup.failsafe is None and self.link.setpoints_streaming()

    def engage(self) -> bool:
        """Arm, then OFFBOARD (blocking on the FC's ACKs); False with the reason in log.errors if it did not."""
        try:
            self.link.arm()
            if self.sup.failsafe is not None:  # never enter OFFBOARD after a failsafe
                return False
            self.link.set_mode("OFFBOARD")
            self.log.offboard_s = self.link.clock()
            return True
        except Exception as exc:  # the loop keeps the supervisor in charge
            self.log.errors.append(f"handshake: {exc}")
            return False

    def step(self, now_s: float, tel, ctbr, policy_s: float = 0.0, surprise: float | None = None,
             command_s: float | None = None, kill: bool = False, overrides: dict | None = None) -> Decision:
        """Supervise one control step on telemetry snapshot `tel` and act on the decision; returns it.

        overrides may replace this step's supervisor inputs (keys stamp_s, pos_m, quat_wxyz, ctbr, policy_s,
        surprise, battery_fraction) for failsafe tests; kill is the operator kill switch (overrides HOLD/LAND).
        """
        link, sup, log = self.link, self.sup, self.log
        if self._resent_s is None:
            self._resent_s = now_s
        x = dict(stamp_s=tel.stamp_s, pos_m=tel.pos_m, quat_wxyz=tel.quat_wxyz, ctbr=ctbr, policy_s=policy_s,
                 surprise=surprise, battery_fraction=tel.battery_fraction)
        x.update(overrides or {})
        if kill and (sup.failsafe is None or sup.failsafe.action is not Action.KILL):
            sup.kill(now_s)
        sample = None if x["stamp_s"] is None else StateSample(x["pos_m"], x["quat_wxyz"], x["stamp_s"])
        d = sup.step(now_s, sample, x["ctbr"], x["policy_s"], x["surprise"], link.fc_heartbeat_s,
                     x["battery_fraction"], command_s)
        if d.action is Action.STREAM:
            link.send_ctbr(d.ctbr)
        elif log.failsafe is None or d.action is not log.failsafe.action:
            log.failsafe = d
            fut = send_failsafe(link, d)
            log.failsafe_sent_s = max(link.last_command_sent_s.values())  # stamped just before the bytes left
            fut.add_done_callback(self._acked)
            if self.on_failsafe is not None:
                self.on_failsafe(d)
        elif log.failsafe_mode_s is None and fc_in(link, d.action):
            log.failsafe_mode_s = link.clock()
        elif (link.mode == "OFFBOARD" and log.failsafe_ack_s is not None and now_s - self._resent_s > 0.5
              and link.fc_heartbeat_s > log.failsafe_ack_s + 0.1):
            send_failsafe(link, d)  # the FC still (or again) reports OFFBOARD after acking: a late switch raced us
            self._resent_s = now_s
        return d

    def _acked(self, fut) -> None:
        try:
            result = fut.result()
            if result == MAV_RESULT_ACCEPTED:
                self.log.failsafe_ack_s = self.link.clock()
            else:
                self.log.errors.append(f"failsafe command refused (MAV_RESULT {result})")
        except Exception as exc:
            self.log.errors.append(f"failsafe command: {exc}")
