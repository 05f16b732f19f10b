"""The fly_real graph on its embedded default (no drone), in lockstep so that a loaded CI machine cannot trip the
50 ms staleness guards (real time: `ssm-mbrl launch fly_real`, measured in docs/ros.md): fc-sim (stand-in PX4 over MAVLink/UDP) -> fc_link ->
fc/odom -> state_bridge (source=px4) -> odom -> policy (shipped hover model) -> cmd_ctbr -> fc_link -> fc-sim.
The drone takes off and hovers, no failsafe fires, the recorder writes the flight to an episode store that the
bag reader accepts, and Ctrl-C stops every process."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import rclpy
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data
from std_msgs.msg import Bool, String

LATCHED = QoSProfile(depth=10, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


def test_fly_real_default_hovers_records_and_stops(tmp_path):
    store = tmp_path / "flights"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssm_mbrl_ros.cli", "launch", "fly_real", "--set", f"recorder.store={store}",
         "--set", "recorder.chunk_every_s=5.0", "--arg", "lockstep=true", "--duration", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    rclpy.init()
    node = Node("fly_real_probe")
    poses, events, stale, stamps = [], [], [], []

    def on_odom(m):
        poses.append((time.monotonic(), m.pose.pose.position.x, m.pose.pose.position.y, m.pose.pose.position.z))
        stamps.append(m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec)

    node.create_subscription(Odometry, "odom", on_odom, qos_profile_sensor_data)
    node.create_subscription(String, "safety/event", lambda m: events.append(json.loads(m.data)), LATCHED)
    node.create_subscription(Bool, "odom_stale", lambda m: stale.append(m.data), LATCHED)
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and not (poses and poses[-1][3] > 1.3 and time.monotonic() - first_high(poses) > 8):
            assert proc.poll() is None, proc.stdout.read()
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    p = np.array(poses)
    assert p.size and p[-1, 3] > 1.3, out[-3000:]
    last = p[p[:, 0] > p[-1, 0] - 5.0, 1:]
    err = np.linalg.norm(last - [0.0, 0.0, 1.5], axis=1)
    print(f"fly_real hover RMSE over the last 5 s: {np.sqrt(np.mean(err ** 2)):.3f} m, max {err.max():.3f} m")
    assert np.sqrt(np.mean(err ** 2)) < 0.15, (err.max(), out[-3000:])
    assert events == [], events
    # lockstep: every stamp is the flight controller's simulated time (from 0 at boot, not the wall clock), published
    # on /clock and used by every node (use_sim_time)
    st = np.array(stamps)
    sim_span, wall_span = st[-1] - st[0], p[-1, 0] - p[0, 0]
    print(f"fly_real lockstep: {sim_span:.1f} simulated s in {wall_span:.1f} wall s ({sim_span / wall_span:.2f}x)")
    assert st[0] < 120.0 and np.all(np.diff(st) >= 0), st[:5]
    assert sim_span > 0.3 * wall_span
    assert stale and stale[-1] is False
    assert proc.returncode in (0, 130), out[-3000:]
    for name in ("fc_sim", "fc_link", "state_bridge", "policy", "recorder"):
        assert f"started {name}" in out
    chunks = sorted(store.glob("chunk_*"))
    assert chunks, out[-3000:]
    from ssm_mbrl_ros.bags.bag_info import bags_info

    info = bags_info(store)
    assert all(b["readable"] for b in info["bags"]), info
    from ssm_mbrl_ros.sim.tasks import load_task_config

    # odometry aligned with its commands, resampled at the recorded task's control rate: more than 5 s of flight
    assert sum(b["steps"] for b in info["bags"]) > 5 * load_task_config("hover").control_hz, info


def first_high(poses):
    """Time the altitude first exceeded 1.3 m (the drone reached the hover height)."""
    for t, _, _, z in poses:
        if z > 1.3:
            return t
    return time.monotonic()
