"""fc-sim's outgoing MAVLink messages, built from its simulated state as PX4 fills them (world NED, body FRD).

Each builder takes the FcSim (`fc`), the message time `now` (s since boot) and the stamps (ms, us) to use. Which
messages stream and how fast: FcSimConfig.rates_hz (changed by MAV_CMD_SET_MESSAGE_INTERVAL); any of them is also
sent once on MAV_CMD_REQUEST_MESSAGE.
"""
from __future__ import annotations

import math

import numpy as np

from ssm_mbrl_ros.core.frames import (attitude_enu_flu_to_ned_frd, enu_to_ned, flu_to_frd, quat_conjugate,
                                      quat_rotate, quat_to_euler_zyx)
from ssm_mbrl_ros.link.px4_modes import (MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, MAV_MODE_FLAG_SAFETY_ARMED, MODES,
                                         encode_custom_mode)
from ssm_mbrl_ros.link.thrust_map import GRAVITY_MPS2

EARTH_RADIUS_M = 6378137.0
PX4_VERSION = (1, 15, 0)  # the PX4 release whose behaviour fc-sim follows (AUTOPILOT_VERSION)
FIRMWARE_VERSION_TYPE_OFFICIAL = 255


def sensor_bits(m) -> int:
    """SYS_STATUS sensors fc-sim simulates (present and enabled; healthy once its estimator is ready)."""
    return (m.MAV_SYS_STATUS_SENSOR_3D_GYRO | m.MAV_SYS_STATUS_SENSOR_3D_ACCEL | m.MAV_SYS_STATUS_SENSOR_3D_MAG
            | m.MAV_SYS_STATUS_SENSOR_ABSOLUTE_PRESSURE | m.MAV_SYS_STATUS_SENSOR_GPS
            | m.MAV_SYS_STATUS_SENSOR_ANGULAR_RATE_CONTROL | m.MAV_SYS_STATUS_SENSOR_ATTITUDE_STABILIZATION
            | m.MAV_SYS_STATUS_SENSOR_Z_ALTITUDE_CONTROL | m.MAV_SYS_STATUS_SENSOR_XY_POSITION_CONTROL
            | m.MAV_SYS_STATUS_SENSOR_MOTOR_OUTPUTS | m.MAV_SYS_STATUS_AHRS | m.MAV_SYS_STATUS_SENSOR_BATTERY
            | m.MAV_SYS_STATUS_PREARM_CHECK)


def capabilities(m) -> int:
    """AUTOPILOT_VERSION.capabilities: what fc-sim implements of PX4's set (no missions, FTP or position targets)."""
    return (m.MAV_PROTOCOL_CAPABILITY_MAVLINK2 | m.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
            | m.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE | m.MAV_PROTOCOL_CAPABILITY_SET_ATTITUDE_TARGET)


def local_ned(fc, noise: bool):
    """(position, velocity) NED m, m/s, with the configured estimator noise."""
    s = fc.state()
    pos, vel = enu_to_ned(s[0:3]), enu_to_ned(s[7:10])
    if noise and fc.cfg.pos_noise_m > 0:
        pos = pos + fc.noise_rng.normal(0.0, fc.cfg.pos_noise_m, 3)
    if noise and fc.cfg.vel_noise_mps > 0:
        vel = vel + fc.noise_rng.normal(0.0, fc.cfg.vel_noise_mps, 3)
    return pos, vel


def ned_to_global(fc, pos_ned) -> tuple[int, int, int]:
    """(lat degE7, lon degE7, alt AMSL mm) of a local NED position, flat earth around home (metres-scale areas)."""
    c = fc.cfg
    lat = c.home_lat_deg + math.degrees(pos_ned[0] / EARTH_RADIUS_M)
    lon = c.home_lon_deg + math.degrees(pos_ned[1] / (EARTH_RADIUS_M * math.cos(math.radians(c.home_lat_deg))))
    return int(round(lat * 1e7)), int(round(lon * 1e7)), int(round((c.home_alt_m - pos_ned[2]) * 1e3))


