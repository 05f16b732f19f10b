"""Bags from other stacks: px4_msgs (types only in the bag's stored definitions), mavros, sqlite3; resampling."""
import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from ssm_mbrl_ros.core import frames
from ssm_mbrl_ros.bags.bagread import TopicNames
from ssm_mbrl_ros.bags.dataset import AlignConfig, bags_to_dataset, slerp

PX4_ODOM = """uint64 timestamp
uint64 timestamp_sample
uint8 POSE_FRAME_UNKNOWN = 0
uint8 POSE_FRAME_NED = 1
uint8 POSE_FRAME_FRD = 2
uint8 pose_frame
float32[3] position
float32[4] q
uint8 VELOCITY_FRAME_UNKNOWN = 0
uint8 VELOCITY_FRAME_NED = 1
uint8 VELOCITY_FRAME_FRD = 2
uint8 VELOCITY_FRAME_BODY_FRD = 3
uint8 velocity_frame
float32[3] velocity
float32[3] angular_velocity
float32[3] position_variance
float32[3] orientation_variance
float32[3] velocity_variance
uint8 reset_counter
int8 quality
"""
PX4_RATES = """uint64 timestamp
float32 roll
float32 pitch
float32 yaw
float32[3] thrust_body
bool reset_integral
"""
MAVROS_ATT = """std_msgs/Header header
uint8 type_mask
uint8 IGNORE_ROLL_RATE = 1
uint8 IGNORE_PITCH_RATE = 2
uint8 IGNORE_YAW_RATE = 4
uint8 IGNORE_THRUST = 64
uint8 IGNORE_ATTITUDE = 128
geometry_msgs/Quaternion orientation
geometry_msgs/Vector3 body_rate
float32 thrust
"""


def truth(t):
    """Smooth ground-truth flight in ENU/FLU at times t (s): pos, quat wxyz, vel, omega."""
    pos = np.stack([np.sin(t), np.cos(t), 1 + 0.1 * t], -1)
    vel = np.stack([np.cos(t), -np.sin(t), 0.1 + 0 * t], -1)
    quat = frames.quat_from_euler_zyx(0.2 * np.sin(t), 0.1 * np.cos(2 * t), 0.8 * t)
    omega = np.stack([0.1 * np.sin(t), 0.2 + 0 * t, 0.3 * np.cos(t)], -1)
    return pos, quat, vel, omega


def _irregular_times(seconds, hz, rng):
    t = np.arange(0, seconds, 1 / hz)
    return np.sort(t + rng.uniform(-0.3, 0.3, len(t)) / hz)


def _typestore(extra):
    ts = get_typestore(Stores.ROS2_HUMBLE)
    for name, text in extra.items():
        ts.register(get_types_from_msg(text, name))
    return ts


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3])
def test_px4_bag_decoded_from_stored_definitions_and_converted(tmp_path, storage):
    ts = _typestore({"px4_msgs/msg/VehicleOdometry": PX4_ODOM, "px4_msgs/msg/VehicleRatesSetpoint": PX4_RATES})
    Odo, Rates = ts.types["px4_msgs/msg/VehicleOdometry"], ts.types["px4_msgs/msg/VehicleRatesSetpoint"]
    rng = np.random.default_rng(0)
    t_odom = 3.0 + _irregular_times(3.0, 250, rng)
    pos, quat, vel, omega = truth(t_odom)
    q_ned = frames.attitude_enu_flu_to_ned_frd(quat)
    path = tmp_path / "px4"
    with Writer(path, version=9, storage_plugin=storage) as w:
        co = w.add_connection("/fmu/out/vehicle_odometry", Odo.__msgtype__, typestore=ts)
        cr = w.add_connection("/fmu/in/vehicle_rates_setpoint", Rates.__msgtype__, typestore=ts)
        for k, t in enumerate(t_odom):
            us = int(round(t * 1e6))
            m = Odo(timestamp=us, timestamp_sample=us, pose_frame=1, position=frames.enu_to_ned(pos[k]).astype(np.float32),
                    q=q_ned[k].astype(np.float32), velocity_frame=1 if k % 2 else 3,
                    velocity=(frames.enu_to_ned(vel[k]) if k % 2 else
                              frames.flu_to_frd(frames.quat_rotate(frames.quat_conjugate(quat[k]), vel[k]))).astype(np.float32),
                    angular_velocity=frames.flu_to_frd(omega[k]).astype(np.float32),
                    position_variance=np.zeros(3, np.float32), orientation_variance=np.zeros(3, np.float32),
                    velocity_variance=np.zeros(3, np.float32), reset_counter=0, quality=0)
            w.write(co, int(t * 1e9), bytes(ts.serialize_cdr(m, Odo.__msgtype__)))
        for k, t in enumerate(np.arange(3.0, 6.0, 0.02)):  # 50 Hz commands
            r = Rates(timestamp=int(round(t * 1e6)), roll=0.5, pitch=-0.25, yaw=1.0,
                      thrust_body=np.array([0, 0, -0.5], np.float32), reset_integral=False)
            w.write(cr, int(t * 1e9), bytes(ts.serialize_cdr(r, Rates.__msgtype__)))
    names = TopicNames(odom="/fmu/out/vehicle_odometry", cmd="/fmu/in/vehicle_rates_setpoint")
    data, _, rep = bags_to_dataset([path], names, AlignConfig(rate_hz=100.0), thrust_max_mps2=40.0)
    assert rep.episodes == 1 and 280 <= len(data["obs"]) <= 300
    kinds = rep.kinds()
    assert kinds["reward_unknown"] == 1 and np.isnan(data["reward"]).all()  # no task in a PX4 log: said so
    t_grid = t_odom[0] + np.arange(len(data["obs"])) / 100.0
    p, q, v, w_ = truth(t_grid)
    obs = data["obs"]
    np.testing.assert_allclose(obs[:, 0:3], p, atol=2e-4)  # no setpoint known: task block is pos ENU
    np.testing.assert_allclose(obs[:, 3:6], v, atol=2e-4)
    np.testing.assert_allclose(obs[:, 6:15], frames.quat_to_rotmat(q).reshape(-1, 9), atol=5e-4)
    np.testing.assert_allclose(obs[:, 15:18], w_, atol=2e-4)
    np.testing.assert_allclose(data["ctbr"], np.tile([20.0, 0.5, 0.25, -1.0], (len(obs), 1)), atol=1e-6)


