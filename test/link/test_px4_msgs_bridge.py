"""px4_msgs conversions both ways with plain objects carrying the px4_msgs field names (px4_msgs itself is not
installable here), the Px4MsgsLink driven by the real OffboardSession, and FC time -> ROS time stamps."""
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from ssm_mbrl_ros.core.frames import quat_conjugate, quat_from_euler_zyx, quat_rotate
from ssm_mbrl_ros.link.fc_clock import FcTimeSync
from ssm_mbrl_ros.link.offboard_session import OffboardSession
from ssm_mbrl_ros.link.px4_msgs_bridge import (Px4MsgsLink, ctbr_to_rates_setpoint, odometry_to_state17,
                                               offboard_control_mode, rates_setpoint_to_ctbr, state17_to_odometry)
from ssm_mbrl_ros.link.supervisor import Action, Supervisor, SupervisorConfig
from ssm_mbrl_ros.link.thrust_map import GRAVITY_MPS2, ThrustMap


# stand-ins with the px4_msgs field names (msg/*.msg); defaults as rosidl would give
@dataclass
class VehicleRatesSetpoint:
    timestamp: int = 0
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    thrust_body: list = field(default_factory=lambda: [0.0, 0.0, 0.0])
    reset_integral: bool = False


@dataclass
class OffboardControlMode:
    timestamp: int = 0
    position: bool = True  # True defaults: the conversion must clear them
    velocity: bool = True
    acceleration: bool = True
    attitude: bool = True
    body_rate: bool = False
    thrust_and_torque: bool = True
    direct_actuator: bool = True


@dataclass
class VehicleOdometry:
    timestamp: int = 0
    timestamp_sample: int = 0
    pose_frame: int = 0
    position: list = field(default_factory=lambda: [0.0] * 3)
    q: list = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0])
    velocity_frame: int = 0
    velocity: list = field(default_factory=lambda: [0.0] * 3)
    angular_velocity: list = field(default_factory=lambda: [0.0] * 3)


@dataclass
class VehicleCommand:
    timestamp: int = 0
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    param5: float = 0.0
    param6: float = 0.0
    param7: float = 0.0
    command: int = 0
    target_system: int = 0
    target_component: int = 0
    source_system: int = 0
    source_component: int = 0
    confirmation: int = 0
    from_external: bool = False


@dataclass
class VehicleStatus:
    arming_state: int = 1
    nav_state: int = 2


@dataclass
class BatteryStatus:
    remaining: float = -1.0


class Msgs:  # stands for the px4_msgs.msg module
    VehicleRatesSetpoint = VehicleRatesSetpoint
    OffboardControlMode = OffboardControlMode
    VehicleCommand = VehicleCommand


TMAP = ThrustMap(0.25)


def test_ctbr_to_rates_setpoint_known_values_and_back():
    sp = ctbr_to_rates_setpoint([GRAVITY_MPS2, 0.1, 0.2, -0.3], TMAP, VehicleRatesSetpoint(), 123_456)
    assert sp.timestamp == 123_456
    assert (sp.roll, sp.pitch, sp.yaw) == pytest.approx((0.1, -0.2, 0.3))  # FLU -> FRD: y and z flip
    assert sp.thrust_body == pytest.approx([0.0, 0.0, -0.25])  # hover = -MPC_THR_HOVER along body z (down)
    assert sp.reset_integral is False
    rng = np.random.default_rng(0)
    for _ in range(50):
        ctbr = np.r_[rng.uniform(0, TMAP.max_thrust_mps2), rng.normal(0, 2, 3)]
        back = rates_setpoint_to_ctbr(ctbr_to_rates_setpoint(ctbr, TMAP, VehicleRatesSetpoint(), 0), TMAP)
        np.testing.assert_allclose(back, ctbr, atol=1e-12)
    full = ctbr_to_rates_setpoint([1e3, 0, 0, 0], TMAP, VehicleRatesSetpoint(), 0)
    assert full.thrust_body[2] == -1.0  # clipped to full throttle
    with pytest.raises(ValueError, match=r"\(4,\)"):
        ctbr_to_rates_setpoint([1.0, 2.0], TMAP, VehicleRatesSetpoint(), 0)


def test_offboard_control_mode_is_body_rate_only():
    m = offboard_control_mode(OffboardControlMode(), 7)
    assert m.body_rate and m.timestamp == 7
    assert not any([m.position, m.velocity, m.acceleration, m.attitude, m.thrust_and_torque, m.direct_actuator])


