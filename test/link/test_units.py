"""Thrust map, PX4 mode encoding, URL parsing and telemetry frame conversion (no sockets)."""
import math

import numpy as np
import pytest

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.link import mavlink_link as ml
from ssm_mbrl_ros.link.px4_modes import MODES, AutoSubMode, MainMode, decode_custom_mode, encode_custom_mode, mode_name
from ssm_mbrl_ros.link.telemetry import Telemetry
from ssm_mbrl_ros.link.thrust_map import GRAVITY_MPS2, ThrustMap, estimate_hover_throttle
from ssm_mbrl_ros.sim.vehicle import load_vehicle


def test_thrust_map_hover_and_roundtrip():
    tm = ThrustMap(0.3)
    assert tm.to_normalized(GRAVITY_MPS2) == pytest.approx(0.3)
    x = np.linspace(0, tm.max_thrust_mps2, 7)
    np.testing.assert_allclose(tm.to_mps2(tm.to_normalized(x)), x)
    assert tm.to_normalized(1e3) == 1.0 and tm.to_normalized(-5.0) == 0.0 and tm.to_normalized(float("nan")) == 0.0
    assert tm.to_mps2(2.0) == pytest.approx(tm.max_thrust_mps2)
    with pytest.raises(ValueError):
        ThrustMap(1.0)


def test_thrust_map_for_vehicle_full_throttle_is_max_thrust():
    v = load_vehicle("agile5")
    assert ThrustMap.for_vehicle(v).to_normalized(v.max_collective_thrust_mps2) == pytest.approx(1.0)


def test_estimate_hover_throttle_recovers_truth():
    rng = np.random.default_rng(1)
    true_h = 0.27
    thr = rng.uniform(0.2, 0.35, 2000)
    tilt = np.cos(rng.uniform(0, 0.3, 2000))
    acc_up = thr * GRAVITY_MPS2 / true_h * tilt - GRAVITY_MPS2 + rng.normal(0, 0.2, 2000)
    assert estimate_hover_throttle(thr, acc_up, tilt) == pytest.approx(true_h, rel=0.01)
    with pytest.raises(ValueError):
        estimate_hover_throttle(thr[:5], acc_up[:5])
    with pytest.raises(ValueError):
        estimate_hover_throttle(thr, acc_up[:10])


def test_px4_custom_mode_encoding():
    # PX4 docs: OFFBOARD custom_mode = 6 << 16 = 393216; AUTO.LOITER = 4 << 16 | 3 << 24
    assert encode_custom_mode(MainMode.OFFBOARD) == 393216
    assert encode_custom_mode(MainMode.AUTO, AutoSubMode.LOITER) == 50593792
    for name, (main, sub) in MODES.items():
        assert decode_custom_mode(encode_custom_mode(main, sub)) == (main, sub)
        assert mode_name(main, sub) == name
    assert mode_name(9, 9) == "MAIN9.SUB9"


@pytest.mark.parametrize("url,device,baud", [
    ("udpin:127.0.0.1:14540", "udpin:127.0.0.1:14540", 0),
    ("udp://127.0.0.1:0", "udpin:127.0.0.1:0", 0),
    ("udpout:localhost:14580", "udpout:localhost:14580", 0),
    ("serial:/dev/ttyACM0:57600", "/dev/ttyACM0", 57600),
    ("serial:/dev/ttyUSB0", "/dev/ttyUSB0", 921600),
])
def test_parse_url(url, device, baud):
    assert ml.parse_url(url) == (device, baud)


@pytest.mark.parametrize("url", ["tcp:1.2.3.4:5", "udpin:127.0.0.1", "udpout:127.0.0.1:70000", "serial:", "bogus"])
def test_parse_url_rejects(url):
    with pytest.raises(ConfigError, match="link url"):
        ml.parse_url(url)


def _mav():
    conn = ml.open_connection("udpin:127.0.0.1:0", 1, 1)
    return conn, ml.mavlink