def build(fc, name: str, now: float, ms: int, us: int, noise: bool = True):
    """The MAVLink message `name` at time now (raises ValueError for a name fc-sim does not send)."""
    m, s = fc.mav, fc.state()
    q = attitude_enu_flu_to_ned_frd(s[3:7])
    w = flu_to_frd(s[10:13])
    if name == "HEARTBEAT":
        main, sub = MODES[fc.mode]
        base = MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (MAV_MODE_FLAG_SAFETY_ARMED if fc.armed else 0)
        state = m.MAV_STATE_ACTIVE if fc.armed else m.MAV_STATE_STANDBY
        return m.MAVLink_heartbeat_message(m.MAV_TYPE_QUADROTOR, m.MAV_AUTOPILOT_PX4, base,
                                           encode_custom_mode(main, sub), state, 3)
    if name == "ATTITUDE_QUATERNION":
        return m.MAVLink_attitude_quaternion_message(ms, *q, *w, [0.0] * 4)
    if name == "ATTITUDE":
        roll, pitch, yaw = quat_to_euler_zyx(q)
        return m.MAVLink_attitude_message(ms, roll, pitch, yaw, *w)
    if name == "LOCAL_POSITION_NED":
        pos, vel = local_ned(fc, noise)
        return m.MAVLink_local_position_ned_message(ms, *pos, *vel)
    if name == "GLOBAL_POSITION_INT":
        pos, vel = local_ned(fc, noise)
        lat, lon, alt = ned_to_global(fc, pos)
        rel_mm = int(round(-(pos[2] - fc.home_ned[2]) * 1e3))
        hdg = int(round(math.degrees(quat_to_euler_zyx(q)[2]) % 360.0 * 100)) % 36000
        return m.MAVLink_global_position_int_message(ms, lat, lon, alt, rel_mm, *(int(round(v * 100)) for v in vel),
                                                     hdg)
    if name == "HOME_POSITION":
        lat, lon, alt = ned_to_global(fc, fc.home_ned)
        return m.MAVLink_home_position_message(lat, lon, alt, *map(float, fc.home_ned), [1.0, 0.0, 0.0, 0.0],
                                               0.0, 0.0, 0.0, us)
    if name == "EXTENDED_SYS_STATE":
        return m.MAVLink_extended_sys_state_message(m.MAV_VTOL_STATE_MC, fc.landed_state())
    if name == "ODOMETRY":
        pos, vel = local_ned(fc, noise)
        nan21 = [float("nan")] * 21
        return m.MAVLink_odometry_message(us, m.MAV_FRAME_LOCAL_NED, m.MAV_FRAME_BODY_FRD, *pos, list(q),
                                          *quat_rotate(quat_conjugate(q), vel), *w, nan21, nan21, 0, 0, 100)
    if name == "HIGHRES_IMU":
        specific_force_flu = quat_rotate(quat_conjugate(s[3:7]), fc.accel_enu + np.array([0, 0, GRAVITY_MPS2]))
        return m.MAVLink_highres_imu_message(us, *flu_to_frd(specific_force_flu), *w, 0.0, 0.0, 0.0, 1013.0, 0.0,
                                             0.0, 20.0, 0x3F)
    if name == "SYS_STATUS":
        bits = sensor_bits(m)
        health = bits if fc.estimator_ready(now) else bits & ~(m.MAV_SYS_STATUS_SENSOR_GPS | m.MAV_SYS_STATUS_AHRS
                                                               | m.MAV_SYS_STATUS_PREARM_CHECK)
        return m.MAVLink_sys_status_message(bits, bits, health, 100, fc.battery_mv(), -1,
                                            int(round(100 * fc.battery)), 0, 0, 0, 0, 0, 0)
    if name == "BATTERY_STATUS":
        cells = [fc.battery_mv() // 4] * 4 + [65535] * 6
        return m.MAVLink_battery_status_message(0, m.MAV_BATTERY_FUNCTION_ALL, m.MAV_BATTERY_TYPE_LIPO, 2500, cells,
                                                -1, -1, -1, int(round(100 * fc.battery)))
    if name == "AUTOPILOT_VERSION":
        major, minor, patch = PX4_VERSION
        version = major << 24 | minor << 16 | patch << 8 | FIRMWARE_VERSION_TYPE_OFFICIAL
        return m.MAVLink_autopilot_version_message(capabilities(m), version, version, 0, 0, b"fcsim\x00\x00\x00",
                                                   [0] * 8, [0] * 8, 0, 0, 0x5353_4D42_524F_5300 + fc.cfg.system_id)
    raise ValueError(f"fc-sim does not send {name}")