def test_mavros_attitude_target(tmp_path):
    ts = _typestore({"mavros_msgs/msg/AttitudeTarget": MAVROS_ATT})
    Att = ts.types["mavros_msgs/msg/AttitudeTarget"]
    T = ts.types
    rng = np.random.default_rng(1)
    t_odom = 1.0 + _irregular_times(1.0, 100, rng)
    pos, quat, vel, omega = truth(t_odom)
    from ssm_mbrl_ros.bags.store import _MsgFactory

    f = _MsgFactory()
    path = tmp_path / "mavros"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        co = w.add_connection("/mavros/local_position/odom", "nav_msgs/msg/Odometry", typestore=ts)
        ca = w.add_connection("/mavros/setpoint_raw/attitude", Att.__msgtype__, typestore=ts)
        for k, t in enumerate(t_odom):
            ns = int(t * 1e9)
            vb = frames.quat_rotate(frames.quat_conjugate(quat[k]), vel[k])
            w.write(co, ns, f.odom(ns, pos[k], frames.quat_wxyz_to_xyzw(quat[k]), vb, omega[k]))
            a = Att(header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=int(ns // 10**9), nanosec=int(ns % 10**9)),
                                                   frame_id="base_link"), type_mask=128,
                    orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
                    body_rate=T["geometry_msgs/msg/Vector3"](x=0.1 * k, y=0.0, z=-0.2), thrust=0.25)
            w.write(ca, ns, bytes(ts.serialize_cdr(a, Att.__msgtype__)))
    names = TopicNames(odom="/mavros/local_position/odom", cmd="/mavros/setpoint_raw/attitude")
    data, _, rep = bags_to_dataset([path], names, AlignConfig(rate_hz=50.0), thrust_max_mps2=30.0)
    assert rep.episodes == 1
    np.testing.assert_allclose(data["ctbr"][:, 0], 7.5, rtol=1e-6)
    np.testing.assert_allclose(data["ctbr"][:, 3], -0.2, rtol=1e-6)
    assert np.all(np.diff(data["ctbr"][:, 1]) > 0)  # zero-order hold follows the increasing roll-rate command
    t_grid = t_odom[0] + np.arange(len(data["obs"])) / 50.0
    np.testing.assert_allclose(data["obs"][:, 0:3], truth(t_grid)[0], atol=5e-4)


def test_slerp_midpoint_and_shortest_path():
    q0 = frames.quat_from_euler_zyx(0.0, 0.0, 0.0)[None]
    q1 = frames.quat_from_euler_zyx(0.0, 0.0, 1.0)[None]
    mid = slerp(q0, q1, np.array([0.5]))
    np.testing.assert_allclose(mid, frames.quat_from_euler_zyx(0.0, 0.0, 0.5)[None], atol=1e-12)
    mid2 = slerp(q0, -q1, np.array([0.5]))  # same rotation, other hemisphere: still the short way
    np.testing.assert_allclose(frames.quat_to_rotmat(mid2), frames.quat_to_rotmat(mid), atol=1e-12)
