"""PX4 telemetry messages -> ENU/FLU vehicle state with receive stamps (via core/frames.py).

Accepted: ATTITUDE_QUATERNION (q FRD->NED, body rates FRD), LOCAL_POSITION_NED (position and
velocity NED), ODOMETRY (frame LOCAL_NED / LOCAL_FRD, velocity in the body frame if
child_frame_id is BODY_FRD, else NED), HIGHRES_IMU (FRD accel m/s^2, gyro rad/s), SYS_STATUS
(battery). `stamp_s` fields are receive times on the caller's clock (time.monotonic by default);
`fc_time_s` fields are the autopilot's own time stamps.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ssm_mbrl_ros.core.frames import (attitude_ned_frd_to_enu_flu, frd_to_flu, ned_to_enu, quat_normalize,
                                      quat_rotate)

MAV_FRAME_BODY_FRD = 12


def _finite(*vals) -> bool:
    return bool(np.all(np.isfinite(np.asarray(vals, dtype=float))))


@dataclass
class Telemetry:
    """Latest vehicle state from the flight controller (ENU world, FLU body, SI units)."""

    pos_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    vel_mps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    quat_wxyz: np.ndarray = field(default_factory=lambda: np.array([1.0, 0, 0, 0]))
    rates_radps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    acc_flu_mps2: np.ndarray = field(default_factory=lambda: np.zeros(3))
    gyro_flu_radps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    battery_fraction: float | None = None
    prearm_ok: bool | None = None  # SYS_STATUS pre-arm check bit (None when the FC does not report one)
    sys_status_seen: bool = False  # a SYS_STATUS has arrived
    battery_voltage_v: float | None = None
    pos_stamp_s: float | None = None
    att_stamp_s: float | None = None
    imu_stamp_s: float | None = None
    fc_time_s: float | None = None
    pos_fc_s: float | None = None  # autopilot time of the position/velocity in use, s
    att_fc_s: float | None = None  # autopilot time of the attitude/rates in use, s

    @property
    def stamp_s(self) -> float | None:
        """Receive time of the oldest part of the full state (None until both pose parts arrived)."""
        if self.pos_stamp_s is None or self.att_stamp_s is None:
            return None
        return min(self.pos_stamp_s, self.att_stamp_s)

    @property
    def fc_stamp_s(self) -> float | None:
        """Autopilot time of the oldest part of the full state, s (None until both pose parts arrived)."""
        if self.pos_fc_s is None or self.att_fc_s is None:
            return None
        return min(self.pos_fc_s, self.att_fc_s)

    def state17(self) -> np.ndarray:
        """State vector (17,) in the simulator layout (sim/state.py); rotor speeds are zero (unknown)."""
        return np.concatenate([self.pos_m, self.quat_wxyz, self.vel_mps, self.rates_radps, np.zeros(4)])

    def update(self, msg, now_s: float) -> bool:
        """Fold one pymavlink message into the state; returns True if it was a used, valid telemetry message."""
        kind = msg.get_type()
        if kind == "ATTITUDE_QUATERNION":
            q = [msg.q1, msg.q2, msg.q3, msg.q4]
            if not _finite(*q, msg.rollspeed, msg.pitchspeed, msg.yawspeed) or np.linalg.norm(q) < 0.5:
                return False
            self.quat_wxyz = attitude_ned_frd_to_enu_flu(quat_normalize(np.asarray(q)))
            self.rates_radps = frd_to_flu(np.array([msg.rollspeed, msg.pitchspeed, msg.yawspeed]))
            self.att_stamp_s, self.fc_time_s = now_s, msg.time_boot_ms * 1e-3
            self.att_fc_s = self.fc_time_s
            return True
        if kind == "LOCAL_POSITION_NED":
            vals = [msg.x, msg.y, msg.z, msg.vx, msg.vy, msg.vz]
            if not _finite(*vals):
                return False
            self.pos_m = ned_to_enu(np.array(vals[:3]))
            self.vel_mps = ned_to_enu(np.array(vals[3:]))
            self.pos_stamp_s, self.fc_time_s = now_s, msg.time_boot_ms * 1e-3
            self.pos_fc_s = self.fc_time_s
            return True
        if kind == "ODOMETRY":
            q = list(msg.q)
            vals = [msg.x, msg.y, msg.z, msg.vx, msg.vy, msg.vz, msg.rollspeed, msg.pitchspeed, msg.yawspeed]
            if not _finite(*vals, *q) or np.linalg.norm(q) < 0.5:
                return False
            q_ned_frd = quat_normalize(np.asarray(q))
            vel = np.array(vals[3:6])
            if msg.child_frame_id == MAV_FRAME_BODY_FRD:  # body-frame velocity -> NED
                vel = quat_rotate(q_ned_frd, vel)
            self.pos_m = ned_to_enu(np.array(vals[:3]))
            self.vel_mps = ned_to_enu(vel)
            self.quat_wxyz = attitude_ned_frd_to_enu_flu(q_ned_frd)
            self.rates_radps = frd_to_flu(np.array(vals[6:9]))
            self.pos_stamp_s = self.att_stamp_s = now_s
            self.fc_time_s = self.pos_fc_s = self.att_fc_s = msg.time_usec * 1e-6
            return True
        if kind == "HIGHRES_IMU":
            vals = [msg.xacc, msg.yacc, msg.zacc, msg.xgyro, msg.ygyro, msg.zgyro]
            if not _finite(*vals):
                return False
            self.acc_flu_mps2 = frd_to_flu(np.array(vals[:3]))
            self.gyro_flu_radps = frd_to_flu(np.array(vals[3:]))
            self.imu_stamp_s = now_s
            return True
        if kind == "SYS_STATUS":
            self.battery_fraction = None if msg.battery_remaining < 0 else msg.battery_remaining / 100.0
            self.battery_voltage_v = None if msg.voltage_battery == 0xFFFF else msg.voltage_battery * 1e-3
            prearm = 1 << 28  # MAV_SYS_STATUS_PREARM_CHECK
            present = msg.onboard_control_sensors_present & prearm
            self.prearm_ok = bool(msg.onboard_control_sensors_health & prearm) if present else None
            self.sys_status_seen = True
            return True
        return False
