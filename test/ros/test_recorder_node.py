"""Recorder node over DDS: live odometry/commands/privileged state become store chunks, one per episode, that the
project's bag reader and dataset read back exactly; Ctrl-C loses nothing; bad parameters exit 2."""
import json
import time

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PointStamped, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data
from std_msgs.msg import Float32MultiArray, String

from node_procs import NS, run_bad, start, stop
from ssm_mbrl_ros.bags.bag_info import bags_info
from ssm_mbrl_ros.bags.bagread import read_bag
from ssm_mbrl_ros.bags.replay import Replay
from ssm_mbrl_ros.bags.store import list_chunks, list_partial
from ssm_mbrl_ros.ros.conversions import ctbr_to_twist, state17_to_odom


class Flight(Node):
    """Publishes what the simulated state bridge and the policy node would, with known values."""

    def __init__(self):
        super().__init__("fake_flight", namespace=NS)
        self.odom = self.create_publisher(Odometry, "odom", qos_profile_sensor_data)
        self.cmd = self.create_publisher(TwistStamped, "cmd_ctbr", qos_profile_sensor_data)
        self.priv = self.create_publisher(Float32MultiArray, "privileged", qos_profile_sensor_data)
        self.setpoint = self.create_publisher(PointStamped, "setpoint",
                                              QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL))
        self.episode = self.create_publisher(String, "episode", 10)
        self.sent: dict[int, tuple] = {}  # odometry stamp -> (position, thrust)
        self.rng = np.random.default_rng(0)

    def publish_setpoint(self, xyz):
        msg = PointStamped()
        msg.header.stamp, msg.header.frame_id = self.get_clock().now().to_msg(), "odom"
        msg.point.x, msg.point.y, msg.point.z = xyz
        self.setpoint.publish(msg)

    def step(self):
        s = np.zeros(17)
        s[0:3] = self.rng.normal(size=3) + [0, 0, 1.5]
        s[3] = 1.0
        s[7:10] = self.rng.normal(size=3)
        ctbr = np.array([self.rng.uniform(5, 15), 0.1, -0.2, 0.3])
        stamp = self.get_clock().now().to_msg()
        self.odom.publish(state17_to_odom(s, Odometry(), stamp))
        self.priv.publish(Float32MultiArray(data=self.rng.normal(size=25).astype(np.float32).tolist()))
        self.cmd.publish(ctbr_to_twist(ctbr, TwistStamped(), stamp))
        self.sent[stamp.sec * 1_000_000_000 + stamp.nanosec] = (s[0:3].copy(), ctbr[0])


def test_recorder_writes_each_live_episode_as_a_chunk_the_reader_reads_back(tmp_path):
    store = tmp_path / "flights"
    rec = start("recorder_node", {"store": store, "task": "hover", "chunk_every_s": 60.0})
    rclpy.init()
    fl = Flight()
    try:
        end = time.monotonic() + 60
        while min(p.get_subscription_count() for p in (fl.odom, fl.cmd, fl.priv, fl.episode)) == 0:
            assert time.monotonic() < end and rec.poll() is None, "recorder never subscribed"
            rclpy.spin_once(fl, timeout_sec=0.1)
        fl.publish_setpoint((0.0, 0.0, 1.5))
        time.sleep(0.5)
        first = []
        for k in range(200):  # two episodes of 1 s at 100 Hz; the second starts as the state bridge starts one
            fl.step()
            if k == 100:  # the bridge: odometry of the new episode's first state, end-of-episode JSON, setpoint
                fl.episode.publish(String(data=json.dumps({"terminated": True, "return": -9.5})))
                fl.publish_setpoint((1.0, -1.0, 2.0))
            if k < 100:
                first.append(max(fl.sent))
            time.sleep(0.01)
        time.sleep(0.5)
    finally:
        fl.destroy_node()
        rclpy.try_shutdown()
        rc, out = stop(rec)
    assert rc == 0 and "wrote 2 chunk(s)" in out, out[-3000:]
    chunks = list_chunks(store)
    assert len(chunks) == 2 and list_partial(store) == []
    got = 0
    for chunk, stamps in zip(chunks, (set(first), set(fl.sent) - set(first))):
        st = read_bag(chunk)  # the project's reader (fast MCAP path)
        assert st.topics["/odom"]["type"] == "nav_msgs/msg/Odometry" and st.topics["/privileged"]["count"] > 0
        n = len(st.odom["t_ns"])
        assert n >= 0.95 * len(stamps) and set(st.odom["t_ns"].tolist()) <= stamps  # this episode's samples only
        for t, pos in zip(st.odom["t_ns"].tolist(), st.odom["pos"]):
            np.testing.assert_allclose(pos, fl.sent[t][0], rtol=0, atol=1e-12)  # bytes as published, exactly
        thrust = dict(zip(st.cmd["t_ns"].tolist(), st.cmd["ctbr"][:, 0]))
        assert all(thrust[t] == fl.sent[t][1] for t in thrust)
        got += n
    print(f"recorded {got} of {len(fl.sent)} odometry messages (best effort, localhost)")
    rp = Replay(store)
    data = rp.arrays()
    assert int(data["is_first"].sum()) == 2 and rp.report.problems == []
    k = int(np.flatnonzero(data["is_first"])[1])
    assert data["cont"][k - 1] == 0.0  # the bridge said episode 1 terminated
    assert np.isfinite(data["reward"]).all()  # task + setpoint known: rewards rebuilt
    info = bags_info(store)  # what `ssm-mbrl bags info` prints
    assert [b["episodes"] for b in info["bags"]] == [1, 1] and info["bags"][0]["tasks"] == ["hover"]


@pytest.mark.parametrize("params,reason", [
    ({"chunk_every_s": 0.0}, "recorder parameters.chunk_every_s: outside the allowed range [0.1, 3600.0]"),
    ({"task": "hoover"}, "unknown task 'hoover'"),
    ({"odom_topic": "''"}, "recorder parameters.odom_topic: a topic name is required"),
])
def test_bad_parameters_exit_2_with_the_reason(tmp_path, params, reason):
    r = run_bad("recorder_node", {"store": tmp_path / "s", **params})
    assert r.returncode == 2 and reason in r.stderr, (r.returncode, r.stderr[-2000:])
