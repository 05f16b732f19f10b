"""PX4 over px4_msgs (uXRCE-DDS) instead of MAVLink: pure conversions and a link object, no rclpy import.

The ROS fc_link node (backend px4_msgs) creates the publishers/subscribers and hands this module
the message classes and a publish function, so everything here is plain Python and unit-tested
with stand-in objects carrying the same field names. Field names relied on (px4_msgs msg/*.msg,
PX4 v1.14+; MESSAGE_VERSION 0 of each unless noted):

  VehicleRatesSetpoint  timestamp (uint64 us); roll, pitch, yaw (float32 rad/s, body FRD);
                        thrust_body (float32[3], normalised, body FRD: multicopter [0, 0, -throttle]);
                        reset_integral (bool)
  OffboardControlMode   timestamp; position, velocity, acceleration, attitude, body_rate,
                        thrust_and_torque, direct_actuator (bool); we send body_rate only
  VehicleOdometry       timestamp, timestamp_sample (uint64 us); pose_frame (1 NED, 2 FRD);
                        position (float32[3] m); q (float32[4] w, x, y, z: body FRD -> pose frame);
                        velocity_frame (1 NED, 2 FRD, 3 BODY_FRD); velocity (float32[3] m/s);
                        angular_velocity (float32[3] rad/s, body FRD)
  VehicleStatus         timestamp; arming_state (2 = ARMED); nav_state (2 POSCTL, 4 AUTO_LOITER,
                        14 OFFBOARD, 18 AUTO_LAND) (MESSAGE_VERSION 4 on PX4 main: topic vehicle_status_vN)
  BatteryStatus         remaining (float32 0..1, -1 = invalid) (MESSAGE_VERSION 1 on PX4 main)
  VehicleCommand        timestamp; param1..param7; command (400 ARM_DISARM, 176 DO_SET_MODE);
                        target_system, target_component, source_system, source_component,
                        confirmation, from_external

Topics (PX4 defaults): /fmu/in/offboard_control_mode, /fmu/in/vehicle_rates_setpoint,
/fmu/in/vehicle_command, /fmu/out/vehicle_odometry, /fmu/out/vehicle_status, /fmu/out/battery_status
(best-effort QoS on the /fmu/out side; newer PX4 appends the message version to versioned topics, e.g.
vehicle_status_v4: check `ros2 topic list` and set the node's topic parameters).
Frames: PX4 NED/FRD <-> our ENU/FLU through core/frames.py only; thrust through
link/thrust_map.py (thrust_body[2] = -MPC_THR_HOVER * thrust_mps2 / g). An FRD pose frame (no
heading reference) is used as if it were NED: positions and yaw are then relative to PX4's
arbitrary start heading, which is fine for setpoints given in the same frame.
"""
from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import Future

import numpy as np

from ssm_mbrl_ros.core.frames import (attitude_enu_flu_to_ned_frd, attitude_ned_frd_to_enu_flu, enu_to_ned,
                                      flu_to_frd, frd_to_flu, ned_to_enu, quat_normalize, quat_rotate)
from ssm_mbrl_ros.link.mavlink_link import LinkError
from ssm_mbrl_ros.link.px4_modes import MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, MODES
from ssm_mbrl_ros.link.telemetry import Telemetry
from ssm_mbrl_ros.link.thrust_map import ThrustMap

POSE_FRAME_NED, POSE_FRAME_FRD = 1, 2
VELOCITY_FRAME_NED, VELOCITY_FRAME_FRD, VELOCITY_FRAME_BODY_FRD = 1, 2, 3
ARMING_STATE_ARMED = 2
NAV_STATES = {2: "POSCTL", 4: "HOLD", 14: "OFFBOARD", 18: "LAND"}  # VehicleStatus.nav_state -> our mode names
VEHICLE_CMD_DO_SET_MODE = 176
VEHICLE_CMD_COMPONENT_ARM_DISARM = 400
MAV_RESULT_ACCEPTED = 0
TOPICS = {"offboard_control_mode": "/fmu/in/offboard_control_mode",
          "vehicle_rates_setpoint": "/fmu/in/vehicle_rates_setpoint",
          "vehicle_command": "/fmu/in/vehicle_command",
          "vehicle_odometry": "/fmu/out/vehicle_odometry",
          "vehicle_status": "/fmu/out/vehicle_status",
          "battery_status": "/fmu/out/battery_status"}


# ---- conversions ----
def ctbr_to_rates_setpoint(ctbr_flu, thrust_map: ThrustMap, msg, timestamp_us: int):
    """Fill a VehicleRatesSetpoint from CTBR (thrust m/s^2, body rates FLU rad/s): FRD rates, thrust_body[2] = -norm."""
    c = np.asarray(ctbr_flu, dtype=float)
    if c.shape != (4,):
        raise ValueError(f"ctbr must be (4,) [thrust m/s^2, p, q, r rad/s], got shape {c.shape}")
    msg.timestamp = int(timestamp_us)
    msg.roll, msg.pitch, msg.yaw = (float(x) for x in flu_to_frd(c[1:4]))
    msg.thrust_body = [0.0, 0.0, -float(thrust_map.to_normalized(c[0]))]
    msg.reset_integral = False
    return msg


