"""trainer node: world-model + actor-critic training from the episode store, announcing exported snapshots.

Reads       `store`: rosbag2 MCAP chunks written by collector nodes (or the recorder), polled every poll_every_s
Publishes   policy/model (std_msgs/String: path of each new snapshot LOGDIR/snapshots/policy_NNNNN.onnx, sidecar
            beside it; reliable, transient local, so late subscribers get the latest), trainer/metrics
            (std_msgs/String JSON every metrics_every_s: updates, env steps ingested, replay size, updates/min,
            effective train ratio, losses, snapshot, and what each collector reports), diagnostics
            (DiagnosticArray, same values)
Subscribes  collector/stats (std_msgs/String JSON of the collector nodes: the policy each flies, steps/s, return)
Training settings are a TrainConfig (`config` YAML + `set` overrides, as `ssm-mbrl train --config/--set`); the
loop lives in train/store_trainer.py, sliced into timer callbacks of slice_s. Stops when the TrainConfig budget
(minutes, max_env_steps) is spent or on Ctrl-C; either way it exports a final snapshot and checkpoints (resume
by starting it again on the same logdir).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import String

from ssm_mbrl_ros.core.config import doc
from ssm_mbrl_ros.ros.collector_node import MODEL_QOS
from ssm_mbrl_ros.ros.params import read_config, run_node
from ssm_mbrl_ros.ros.status import diagnostic_array, json_string, shutdown_logger
from ssm_mbrl_ros.train.store_trainer import StoreTrainer, StoreTrainerConfig

COLLECTOR_KEYS = ("env_steps", "steps_per_s", "policy", "mean_return", "success_rate", "chunks")


@dataclass
class TrainerNodeConfig(StoreTrainerConfig):
    """Parameters of the trainer node (read once at start): the store trainer's plus topics and rates."""

    model_topic: str = doc("topic announcing each new snapshot path (std_msgs/String, transient local)",
                           default="policy/model")
    metrics_topic: str = doc("metrics output topic (std_msgs/String JSON)", default="trainer/metrics")
    metrics_every_s: float = doc("seconds between metrics messages", default=2.0, range=(0.01, 3600.0))
    collector_stats_topic: str = doc("collector statistics to fold into the metrics (std_msgs/String JSON)",
                                     default="collector/stats")
    slice_s: float = doc("seconds of training per timer callback (Ctrl-C is handled between)", default=0.2,
                         range=(0.001, 60.0))

    def validate(self, source: str = "trainer") -> None:
        """The store trainer's checks (the periods are range-checked on their fields)."""
        super().validate(source)


class TrainerNode(Node):
    """The store trainer in timer slices; snapshots announced on the model topic."""

    def __init__(self, **kwargs):
        super().__init__("trainer", **kwargs)
        self.cfg = cfg = read_config(self, TrainerNodeConfig)
        self.pub_model = self.create_publisher(String, cfg.model_topic, MODEL_QOS)
        self.pub_metrics = self.create_publisher(String, cfg.metrics_topic, 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)  # absolute: the aggregator listens there
        self._closed = False
        self.trainer = StoreTrainer(cfg, on_snapshot=self.announce, log=self.get_logger().info)
        self.collectors: dict[str, dict] = {}
        # (also what keeps its timers firing should SSM_MBRL_ROS_EXECUTOR=events be chosen: rclpy 9.1's
        # EventsExecutor fired none for a node without any subscription; see ros.params.make_executor)
        self.create_subscription(String, cfg.collector_stats_topic, self.on_collector_stats, 10)
        self.create_timer(0.005, self.train)
        self.create_timer(cfg.metrics_every_s, self.publish_metrics)

    def train(self) -> None:
        """One slice of polling and updates; at the end of the budget: final snapshot, checkpoint, stop."""
        try:
            if not self.trainer.done:
                self.trainer.work(self.cfg.slice_s)
                return
        except KeyboardInterrupt:  # Ctrl-C mid-update: stop cleanly (destroy_node saves)
            rclpy.try_shutdown()
            return
        self.close()
        self.publish_metrics()
        self.get_logger().info("training budget spent: stopping")
        rclpy.try_shutdown()

    def on_collector_stats(self, msg: String) -> None:
        """Keep each collector's latest statistics (a malformed message is ignored)."""
        try:
            stats = json.loads(msg.data)
            self.collectors[str(stats.get("node", "?"))] = {k: stats.get(k) for k in COLLECTOR_KEYS}
        except (json.JSONDecodeError, AttributeError):
            pass

    def announce(self, path) -> None:
        """Publish a snapshot path on the model topic (skipped once ROS is shutting down)."""
        if self.context.ok():
            self.pub_model.publish(String(data=str(path)))

    def publish_metrics(self) -> None:
        """trainer/metrics (JSON) and diagnostics."""
        if not self.context.ok():
            return
        m = {"node": self.get_fully_qualified_name(), **self.trainer.metrics(), "collectors": self.collectors}
        self.pub_metrics.publish(json_string(m))
        self.pub_diag.publish(diagnostic_array(self.get_clock().now().to_msg(), "ssm_mbrl_ros/trainer", m,
                                               "training" if m["ready"] else "waiting for data"))

    def close(self) -> None:
        """Final snapshot and checkpoint (once)."""
        if not self._closed:
            self._closed = True
            self.trainer.log_line = shutdown_logger(self).info
            self.trainer.close()

    def destroy_node(self) -> None:
        """Nothing trained is lost on shutdown."""
        if hasattr(self, "trainer"):
            self.close()
        super().destroy_node()


def main(args=None) -> int:
    """`python -m ssm_mbrl_ros.ros.trainer_node --ros-args -p store:=runs/store -p logdir:=runs/train`."""
    return run_node(TrainerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