def test_telemetry_frames_known_values():
    conn, m = _mav()
    try:
        tel = Telemetry()
        # level, nose north: identity in NED/FRD = yaw +90 deg in ENU/FLU
        assert tel.update(m.MAVLink_attitude_quaternion_message(1000, 1, 0, 0, 0, 0.1, 0.2, 0.3, [0] * 4), 5.0)
        np.testing.assert_allclose(tel.quat_wxyz, [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], atol=1e-12)
        np.testing.assert_allclose(tel.rates_radps, [0.1, -0.2, -0.3])
        assert tel.stamp_s is None  # no position yet
        assert tel.update(m.MAVLink_local_position_ned_message(1000, 1, 2, -3, 0.5, -0.5, -1.0), 5.01)
        np.testing.assert_allclose(tel.pos_m, [2, 1, 3])
        np.testing.assert_allclose(tel.vel_mps, [-0.5, 0.5, 1.0])
        assert tel.stamp_s == 5.0
        s = tel.state17()
        assert s.shape == (17,) and np.allclose(s[0:3], [2, 1, 3])
        # HIGHRES_IMU at rest: specific force -g along FRD z -> +g along FLU z
        imu = m.MAVLink_highres_imu_message(1, 0, 0, -9.81, 0, 0, 0.2, 0, 0, 0, 0, 0, 0, 0, 0x3F)
        assert tel.update(imu, 5.02)
        np.testing.assert_allclose(tel.acc_flu_mps2, [0, 0, 9.81])
        np.testing.assert_allclose(tel.gyro_flu_radps, [0, 0, -0.2])
        assert tel.update(m.MAVLink_sys_status_message(0, 0, 0, 0, 15200, -1, 42, 0, 0, 0, 0, 0, 0), 5.03)
        assert tel.battery_fraction == pytest.approx(0.42) and tel.battery_voltage_v == pytest.approx(15.2)
    finally:
        conn.close()


def test_telemetry_odometry_body_velocity_and_rejects_nan():
    conn, m = _mav()
    try:
        tel = Telemetry()
        nan21 = [float("nan")] * 21
        # yawed 90 deg in NED (nose east), moving forward (body x) at 2 m/s -> east in ENU = +x
        q = [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)]
        msg = m.MAVLink_odometry_message(2_000_000, m.MAV_FRAME_LOCAL_NED, m.MAV_FRAME_BODY_FRD, 0, 0, -1, q,
                                         2.0, 0, 0, 0, 0, 0, nan21, nan21, 0, 0, 100)
        assert tel.update(msg, 1.0)
        np.testing.assert_allclose(tel.vel_mps, [2, 0, 0], atol=1e-12)
        np.testing.assert_allclose(tel.pos_m, [0, 0, 1])
        np.testing.assert_allclose(tel.quat_wxyz, [1, 0, 0, 0], atol=1e-12)  # nose east = yaw 0 in ENU
        bad = m.MAVLink_local_position_ned_message(1000, float("nan"), 0, 0, 0, 0, 0)
        assert not tel.update(bad, 2.0)
        np.testing.assert_allclose(tel.pos_m, [0, 0, 1])
        assert not tel.update(m.MAVLink_attitude_quaternion_message(1, 0, 0, 0, 0, 0, 0, 0, [0] * 4), 2.0)
    finally:
        conn.close()


def test_shipped_link_configs_load():
    from pathlib import Path

    from ssm_mbrl_ros.core.config import load_yaml_config
    from ssm_mbrl_ros.fcsim import FcSimConfig
    from ssm_mbrl_ros.link.supervisor import SupervisorConfig

    root = Path(__file__).resolve().parents[2] / "config" / "link"
    assert load_yaml_config(FcSimConfig, root / "fc_sim.yaml") == FcSimConfig()
    sup = load_yaml_config(SupervisorConfig, root / "supervisor.yaml")
    assert sup.geofence_min_m == [-5.0, -5.0, -0.5] and sup.max_state_age_s == 0.05
