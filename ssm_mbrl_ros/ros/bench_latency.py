"""`ssm-mbrl bench ros`: odom publish -> cmd_ctbr receive latency through the policy node, over DDS.

A bench node publishes nav_msgs/Odometry at RATE Hz (a hovering state near the setpoint with small
noise, header stamp = send time); the policy node (a separate process, as deployed) answers each
with a TwistStamped carrying the same stamp. Latency = receive time - stamp (one clock: same
machine). A cycle is missed when its answer has not arrived before the next odometry is due, or
never arrives. The first warmup_s are excluded.
"""
from __future__ import annotations

import gc
import os
import platform
import random
import subprocess
import sys
import time

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from ssm_mbrl_ros.ros.conversions import state17_to_odom
from ssm_mbrl_ros.ros.params import make_executor
from ssm_mbrl_ros.ros.realtime import set_fifo_priority


class _Bench(Node):
    def __init__(self, rate_hz: float, odom_topic: str, cmd_topic: str, seed: int):
        super().__init__("bench_ros")
        self.period_ns = int(1e9 / rate_hz)
        self.pub = self.create_publisher(Odometry, odom_topic, qos_profile_sensor_data)
        self.create_subscription(TwistStamped, cmd_topic, self.on_cmd, qos_profile_sensor_data)
        self.rng = np.random.default_rng(seed)
        self.state = np.zeros(17)
        self.state[0:3] = (0.0, 0.0, 1.5)
        self.state[3] = 1.0
        self.msg = Odometry()
        self.sent: dict[int, int] = {}
        self.latency_ns: dict[int, int] = {}
        self.record = False

    def publish(self) -> None:
        now = time.time_ns()
        s = self.state.copy()
        s[0:3] += self.rng.normal(0.0, 0.01, 3)
        s[7:10] = self.rng.normal(0.0, 0.05, 3)
        stamp = self.get_clock().now()
        msg = state17_to_odom(s, self.msg, stamp.to_msg())
        if self.record:
            self.sent[stamp.nanoseconds] = now
        self.pub.publish(msg)

    def on_cmd(self, msg: TwistStamped) -> None:
        key = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if key in self.sent and key not in self.latency_ns:
            self.latency_ns[key] = time.time_ns() - self.sent[key]


def bench_ros(model: str, rate_hz: float = 250.0, duration_s: float = 60.0, warmup_s: float = 3.0,
              seed: int = 0, executor: str = "events", realtime_priority: int = 0) -> dict:
    """Run the benchmark; returns {"latency_ms": {...}, "missed_cycles": n, ...}.

    executor: events | single, used by both the policy node and the bench node (ros.params.make_executor);
    realtime_priority: SCHED_FIFO priority of both processes (0 = the default scheduler; ros/realtime.py).
    """
    from ssm_mbrl_ros.runtime.models import find_model

    model_path = str(find_model(model))
    env = dict(os.environ)
    env["SSM_MBRL_ROS_EXECUTOR"] = executor  # the policy node's executor (the env overrides its default)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 199)))
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    odom, cmd = "bench/odom", "bench/cmd_ctbr"
    proc = subprocess.Popen([sys.executable, "-m", "ssm_mbrl_ros.ros.policy_node", "--ros-args",
                             "-r", "__node:=policy_bench", "-p", f"model:={model_path}", "-p", f"odom_topic:={odom}",
                             "-p", f"cmd_topic:={cmd}", "-p", "odom_gap_reset_s:=10.0",
                             "-p", f"realtime_priority:={int(realtime_priority)}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rclpy.init()
    node = _Bench(rate_hz, odom, cmd, seed)
    ex = make_executor(executor, from_env=False)  # the bench side runs exactly the executor asked for
    ex.add_node(node)
    scheduling = set_fifo_priority(realtime_priority) if realtime_priority else "default scheduler"
    gc.collect()
    gc.freeze()
    period = 1.0 / rate_hz
    try:
        deadline = time.monotonic() + 60.0  # wait for the policy node to answer at all
        while not node.latency_ns and time.monotonic() < deadline:
            node.record = True
            node.publish()
            ex.spin_once(timeout_sec=0.05)
            if proc.poll() is not None:
                raise RuntimeError(f"policy node exited: {proc.stderr.read()[-2000:]}")
        node.sent.clear()
        node.latency_ns.clear()
        node.record = False
        t0 = time.monotonic()
        next_t, overruns = t0, 0
        while True:  # a fixed-rate loop: publish, then serve callbacks until the next period is due
            now = time.monotonic()
            if now - t0 >= warmup_s + duration_s:
                break
            node.record = now - t0 >= warmup_s
            node.publish()
            next_t += period
            while True:
                left = next_t - time.monotonic()
                if left <= 0:
                    break
                ex.spin_once(timeout_sec=left)
            if time.monotonic() - next_t > period:
                overruns += 1
                next_t = time.monotonic()
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.01)
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(2)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    lat = np.array(sorted(node.latency_ns.values()), float) / 1e6  # ms
    cycles = len(node.sent)
    missed = cycles - int((lat <= period * 1e3).sum())
    return {"latency_ms": {"p50": float(np.percentile(lat, 50)) if lat.size else None,
                           "p99": float(np.percentile(lat, 99)) if lat.size else None,
                           "max": float(lat.max()) if lat.size else None,
                           "mean": float(lat.mean()) if lat.size else None},
            "missed_cycles": missed, "cycles": cycles, "answered": int(lat.size), "publisher_overruns": overruns,
            "executor": executor, "realtime_priority": realtime_priority, "bench_scheduling": scheduling,
            "rate_hz": rate_hz, "duration_s": duration_s, "model": model_path,
            "rmw": os.environ.get("RMW_IMPLEMENTATION", "default"), "machine": platform.processor() or platform.machine()}
