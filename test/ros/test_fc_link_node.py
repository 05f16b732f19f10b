"""fc_link over real DDS and real MAVLink/UDP: fc-sim (lockstep, in a thread here) <- fc_link node (subprocess) <->
an rclpy controller in this test (fc/odom -> geometric controller -> cmd_ctbr). The drone takes off in OFFBOARD and
hovers; a silent controller trips stale_command (HOLD), then the operator kill force-disarms; bad parameters exit 2.
Lockstep keeps simulated time with the slowest party, so a loaded 2-core machine slows the test but cannot fail it."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data
from std_msgs.msg import Empty, String

from ssm_mbrl_ros.fcsim import FcSim, FcSimConfig
from ssm_mbrl_ros.link.offboard_loop import GeometricPolicy
from ssm_mbrl_ros.ros.conversions import ctbr_to_twist, odom_to_state17
from ssm_mbrl_ros.sim.vehicle import load_vehicle

TARGET = np.array([0.3, -0.2, 1.2])


class Controller(Node):
    """The policy node's stand-in: answers every fc/odom with a CTBR command carrying the same stamp."""

    def __init__(self):
        super().__init__("test_controller")
        self.policy = GeometricPolicy(load_vehicle("agile5"), TARGET)
        self.active = True
        self.states, self.events, self.diag = [], [], {}
        self._s, self._cmd = np.zeros(17), TwistStamped()
        self.pub = self.create_publisher(TwistStamped, "cmd_ctbr", qos_profile_sensor_data)
        self.kill = self.create_publisher(Empty, "safety/kill", 10)
        self.create_subscription(Odometry, "fc/odom", self.on_odom, qos_profile_sensor_data)
        latched = QoSProfile(depth=10, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, "safety/event", lambda m: self.events.append(json.loads(m.data)), latched)
        self.create_subscription(DiagnosticArray, "diagnostics", self.on_diag, 10)

    def on_odom(self, msg):
        s = odom_to_state17(msg, self._s)
        self.states.append((msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec, s.copy()))
        if self.active:
            self.pub.publish(ctbr_to_twist(self.policy(s, 0.0), self._cmd, msg.header.stamp))

    def on_diag(self, msg):
        if msg.status and msg.status[0].name == "ssm_mbrl_ros/fc_link":
            self.diag = {kv.key: kv.value for kv in msg.status[0].values}

    def spin_until(self, cond, timeout_s):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not cond():
            rclpy.spin_once(self, timeout_sec=0.02)
        return cond()


def _node(*params):
    args = [sys.executable, "-m", "ssm_mbrl_ros.ros.fc_link_node", "--ros-args"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.communicate(timeout=20)[0]


def test_takeoff_hover_then_stale_command_hold_then_kill():
    fc = FcSim(FcSimConfig(url="udpin:127.0.0.1:0", lockstep=True)).start()
    proc = _node(f"url:=udpout:127.0.0.1:{fc.port}", "lockstep:=true", "auto_arm:=true", "flight_controller:=sim")
    rclpy.init()
    ctl = Controller()
    out = ""
    try:
        assert ctl.spin_until(lambda: fc.mode == "OFFBOARD", 120), f"no OFFBOARD; fc events {fc.stats.events}"
        assert fc.armed
        # hover: 4 s of simulated time after OFFBOARD, then the last 2 s must hold the target
        t_off = fc.now()
        assert ctl.spin_until(lambda: fc.now() > t_off + 4.0, 120), "simulated time stalled"
        assert fc.mode == "OFFBOARD" and ctl.events == [], ctl.events
        recent = np.array([s[0:3] for _, s in ctl.states[-200:]])
        rmse = float(np.sqrt(np.mean(np.sum((recent - TARGET) ** 2, axis=1))))
        assert rmse <= 0.1, rmse
        steps = np.diff([t for t, _ in ctl.states[-200:]]) / 0.01  # stamps = FC (simulated) time, 10 ms apart
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-4)  # (a best-effort sample may be lost)
        assert np.mean(np.round(steps) == 1) > 0.9 and steps.min() > 0.5
        assert ctl.spin_until(lambda: ctl.diag.get("mode") == "OFFBOARD", 5), ctl.diag
        assert ctl.diag.get("lockstep") == "True" and ctl.diag.get("armed") == "True"
        # the controller goes silent: the node free-runs after 0.5 s and the supervisor holds
        ctl.active = False
        assert ctl.spin_until(lambda: ctl.events, 30), "no failsafe event"
        assert ctl.events[0]["reason"] == "stale_command" and ctl.events[0]["action"] == "hold", ctl.events
        assert ctl.spin_until(lambda: fc.mode == "HOLD", 10), fc.mode
        assert fc.armed and fc.state()[2] > 0.8  # holding in the air
        assert ctl.spin_until(lambda: ctl.diag.get("failsafe") == "stale_command", 5)
        # the operator kill overrides HOLD: force disarm
        ctl.kill.publish(Empty())
        assert ctl.spin_until(lambda: len(ctl.events) >= 2, 10), ctl.events
        assert ctl.events[1]["reason"] == "operator_kill" and ctl.events[1]["action"] == "kill"
        assert ctl.spin_until(lambda: not fc.armed, 10)
    finally:
        ctl.destroy_node()
        rclpy.try_shutdown()
        out = _stop(proc)
        fc.stop()
    assert proc.returncode == 0, out[-3000:]
    assert "failsafe stale_command: HOLD" in out and "operator kill received" in out, out[-3000:]
    assert any("companion: failsafe stale_command: HOLD" in text for _, text in fc.stats.events)


