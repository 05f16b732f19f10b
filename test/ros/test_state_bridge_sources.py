"""state_bridge source=mocap / px4 over DDS: poses and FC odometry become odom with velocity, covariance and a
staleness flag; the sim source publishes its reference and markers; an unknown source fails with the reason."""
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data
from std_msgs.msg import Bool
from visualization_msgs.msg import MarkerArray

LATCHED = QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


def start_bridge(*params):
    args = [sys.executable, "-m", "ssm_mbrl_ros.ros.state_bridge_node", "--ros-args"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


class Feeder(Node):
    """Publishes the input stream and records what the bridge says."""

    def __init__(self, input_type, input_topic):
        super().__init__("feeder")
        self.pub = self.create_publisher(input_type, input_topic, qos_profile_sensor_data)
        self.odom: list[Odometry] = []
        self.stale: list[bool] = []
        self.trail: Path | None = None
        self.create_subscription(Odometry, "odom", self.odom.append, qos_profile_sensor_data)
        self.create_subscription(Bool, "odom_stale", lambda m: self.stale.append(m.data), LATCHED)
        self.create_subscription(Path, "trail", lambda m: setattr(self, "trail", m), 1)

    def spin_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=0.01)

    def wait_connected(self, proc, timeout_s=60.0):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and (self.pub.get_subscription_count() == 0 or not self.stale):
            assert proc.poll() is None, proc.stdout.read()
            rclpy.spin_once(self, timeout_sec=0.05)
        assert self.pub.get_subscription_count() > 0 and self.stale == [True]


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def test_mocap_poses_become_odometry_with_velocity_rates_covariance_and_staleness(ros):
    proc = start_bridge("source:=mocap", "stale_after_s:=0.1")
    node = Feeder(PoseStamped, "mocap/pose")
    try:
        node.wait_connected(proc)
        t0 = node.get_clock().now().nanoseconds * 1e-9
        for k in range(150):  # 1.5 s of a 2 m circle at 1 rad/s, yawing with it, 100 Hz
            t = k * 0.01
            msg = PoseStamped()
            ns = int((t0 + t) * 1e9)
            msg.header.stamp.sec, msg.header.stamp.nanosec = ns // 10**9, ns % 10**9
            msg.header.frame_id = "odom"
            msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = 2 * math.cos(t), 2 * math.sin(t), 1.5
            yaw = t + math.pi / 2
            msg.pose.orientation.w, msg.pose.orientation.z = math.cos(yaw / 2), math.sin(yaw / 2)
            node.pub.publish(msg)
            node.spin_for(0.01)
        node.spin_for(0.5)  # input stopped: the flag must rise
    finally:
        out = stop(proc)
        node.destroy_node()
    assert len(node.odom) > 100, out
    last = node.odom[-1]
    tw = last.twist.twist
    # nose along the velocity: body-frame velocity is (2, 0, 0) m/s, yaw rate 1 rad/s
    assert abs(tw.linear.x - 2.0) < 0.15 and abs(tw.linear.y) < 0.15, (tw.linear, out)
    assert abs(tw.angular.z - 1.0) < 0.1, tw.angular
    assert last.header.frame_id == "odom" and last.child_frame_id == "base_link"
    cov = np.array(last.twist.covariance).reshape(6, 6)
    assert cov[0, 0] > 0 and cov[5, 5] > 0 and np.allclose(cov, cov.T)
    assert node.stale[:3] == [True, False, True], node.stale
    assert node.trail is not None and len(node.trail.poses) >= 5


def test_px4_odometry_passes_through_with_default_covariance_and_staleness(ros):
    proc = start_bridge("source:=px4", "stale_after_s:=0.05", "vel_std_mps:=0.2")
    node = Feeder(Odometry, "fc/odom")
    try:
        node.wait_connected(proc)
        for k in range(50):
            msg = Odometry()
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
            msg.pose.pose.position.z = 1.0 + 0.01 * k
            msg.pose.pose.orientation.w = 1.0
            msg.twist.twist.linear.z = 1.0
            node.pub.publish(msg)
            node.spin_for(0.01)
        node.spin_for(0.3)
    finally:
        out = stop(proc)
        node.destroy_node()
    assert len(node.odom) >= 40, out
    last = node.odom[-1]
    assert abs(last.pose.pose.position.z - 1.49) < 1e-9 and abs(last.twist.twist.linear.z - 1.0) < 1e-9
    assert abs(np.array(last.twist.covariance).reshape(6, 6)[0, 0] - 0.04) < 1e-12
    assert node.stale[:3] == [True, False, True], node.stale


def test_sim_source_publishes_reference_and_markers(ros):
    proc = start_bridge("source:=sim", "task:=figure8", "compile:=false")
    node = Node("viewer")
    got = {}
    node.create_subscription(Path, "reference", lambda m: got.setdefault("ref", m), LATCHED)
    node.create_subscription(MarkerArray, "markers", lambda m: got.setdefault("markers", m), LATCHED)
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end and len(got) < 2:
            assert proc.poll() is None, proc.stdout.read()
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        out = stop(proc)
        node.destroy_node()
    assert len(got) == 2, out
    assert len(got["ref"].poses) == 400 and got["ref"].header.frame_id == "odom"
    ns = [m.ns for m in got["markers"].markers]
    assert "reference" in ns


def test_unknown_source_and_bad_values_fail_with_the_reason():
    for params, expect in ((["source:=gps"], "source: expected one of"),
                           (["source:=mocap", "stale_after_s:=-1.0"], "stale_after_s"),
                           (["source:=mocap", "pos_std_m:=0.0"], "pos_std_m")):
        proc = start_bridge(*params)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 2, out
        assert expect in out, out
