"""The fly_sim graph over DDS: simulated drone + ONNX policy node close the loop; hot swap; clean shutdown;
bad parameters fail with the reason."""
import json
import os
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
from rclpy.qos import qos_profile_sensor_data
from std_msgs.msg import String

from ssm_mbrl_ros.agent.actor_critic import Actor
from ssm_mbrl_ros.export.policy_graph import export_policy
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.world_models.factory import make_world_model
from ssm_mbrl_ros.world_models.config import wm_preset


def export(path, seed):
    import torch

    torch.manual_seed(seed)
    env = make_env("hover", 1)
    wm = make_world_model(wm_preset("tiny"), env.obs_layout.dim, 4, 0)
    return export_policy(wm, Actor(wm.feat_dim, hidden=16, init_action=[-0.56, 0, 0, 0]), path,
                         obs_layout=env.obs_layout, action_spec=env.action_spec, control_hz=100.0, vehicle="agile5",
                         task="hover")


class Probe(Node):
    """Listens to the graph's outputs."""

    def __init__(self):
        super().__init__("probe")
        self.odom_stamps, self.cmd_stamps, self.diag, self.episodes = [], [], {}, []
        self.create_subscription(Odometry, "odom", lambda m: self.odom_stamps.append(_ns(m.header.stamp)),
                                 qos_profile_sensor_data)
        self.create_subscription(TwistStamped, "cmd_ctbr", self.on_cmd, qos_profile_sensor_data)
        self.create_subscription(DiagnosticArray, "diagnostics", self.on_diag, 10)
        self.create_subscription(String, "episode", lambda m: self.episodes.append(json.loads(m.data)), 10)
        self.model_pub = self.create_publisher(String, "policy/model", 10)
        self.thrust = []

    def on_cmd(self, m):
        self.cmd_stamps.append(_ns(m.header.stamp))
        self.thrust.append(m.twist.linear.z)

    def on_diag(self, m):
        self.diag = {kv.key: kv.value for kv in m.status[0].values}

    def spin_until(self, cond, timeout_s):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not cond():
            rclpy.spin_once(self, timeout_sec=0.05)
        return cond()


def _ns(stamp):
    return stamp.sec * 1_000_000_000 + stamp.nanosec


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return export(d / "a.onnx", 0), export(d / "b.onnx", 1)


