"""state_bridge source=sim: the simulator in real time as a drone on ROS topics (the node: state_bridge_node.py).

Publishes   odom + TF + trail (through the node's StateOutputs), setpoint (geometry_msgs/
            PointStamped, latched; republished at every episode start), privileged (std_msgs/
            Float32MultiArray: state 17 + parameter scales 5 + wind 3; simulation only), episode
            (std_msgs/String JSON at every episode end: return, length, success, final error),
            reference (nav_msgs/Path, latched) and markers (visualization_msgs/MarkerArray, latched: setpoint,
            gates, reference line), both republished at every episode start
            At an episode end the last state of the old episode is published first (odom + privileged), then
            episode, setpoint and the new episode's first state.
Subscribes  cmd_ctbr (geometry_msgs/TwistStamped CTBR); the latest command is held for one control
            period, after cmd_timeout_s without one the vehicle gets hover thrust and zero rates
One drone, stepped by a wall timer at rate_hz (default 100 Hz, whatever the task's policy rate); physics compiled
with torch inductor by default (about 2 ms per step here; the first start compiles for ~30 s).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import torch
from geometry_msgs.msg import PointStamped, TwistStamped
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data
from std_msgs.msg import Float32MultiArray, String

from ssm_mbrl_ros.core.config import doc
from ssm_mbrl_ros.ros.conversions import twist_to_ctbr
from ssm_mbrl_ros.ros.params import read_config
from ssm_mbrl_ros.ros.viz import path_msg, task_markers
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2


@dataclass
class SimBridgeConfig:
    """Parameters of the simulated state bridge (read once at start)."""

    task: str = doc("task (hover tasks publish their setpoint)", default="hover")
    vehicle: str = doc("vehicle name or YAML path", default="agile5")
    seed: int = doc("simulator seed", default=0, range=(0, 2**31 - 1))
    task_overrides: list = doc("task config overrides KEY=VALUE", default_factory=list)
    rate_hz: float = doc("simulator step and odometry rate, Hz: the drone's world, not a policy's rate (a policy "
                         "node runs at the rate its model was trained at and holds each command in between)",
                         range=(1.0, 1000.0),
                         default=100.0)
    compile: bool = doc("compile the physics with torch inductor (needed for 100 Hz real time on 2 cores)",
                        default=True)
    cmd_timeout_s: float = doc("after this long without cmd_ctbr, command hover thrust and zero rates (s)",
                               range=(0.001, 10.0),
                               default=0.1)
    cmd_topic: str = doc("CTBR command input topic", default="cmd_ctbr")
    setpoint_topic: str = doc("setpoint output topic", default="setpoint")


class SimSource:
    """A real-time simulated drone, driving the state bridge node's outputs."""

    def __init__(self, node, outputs):
        self.node, self.out = node, outputs
        self.cfg = cfg = read_config(node, SimBridgeConfig)
        torch.set_num_threads(1)
        self.env = make_env(cfg.task, 1, vehicle=cfg.vehicle, seed=cfg.seed,
                            overrides=list(cfg.task_overrides) + [f"control_hz={cfg.rate_hz:g}"],
                            compile_physics=cfg.compile)
        self.dt_s = self.env.dt_s
        self._hover = torch.tensor([[GRAVITY_MPS2, 0.0, 0.0, 0.0]])
        self._cmd = self._hover.clone()
        self._cmd_np = np.zeros(4)
        self._cmd_wall_s = -1e9
        self.steps = self.episodes = 0
        self.step_ms: list[float] = []
        latched = QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        self.pub_setpoint = node.create_publisher(PointStamped, cfg.setpoint_topic, latched)
        self.pub_priv = node.create_publisher(Float32MultiArray, "privileged", qos_profile_sensor_data)
        self.pub_episode = node.create_publisher(String, "episode", 10)
        node.create_subscription(TwistStamped, cfg.cmd_topic, self.on_cmd, qos_profile_sensor_data)
        t0 = time.perf_counter()
        self.env.reset(seed=cfg.seed)
        for _ in range(3):  # compile (first start) / warm the physics so the first real tick is on time
            self.env.step_physical(self._hover)
        self.env.reset(seed=cfg.seed)
        node.get_logger().info(f"simulated {cfg.task}/{cfg.vehicle} at {1 / self.dt_s:.0f} Hz "
                               f"(warm-up {time.perf_counter() - t0:.1f} s)")
        self.publish_episode_start()
        node.create_timer(self.dt_s, self.tick)

    def on_cmd(self, msg: TwistStamped) -> None:
        """Hold the latest CTBR command."""
        twist_to_ctbr(msg, self._cmd_np)
        self._cmd = torch.from_numpy(self._cmd_np.copy()).float()[None]
        self._cmd_wall_s = time.monotonic()

    def publish_episode_start(self) -> None:
        """The new episode's setpoint (hover tasks; latched), reference path and markers."""
        stamp = self.node.get_clock().now().to_msg()
        task = self.env.task
        sp = getattr(task, "setpoint_m", None)
        if sp is not None:
            msg = PointStamped()
            msg.header.stamp = stamp
            msg.header.frame_id = self.out.frames[0]
            msg.point.x, msg.point.y, msg.point.z = (float(x) for x in sp[0])
            self.pub_setpoint.publish(msg)
        ref = None if sp is not None else task.reference_path()
        gates = task.gates.corners() if hasattr(task, "gates") else None
        world = self.out.frames[0]
        self.out.publish_task(path_msg(ref if ref is not None else np.zeros((0, 3)), stamp, world_frame=world),
                              task_markers(stamp, None if sp is None else sp[0].tolist(), gates, ref, world))

    def tick(self) -> None:
        """One control period: apply the held command, step, publish."""
        t0 = time.perf_counter()
        fresh = time.monotonic() - self._cmd_wall_s <= self.cfg.cmd_timeout_s
        _, _, term, trunc, info = self.env.step_physical(self._cmd if fresh else self._hover)
        self.steps += 1
        if bool(term[0] or trunc[0]):  # the env already reset this drone: publish the episode's last state first
            final = info["final_privileged"][0]
            self.out.publish_state(final[:17].double().numpy(), self.node.get_clock().now())
            self.pub_priv.publish(Float32MultiArray(data=final.float().tolist()))
            self.episodes += 1
            rec = {"episode": self.episodes, "return": float(info["episode_return"][0]),
                   "length_steps": int(info["episode_length"][0]), "success": bool(info["success"][0]),
                   "final_pos_err_m": float(info["pos_err_m"][0]), "terminated": bool(term[0])}
            self.pub_episode.publish(String(data=json.dumps(rec)))
            self.publish_episode_start()
        self.out.publish_state(self.env.sim.state[0].double().numpy(), self.node.get_clock().now())
        self.pub_priv.publish(Float32MultiArray(data=info["privileged"][0].float().tolist()))
        self.step_ms.append((time.perf_counter() - t0) * 1e3)

