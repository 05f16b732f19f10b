"""recorder node: live topics -> the episode store as rosbag2 MCAP chunks (a flight log the trainer can learn from).

Subscribes  odom (nav_msgs/Odometry), cmd_ctbr (geometry_msgs/TwistStamped CTBR), privileged (std_msgs/
            Float32MultiArray, optional; best effort with a deep queue (queue_depth), kept as the serialised
            bytes DDS delivered),
            setpoint (geometry_msgs/PointStamped, reliable transient local: each one starts an episode),
            episode (std_msgs/String JSON of the state bridge at each episode end: terminated, return, ...)
Publishes   recorder/stats (std_msgs/String JSON at 1 Hz: messages, chunks, episodes)
Writes      one chunk per episode (or per chunk_every_s of a long one) under the store's topic names (/odom,
            /cmd_ctbr, /privileged, /episode_info with the episode's self-description: `task` makes it
            complete enough to rebuild observations and rewards). On Ctrl-C everything buffered is written.
The buffering and episode splitting live in bags/live_recorder.py.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from geometry_msgs.msg import PointStamped, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import Float32MultiArray, String

from ssm_mbrl_ros.core.config import ConfigError, doc
from ssm_mbrl_ros.bags.live_recorder import LiveRecorder
from ssm_mbrl_ros.bags.store import TOPIC_CMD, TOPIC_ODOM, TOPIC_PRIV, EpisodeStore
from ssm_mbrl_ros.ros.params import read_config, run_node
from ssm_mbrl_ros.ros.status import json_string, shutdown_logger


@dataclass
class RecorderNodeConfig:
    """Parameters of the recorder node (read once at start)."""

    store: str = doc("episode store directory to write chunks into", default="runs/recorded")
    odom_topic: str = doc("odometry topic", default="odom")
    cmd_topic: str = doc("CTBR command topic", default="cmd_ctbr")
    privileged_topic: str = doc("privileged-state topic (simulation only; '' = not recorded)", default="privileged")
    setpoint_topic: str = doc("setpoint topic: each message starts an episode ('' = none)", default="setpoint")
    episode_topic: str = doc("end-of-episode JSON topic of the state bridge ('' = none)", default="episode")
    task: str = doc("task flown (describes the episodes: observation and reward rebuilt from it); '' = unknown, "
                    "rewards are left out", default="")
    vehicle: str = doc("vehicle name or YAML path (action limits in the description)", default="agile5")
    task_overrides: list = doc("task config overrides KEY=VALUE of the flown task", default_factory=list)
    chunk_every_s: float = doc("write at least this often (s): a long episode is split into pieces", default=30.0,
                                range=(0.1, 3600.0))
    hold_s: float = doc("wait this long after an episode start before writing the ended episode (late messages)",
                        default=0.2, range=(0.001, 60.0))
    queue_depth: int = doc("messages kept per topic while a chunk is being written (best effort, keep last)",
                           default=1000, range=(1, 1_000_000))

    def validate(self, source: str = "recorder") -> None:
        """Store named, topics given (periods and the queue depth are range-checked on their fields)."""
        if not self.store:
            raise ConfigError(f"{source}.store: give the episode store directory")
        for name in ("odom_topic", "cmd_topic"):
            if not getattr(self, name):
                raise ConfigError(f"{source}.{name}: a topic name is required")


def describe(cfg: RecorderNodeConfig) -> dict:
    """Self-description shared by the recorded episodes (task, vehicle, rate, layouts, action spec, reward)."""
    if not cfg.task:
        from ssm_mbrl_ros.sim.vehicle import load_vehicle

        try:
            vehicle = load_vehicle(cfg.vehicle)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"recorder.vehicle: {exc}") from exc
        return {"vehicle": vehicle.name, "action_spec": vehicle.action_spec().to_dict()}
    from ssm_mbrl_ros.bags.recorder import describe_env
    from ssm_mbrl_ros.sim.env import make_env

    try:
        env = make_env(cfg.task, 1, vehicle=cfg.vehicle, overrides=list(cfg.task_overrides))
    except ConfigError as exc:
        raise ConfigError(f"recorder parameters: {exc}") from exc
    return describe_env(env, None)


class RecorderNode(Node):
    """Raw-bytes subscriptions into a LiveRecorder; chunks written from a timer and on shutdown."""

    def __init__(self, **kwargs):
        super().__init__("recorder", **kwargs)
        self.cfg = cfg = read_config(self, RecorderNodeConfig)
        self.rec = LiveRecorder(EpisodeStore(cfg.store), describe(cfg), cfg.chunk_every_s, cfg.hold_s)
        # best effort like the publishers' sensor-data QoS, but a deep queue: nothing is dropped while a chunk is
        # written (a 0.2 s write at 100 Hz overflowed the sensor-data depth of 5)
        stream = QoSProfile(depth=cfg.queue_depth, reliability=QoSReliabilityPolicy.BEST_EFFORT)
        for cls, topic, store_topic in ((Odometry, cfg.odom_topic, TOPIC_ODOM),
                                        (TwistStamped, cfg.cmd_topic, TOPIC_CMD),
                                        (Float32MultiArray, cfg.privileged_topic, TOPIC_PRIV)):
            if topic:
                self.create_subscription(cls, topic, lambda data, t=store_topic: self.rec.add(t, data, time.time_ns()),
                                         stream, raw=True)
        if cfg.setpoint_topic:
            latched = QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
            self.create_subscription(PointStamped, cfg.setpoint_topic, self.on_setpoint, latched)
        if cfg.episode_topic:
            self.create_subscription(String, cfg.episode_topic, self.on_episode, 10)
        self.pub_stats = self.create_publisher(String, "recorder/stats", 10)
        self.create_timer(0.1, lambda: self.rec.poll())  # (a bound poll would receive rclpy's TimerInfo as `final`)
        self.create_timer(1.0, self.publish_stats)
        self._closed = False
        self.get_logger().info(f"recording {cfg.odom_topic}, {cfg.cmd_topic}"
                               + (f", {cfg.privileged_topic}" if cfg.privileged_topic else "") + f" into {cfg.store}")

    def on_setpoint(self, msg: PointStamped) -> None:
        """A setpoint starts an episode at its stamp."""
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.rec.episode_start(stamp, [msg.point.x, msg.point.y, msg.point.z])

    def on_episode(self, msg: String) -> None:
        """The bridge's end-of-episode statistics (a malformed one is logged and ignored)."""
        import json

        try:
            stats = json.loads(msg.data)
        except json.JSONDecodeError as exc:
            self.get_logger().warning(f"ignoring a malformed episode message on {self.cfg.episode_topic}: {exc}")
            return
        if isinstance(stats, dict):
            self.rec.episode_end(stats)

    def publish_stats(self) -> None:
        """recorder/stats (JSON)."""
        if not self.context.ok():
            return
        self.pub_stats.publish(json_string({"node": self.get_fully_qualified_name(), "messages": self.rec.messages,
                                            "chunks": len(self.rec.chunks_written), "episodes": self.rec.episodes,
                                            "store": self.cfg.store}))

    def destroy_node(self) -> None:
        """Write everything buffered: nothing received is lost on shutdown."""
        if not self._closed:
            self._closed = True
            paths = self.rec.close()
            shutdown_logger(self).info(f"wrote {len(self.rec.chunks_written)} chunk(s) ({len(paths)} at shutdown) "
                                       f"into {self.cfg.store}")
        super().destroy_node()


def main(args=None) -> int:
    """`python -m ssm_mbrl_ros.ros.recorder_node --ros-args -p store:=runs/flights -p task:=hover`."""
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