def test_graph_closes_the_loop_hot_swaps_and_shuts_down(models):
    a, b = models
    proc = subprocess.Popen([sys.executable, "-m", "ssm_mbrl_ros.cli", "launch", "fly_sim",
                             "--set", f"policy.model={a}", "--set", "state_bridge.task_overrides=[episode_length_s=2.0]",
                             "--duration", "300"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    probe = Probe()
    try:
        assert probe.spin_until(lambda: len(probe.cmd_stamps) > 200, 180), "no commands from the policy node"
        answered = set(probe.cmd_stamps) & set(probe.odom_stamps)
        assert len(answered) >= 0.9 * len(probe.cmd_stamps)  # each command answers one odometry stamp
        assert all(0.0 <= t <= 45.0 for t in probe.thrust)
        assert probe.spin_until(lambda: probe.episodes, 30), "the bridge reported no finished episode"
        # hot swap mid-flight: a valid model is swapped in, a broken one is rejected, flight goes on
        probe.model_pub.publish(String(data=str(b)))
        assert probe.spin_until(lambda: probe.diag.get("swaps") == "1" and str(b) in probe.diag.get("model", ""), 10)
        probe.model_pub.publish(String(data=str(b.with_name("missing.onnx"))))
        assert probe.spin_until(lambda: probe.diag.get("rejected_models") == "1", 10)
        n = len(probe.cmd_stamps)
        assert probe.spin_until(lambda: len(probe.cmd_stamps) > n + 50, 10), "flight stopped after a rejected swap"
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(signal.SIGINT)  # the launcher stops its nodes and exits
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out[-2000:]
    pids = [int(line.split("pid ")[1].rstrip(")")) for line in out.splitlines() if line.startswith("started ")]
    assert len(pids) == 2
    for pid in pids:  # every node process is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_wrong_parameters_fail_with_the_reason(models, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy:\n  ros__parameters:\n    setpoint_m: [1.0, 2.0]\n")
    r = subprocess.run([sys.executable, "-m", "ssm_mbrl_ros.ros.policy_node", "--ros-args", "--params-file", str(bad),
                        "-p", f"model:={models[0]}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "setpoint_m: expected [x, y, z]" in r.stderr, r.stderr[-1000:]
    r = subprocess.run([sys.executable, "-m", "ssm_mbrl_ros.ros.policy_node", "--ros-args", "-p", "model:=nosuch"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "model 'nosuch'" in r.stderr, r.stderr[-1000:]
    r = subprocess.run([sys.executable, "-m", "ssm_mbrl_ros.ros.policy_node", "--ros-args", "-p", f"model:={models[0]}",
                        "-p", "carrot_m:=0.0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "policy parameters.carrot_m: outside the allowed range" in r.stderr, r.stderr[-1000:]
    r = subprocess.run([sys.executable, "-m", "ssm_mbrl_ros.cli", "launch", "fly_sim", "--set", "nobody.x=1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "NODE.PARAM=VALUE" in r.stderr


def test_shipped_hover_model_hovers_through_the_graph():
    """The simulated drone flown by models/hover.onnx over DDS in real time: full episodes, ending near the setpoint."""
    from ssm_mbrl_ros.runtime.models import find_model

    model = find_model("hover")
    proc = subprocess.Popen([sys.executable, "-m", "ssm_mbrl_ros.cli", "launch", "fly_sim", "--set",
                             f"policy.model={model}", "--set", "state_bridge.task_overrides=[episode_length_s=6.0]",
                             "--duration", "300"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    probe = Probe()
    try:
        assert probe.spin_until(lambda: len(probe.episodes) >= 3, 240), f"episodes: {probe.episodes}"
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    eps = probe.episodes[:3]
    print("episodes through the graph:", eps)
    assert not any(e["terminated"] for e in eps), eps  # no crash, no leaving the box: every episode runs to the end
    assert np.median([e["final_pos_err_m"] for e in eps]) < 0.3, eps


def test_shipped_figure8_model_tracks_through_the_graph():
    """models/figure8.onnx flies the simulated drone's figure-8 over DDS in real time: the policy node rebuilds the
    reference from the policy's task and anchors its phase to the drone at every episode start."""
    from ssm_mbrl_ros.runtime.models import find_model

    proc = subprocess.Popen([sys.executable, "-m", "ssm_mbrl_ros.cli", "launch", "fly_sim", "--set",
                             f"policy.model={find_model('figure8')}", "--set", "state_bridge.task=figure8",
                             "--set", "state_bridge.task_overrides=[episode_length_s=6.0]", "--duration", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    probe = Probe()
    try:
        assert probe.spin_until(lambda: len(probe.episodes) >= 3, 240), f"episodes: {probe.episodes}"
        assert probe.spin_until(lambda: probe.diag.get("task") == "figure8", 5), probe.diag
        assert "reference_phase_s" in probe.diag, probe.diag
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
    eps = probe.episodes[:3]
    print("figure-8 episodes through the graph:", eps)
    assert not any(e["terminated"] for e in eps), (eps, out[-2000:])
    assert sum(e["success"] for e in eps) >= 2, eps  # full episodes with position RMSE < 0.3 m


def test_launcher_stops_on_sigint_even_when_started_with_sigint_ignored(models):
    """A background job of a non-interactive shell inherits SIGINT ignored; Ctrl-C (SIGINT) must still stop the
    graph and every node, with exit code 130."""
    proc = subprocess.Popen([sys.executable, "-m", "ssm_mbrl_ros.cli", "launch", "fly_sim", "--set",
                             f"policy.model={models[0]}", "--set", "state_bridge.compile=false", "--duration", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        lines = []
        for line in proc.stdout:  # wait until both nodes run
            lines.append(line)
            if "simulated hover" in line or len(lines) > 200:
                break
        pids = [int(x.split("pid ")[1].rstrip(")\n")) for x in lines if x.startswith("started ")]
        assert len(pids) == 2, lines
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130
    for pid in pids:  # the nodes are gone too
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