def rates_setpoint_to_ctbr(msg, thrust_map: ThrustMap) -> np.ndarray:
    """CTBR (4,) [m/s^2, rad/s FLU] from a VehicleRatesSetpoint (the inverse of ctbr_to_rates_setpoint)."""
    rates = frd_to_flu(np.array([msg.roll, msg.pitch, msg.yaw], dtype=float))
    return np.concatenate([[thrust_map.to_mps2(-float(msg.thrust_body[2]))], rates])


def offboard_control_mode(msg, timestamp_us: int):
    """Fill an OffboardControlMode for body-rate control (the heartbeat PX4 needs to stay in OFFBOARD)."""
    msg.timestamp = int(timestamp_us)
    msg.position = msg.velocity = msg.acceleration = msg.attitude = False
    msg.thrust_and_torque = msg.direct_actuator = False
    msg.body_rate = True
    return msg


def odometry_to_state17(msg) -> tuple[np.ndarray, int]:
    """(state (17,) ENU/FLU in the simulator layout, sample time us) from a VehicleOdometry; ValueError if unusable."""
    if msg.pose_frame not in (POSE_FRAME_NED, POSE_FRAME_FRD):
        raise ValueError(f"VehicleOdometry.pose_frame {msg.pose_frame}: expected 1 (NED) or 2 (FRD)")
    pos = np.asarray(msg.position, dtype=float)
    q = np.asarray(msg.q, dtype=float)
    vel = np.asarray(msg.velocity, dtype=float)
    rates = np.asarray(msg.angular_velocity, dtype=float)
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(q)) and np.all(np.isfinite(vel))
            and np.all(np.isfinite(rates))) or np.linalg.norm(q) < 0.5:
        raise ValueError("VehicleOdometry: non-finite position, attitude, velocity or rates")
    q_ned_frd = quat_normalize(q)
    if msg.velocity_frame == VELOCITY_FRAME_BODY_FRD:
        vel = quat_rotate(q_ned_frd, vel)  # body FRD -> NED
    elif msg.velocity_frame not in (VELOCITY_FRAME_NED, VELOCITY_FRAME_FRD):
        raise ValueError(f"VehicleOdometry.velocity_frame {msg.velocity_frame}: expected 1 (NED), 2 (FRD) or "
                         f"3 (BODY_FRD)")
    state = np.zeros(17)
    state[0:3] = ned_to_enu(pos)
    state[3:7] = attitude_ned_frd_to_enu_flu(q_ned_frd)
    state[7:10] = ned_to_enu(vel)
    state[10:13] = frd_to_flu(rates)
    stamp = int(msg.timestamp_sample) or int(msg.timestamp)
    return state, stamp


def state17_to_odometry(state17, msg, timestamp_us: int):
    """Fill a VehicleOdometry (NED pose, NED velocity, FRD rates) from a simulator-layout ENU/FLU state."""
    s = np.asarray(state17, dtype=float)
    msg.timestamp = msg.timestamp_sample = int(timestamp_us)
    msg.pose_frame, msg.velocity_frame = POSE_FRAME_NED, VELOCITY_FRAME_NED
    msg.position = [float(x) for x in enu_to_ned(s[0:3])]
    msg.q = [float(x) for x in attitude_enu_flu_to_ned_frd(s[3:7])]
    msg.velocity = [float(x) for x in enu_to_ned(s[7:10])]
    msg.angular_velocity = [float(x) for x in flu_to_frd(s[10:13])]
    return msg


def vehicle_command(msg, command: int, params, timestamp_us: int, target_system: int = 1, confirmation: int = 0):
    """Fill a VehicleCommand (param1..7 from params, zero-padded) from an external (offboard) source."""
    p = [float(x) for x in params] + [0.0] * (7 - len(params))
    msg.timestamp = int(timestamp_us)
    msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7 = p
    msg.command = int(command)
    msg.target_system, msg.target_component = int(target_system), 1
    msg.source_system, msg.source_component = 1, 1
    msg.confirmation = int(confirmation)
    msg.from_external = True
    return msg