def test_real_time_mode_hovers_and_holds_when_the_controller_stops():
    """The path that flies a real PX4: wall-clock timer at 100 Hz; limits widened for a loaded CI machine."""
    fc = FcSim(FcSimConfig(url="udpin:127.0.0.1:0")).start()
    proc = _node(f"url:=udpout:127.0.0.1:{fc.port}", "auto_arm:=true", "flight_controller:=sim",
                 "supervisor_overrides:=['max_state_age_s=0.25', 'max_command_age_s=0.25']")
    rclpy.init()
    ctl = Controller()
    try:
        assert ctl.spin_until(lambda: fc.mode == "OFFBOARD", 120), f"no OFFBOARD; fc events {fc.stats.events}"
        n = len(ctl.states)
        assert ctl.spin_until(lambda: len(ctl.states) > n + 400, 60)  # ~4 s of 100 Hz state
        recent = np.array([s[0:3] for _, s in ctl.states[-100:]])
        assert float(np.sqrt(np.mean(np.sum((recent - TARGET) ** 2, axis=1)))) <= 0.15
        assert fc.mode == "OFFBOARD" and ctl.events == [], ctl.events
        ctl.active = False
        assert ctl.spin_until(lambda: ctl.events, 30), "no failsafe event"
        assert ctl.events[0]["reason"] == "stale_command", ctl.events
        assert ctl.spin_until(lambda: fc.mode == "HOLD", 10), fc.mode
    finally:
        ctl.destroy_node()
        rclpy.try_shutdown()
        out = _stop(proc)
        fc.stop()
    assert proc.returncode == 0, out[-3000:]


@pytest.mark.parametrize("params,reason", [
    (["backend:=bogus"], "backend: expected mavlink or px4_msgs"),
    (["url:=tcp:1.2.3.4:5"], "fc_link parameters.url"),
    (["rate_hz:=-5.0"], "fc_link parameters.rate_hz: outside the allowed range [1.0, 1000.0]"),
    (["backend:=px4_msgs"], "px4_msgs is not importable"),
    (["backend:=px4_msgs", "lockstep:=true"], "lockstep: only with backend mavlink"),
    (["supervisor_overrides:=['max_tilt_deg=500']"], "max_tilt_deg"),
    (["vehicle:=nosuch"], "vehicle 'nosuch'"),
    (["auto_arm:=true"], "refusing to arm a real flight controller by itself"),
    (["url:=udpin:192.0.2.1:14540"], "not a loopback address"),
    (["signing_key_hex:=abcd"], "64 hex digits"),
])
def test_bad_parameters_exit_2_with_the_reason(params, reason):
    proc = _node(*params)
    try:
        out = proc.communicate(timeout=90)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        out = proc.communicate()[0]
    assert proc.returncode == 2 and reason in out, out[-2000:]