def test_odometry_known_values():
    # PX4: 2 m north, 1 m east, 3 m up (z = -3), nose north (identity FRD -> NED), flying north at 1 m/s
    odo = VehicleOdometry(timestamp=2_000_000, timestamp_sample=1_990_000, pose_frame=1, position=[2.0, 1.0, -3.0],
                          q=[1.0, 0.0, 0.0, 0.0], velocity_frame=1, velocity=[1.0, 0.0, 0.0],
                          angular_velocity=[0.1, 0.2, 0.3])
    s, stamp = odometry_to_state17(odo)
    assert stamp == 1_990_000  # the sample time, not the publish time
    np.testing.assert_allclose(s[0:3], [1.0, 2.0, 3.0])  # ENU
    np.testing.assert_allclose(s[3:7], [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], atol=1e-12)  # yaw +90
    np.testing.assert_allclose(s[7:10], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(s[10:13], [0.1, -0.2, -0.3])
    # the same velocity given in the body frame (BODY_FRD: forward = north here)
    odo.velocity_frame = 3
    np.testing.assert_allclose(odometry_to_state17(odo)[0][7:10], [0.0, 1.0, 0.0], atol=1e-12)


def test_odometry_round_trip_and_rejects():
    rng = np.random.default_rng(1)
    for _ in range(50):
        s = np.zeros(17)
        s[0:3], s[7:10], s[10:13] = rng.normal(0, 3, 3), rng.normal(0, 2, 3), rng.normal(0, 1, 3)
        s[3:7] = quat_from_euler_zyx(*rng.uniform(-1.0, 1.0, 3))
        s[3:7] *= np.sign(s[3])
        back, stamp = odometry_to_state17(state17_to_odometry(s, VehicleOdometry(), 42))
        assert stamp == 42
        np.testing.assert_allclose(back[:13], s[:13], atol=1e-12)
        body = state17_to_odometry(s, VehicleOdometry(), 42)  # body-frame velocity gives the same world velocity
        body.velocity_frame, body.velocity = 3, list(quat_rotate(quat_conjugate(np.asarray(body.q)), body.velocity))
        np.testing.assert_allclose(odometry_to_state17(body)[0][7:10], s[7:10], atol=1e-12)
    with pytest.raises(ValueError, match="pose_frame"):
        odometry_to_state17(VehicleOdometry(pose_frame=0, velocity_frame=1))
    with pytest.raises(ValueError, match="velocity_frame"):
        odometry_to_state17(VehicleOdometry(pose_frame=1, velocity_frame=0))
    with pytest.raises(ValueError, match="non-finite"):
        odometry_to_state17(VehicleOdometry(pose_frame=1, velocity_frame=1, q=[float("nan"), 0, 0, 0]))


def _link():
    sent = []
    t = [100.0]
    link = Px4MsgsLink(TMAP, Msgs, lambda key, msg: sent.append((key, msg)), now_us=lambda: int(t[0] * 1e6),
                       clock=lambda: t[0])
    return link, sent, t


def test_px4_msgs_link_under_the_offboard_session():
    link, sent, t = _link()
    sup = Supervisor(SupervisorConfig(geofence_min_m=[-5, -5, -1], geofence_max_m=[5, 5, 5]))
    session = OffboardSession(link, sup)
    hover = state17_to_odometry(np.r_[0, 0, 1.0, 1, 0, 0, 0, np.zeros(10)], VehicleOdometry(), 5_000_000)
    assert link.on_odometry(hover) and not link.on_odometry(VehicleOdometry())
    assert link.rx_errors == 1
    link.on_status(VehicleStatus(arming_state=1, nav_state=2))
    assert session.prearm(t[0], link.snapshot()).failures == ["battery: None below 0.2"]  # unknown battery fails
    link.on_battery(BatteryStatus(remaining=0.8))
    assert session.prearm(t[0], link.snapshot()).ok and link.mode == "POSCTL" and not link.armed
    for _ in range(12):  # the stream: OffboardControlMode + VehicleRatesSetpoint per step, same timestamp
        session.step(t[0], link.snapshot(), [9.81, 0.0, 0.0, 0.5])
        t[0] += 0.01
        link.on_odometry(hover)
    assert [k for k, _ in sent[:2]] == ["offboard_control_mode", "vehicle_rates_setpoint"]
    assert sent[0][1].timestamp == sent[1][1].timestamp and sent[1][1].yaw == pytest.approx(-0.5)
    assert session.ready() and session.engage()
    cmds = [m for k, m in sent if k == "vehicle_command"]
    assert [(c.command, c.param1, c.param2) for c in cmds] == [(400, 1.0, 0.0), (176, 1.0, 6.0)]  # arm, OFFBOARD
    assert all(c.target_system == 1 and c.from_external for c in cmds)
    link.on_status(VehicleStatus(arming_state=2, nav_state=14))
    assert link.armed and link.mode == "OFFBOARD"
    # NaN from the controller: HOLD = DO_SET_MODE AUTO(4).LOITER(3) in the same step, no setpoint
    n = len(sent)
    d = session.step(t[0], link.snapshot(), [np.nan, 0, 0, 0])
    assert d.action is Action.HOLD and d.reason == "nan_action"
    assert [(k, m.command, m.param2, m.param3) for k, m in sent[n:]] == [("vehicle_command", 176, 4.0, 3.0)]
    assert session.log.failsafe_ack_s == t[0] and session.log.failsafe_sent_s == t[0]
    # the operator kill overrides it: force disarm (param2 21196)
    session.step(t[0], link.snapshot(), [9.81, 0, 0, 0], kill=True)
    assert (sent[-1][1].command, sent[-1][1].param1, sent[-1][1].param2) == (400, 0.0, 21196.0)


def test_fc_time_sync_keeps_fc_spacing_and_resyncs_after_a_reboot():
    sync = FcTimeSync()
    assert sync.to_fc_s(5) is None
    a = sync.to_ros_ns(10.0, 1_000_000_000_000)
    b = sync.to_ros_ns(10.01, 1_000_000_000_000 + 37_000_000)  # arrival jitter does not leak into the stamps
    assert b - a == 10_000_000
    assert sync.to_fc_s(b) == pytest.approx(10.01)
    c = sync.to_ros_ns(0.5, 2_000_000_000_000)  # FC rebooted: new offset
    assert c == 2_000_000_000_000 and sync.resyncs == 1