# ---- the link ----
class Px4MsgsLink:
    """The MavLink surface OffboardSession uses (link/offboard_session.py), over px4_msgs topics.

    msgs: an object with the classes VehicleRatesSetpoint, OffboardControlMode, VehicleCommand;
    publish(key, msg) sends on TOPICS[key]; now_us() gives outgoing timestamps (the node's ROS clock,
    which uXRCE-DDS time-syncs with PX4). Feed incoming messages to on_odometry / on_status. There is
    no COMMAND_ACK matching on this path: commands resolve as accepted when published, and the mode /
    arming state is confirmed by VehicleStatus (`mode`, `armed`).
    """

    lockstep = False

    def __init__(self, thrust_map: ThrustMap, msgs, publish, now_us, clock=time.monotonic, target_system: int = 1,
                 log=None):
        self.thrust_map, self.msgs, self.publish, self.now_us, self.clock = thrust_map, msgs, publish, now_us, clock
        self.target_system = target_system
        self.log = log or (lambda text: None)
        self.telemetry = Telemetry()
        self.fc_heartbeat_s: float | None = None
        self.armed = False
        self.mode = "UNKNOWN"
        self.rx_errors = 0
        self.last_command_sent_s: dict[int, float] = {}
        self._setpoint_times: list[float] = []
        self._lock = threading.Lock()

    def snapshot(self) -> Telemetry:
        """A consistent copy of the latest telemetry."""
        with self._lock:
            return copy.copy(self.telemetry)

    def on_odometry(self, msg) -> bool:
        """Fold a VehicleOdometry into the telemetry; False (counted in rx_errors) if unusable."""
        try:
            state, stamp_us = odometry_to_state17(msg)
        except ValueError:
            self.rx_errors += 1
            return False
        now = self.clock()
        with self._lock:
            t = self.telemetry
            t.pos_m, t.quat_wxyz, t.vel_mps, t.rates_radps = state[0:3], state[3:7], state[7:10], state[10:13]
            t.pos_stamp_s = t.att_stamp_s = now
            t.fc_time_s = t.pos_fc_s = t.att_fc_s = stamp_us * 1e-6
        return True

    def on_status(self, msg) -> None:
        """VehicleStatus: arming state and mode; its arrival is the FC's heartbeat."""
        self.armed = msg.arming_state == ARMING_STATE_ARMED
        self.mode = NAV_STATES.get(int(msg.nav_state), f"NAV{int(msg.nav_state)}")
        self.fc_heartbeat_s = self.clock()

    def on_battery(self, msg) -> None:
        """BatteryStatus.remaining (0..1; -1 = unknown, which fails the pre-arm battery check)."""
        r = float(msg.remaining)
        with self._lock:
            self.telemetry.battery_fraction = r if 0.0 <= r <= 1.0 else None

    def send_ctbr(self, ctbr_flu) -> None:
        """OffboardControlMode (body_rate) + VehicleRatesSetpoint, same timestamp, in that order."""
        us = self.now_us()
        self.publish("offboard_control_mode", offboard_control_mode(self.msgs.OffboardControlMode(), us))
        self.publish("vehicle_rates_setpoint",
                     ctbr_to_rates_setpoint(ctbr_flu, self.thrust_map, self.msgs.VehicleRatesSetpoint(), us))
        now = self.clock()
        self._setpoint_times = [t for t in self._setpoint_times[-20:] if now - t < 1.0] + [now]

    def setpoints_streaming(self, min_count: int = 10, window_s: float = 0.5) -> bool:
        """True if at least min_count setpoints went out in the last window_s."""
        now = self.clock()
        return sum(1 for t in self._setpoint_times if now - t <= window_s) >= min_count

    def command_async(self, command: int, params) -> Future:
        """Publish a VehicleCommand now; the future resolves as accepted (no ACK matching on this path)."""
        self.last_command_sent_s[command] = self.clock()
        self.publish("vehicle_command", vehicle_command(self.msgs.VehicleCommand(), command, params, self.now_us(),
                                                        self.target_system))
        fut: Future = Future()
        fut.set_result(MAV_RESULT_ACCEPTED)
        return fut

    def command(self, command: int, params) -> int:
        """Publish a VehicleCommand; returns MAV_RESULT_ACCEPTED (see command_async)."""
        return self.command_async(command, params).result()

    def mode_params(self, name: str) -> list:
        """DO_SET_MODE params for a PX4 mode name: custom-mode flag, main mode, sub mode."""
        if name not in MODES:
            raise ValueError(f"unknown PX4 mode {name!r}; known: {sorted(MODES)}")
        main, sub = MODES[name]
        return [float(MAV_MODE_FLAG_CUSTOM_MODE_ENABLED), float(main), float(sub)]

    def arm(self) -> None:
        """VehicleCommand ARM_DISARM param1 = 1."""
        self.command(VEHICLE_CMD_COMPONENT_ARM_DISARM, [1.0])

    def set_mode(self, name: str) -> None:
        """VehicleCommand DO_SET_MODE; OFFBOARD only while setpoints stream (PX4 refuses it otherwise)."""
        if name == "OFFBOARD" and not self.setpoints_streaming():
            raise LinkError("OFFBOARD requested before the setpoint stream runs; stream setpoints first")
        self.command(VEHICLE_CMD_DO_SET_MODE, self.mode_params(name))

    def send_statustext(self, text: str, severity: int | None = None) -> None:
        """No STATUSTEXT input on the px4_msgs path: the text goes to the node's log."""
        self.log(text)
