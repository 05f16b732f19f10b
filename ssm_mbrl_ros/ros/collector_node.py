"""collector node: a vectorised simulator flown by the current ONNX policy, writing episodes to the episode store.

Subscribes  policy/model (std_msgs/String: path of a new .onnx, sidecar beside it; reliable, transient local,
            so a collector started late gets the latest announcement). The model is loaded and validated in
            a background thread and swapped in at the next step; a broken one is rejected and collection goes on.
Publishes   collector/stats (std_msgs/String JSON, every stats_every_s: env steps, episodes, chunks, steps/s,
            policy, swaps, rejected models, recent return / success rate), diagnostics (DiagnosticArray, same values)
Writes      rosbag2 MCAP chunks into `store` (shared by parallel collectors and read by the trainer node).
The loop lives in train/onnx_collector.py; this node slices it into short timer callbacks (slice_s).
Stops after max_env_steps (0 = never) or on Ctrl-C; either way the running episodes are stored (truncated).
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String

from ssm_mbrl_ros.core.config import doc
from ssm_mbrl_ros.ros.params import read_config, run_node
from ssm_mbrl_ros.ros.status import diagnostic_array, json_string, shutdown_logger
from ssm_mbrl_ros.train.onnx_collector import CollectorConfig, OnnxCollector

MODEL_QOS = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                       durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


@dataclass
class CollectorNodeConfig(CollectorConfig):
    """Parameters of the collector node (read once at start): the collector's plus topics and rates."""

    model_topic: str = doc("topic announcing a new model path (std_msgs/String, transient local)",
                           default="policy/model")
    stats_topic: str = doc("statistics output topic (std_msgs/String JSON)", default="collector/stats")
    stats_every_s: float = doc("seconds between statistics messages", default=1.0, range=(0.01, 3600.0))
    slice_s: float = doc("seconds of collection per timer callback (model swaps and Ctrl-C are handled between)",
                         default=0.05, range=(0.001, 60.0))
    instance: int = doc("index of this collector among parallel ones (set by the launcher for collector_0, "
                        "collector_1, ...): it flies with seed + 1000 * instance", default=0,
                        range=(0, 1000))

    def validate(self, source: str = "collector") -> None:
        """The collector's checks (periods and the instance index are range-checked on their fields)."""
        super().validate(source)


class CollectorNode(Node):
    """Collection in timer slices; model announcements validated off the loop."""

    def __init__(self, **kwargs):
        super().__init__("collector", **kwargs)
        self.cfg = cfg = read_config(self, CollectorNodeConfig)
        self.col = OnnxCollector(dataclasses.replace(cfg, seed=cfg.seed + 1000 * cfg.instance))
        self._closed = False
        self.pub_stats = self.create_publisher(String, cfg.stats_topic, 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)  # absolute: the aggregator listens there
        self.create_subscription(String, cfg.model_topic, self.on_model, MODEL_QOS)
        self.create_timer(0.001, self.collect)
        self.create_timer(cfg.stats_every_s, self.publish_stats)
        self.get_logger().info(f"collecting {cfg.task} with {cfg.num_envs} envs into {cfg.store} "
                               f"(policy: {self.col.policy_name})")

    def collect(self) -> None:
        """One slice of collection; at the step budget: store everything and stop the node."""
        try:
            if not self.col.done:
                self.col.run_for(self.cfg.slice_s)
                return
        except KeyboardInterrupt:  # Ctrl-C mid-slice (the step is not recorded): stop cleanly
            rclpy.try_shutdown()
            return
        self.close()
        self.publish_stats()
        self.get_logger().info(f"step budget spent ({self.col.env_steps} env steps): stopping")
        rclpy.try_shutdown()

    def on_model(self, msg: String) -> None:
        """Validate the announced model in a thread; it is swapped in at the next step, or rejected."""
        if msg.data == self.col.policy_name:
            return

        def load():
            reason = self.col.try_swap(msg.data)
            if reason is None:
                self.get_logger().info(f"swapping in {msg.data}")
            else:
                self.get_logger().error(f"model rejected, keeping {self.col.policy_name}: {reason}")

        threading.Thread(target=load, daemon=True).start()

    def publish_stats(self) -> None:
        """collector/stats (JSON) and diagnostics."""
        if not self.context.ok():
            return
        stats = {"node": self.get_fully_qualified_name(), **self.col.stats()}
        self.pub_stats.publish(json_string(stats))
        self.pub_diag.publish(diagnostic_array(self.get_clock().now().to_msg(), "ssm_mbrl_ros/collector", stats))

    def close(self) -> None:
        """Store running episodes and pending chunks (once)."""
        if not self._closed:
            self._closed = True
            self.col.close()
            shutdown_logger(self).info(f"stored everything: {self.col.env_steps} env steps, "
                                       f"{len(self.col.recorder.chunks_written)} chunks in {self.cfg.store}")

    def destroy_node(self) -> None:
        """Nothing collected is lost on shutdown."""
        self.close()
        super().destroy_node()


def main(args=None) -> int:
    """`python -m ssm_mbrl_ros.ros.collector_node --ros-args -p store:=runs/store -p num_envs:=16`."""
    return run_node(CollectorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
