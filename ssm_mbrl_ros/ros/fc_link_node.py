"""fc_link node: cmd_ctbr -> safety supervisor -> PX4 (MAVLink or px4_msgs); PX4 state -> fc/odom.

Publishes   fc/odom (nav_msgs/Odometry, sensor-data QoS: the FC's state, ENU/FLU, frame odom/base_link,
            stamped with the telemetry's FC time mapped onto ROS time, link/fc_clock.py),
            safety/event (std_msgs/String JSON {reason, action, time_s, mode}, reliable + transient local,
            one per failsafe), diagnostics (diagnostic_msgs/DiagnosticArray, 1 Hz)
Subscribes  cmd_ctbr (geometry_msgs/TwistStamped CTBR, sensor-data QoS; stamp = the fc/odom it answers),
            safety/kill (std_msgs/Empty: any message is the operator kill, force disarm; Empty so that no
            value can be misread as "un-kill"), surprise topic (std_msgs/Float32, optional)
Every control period (timer at rate_hz; in lockstep as soon as the answer to the newest state arrives,
link/command_input.py) the latest command goes through link/offboard_session.py, the same supervisor
path as offboard_loop.fly. auto_arm (rehearsals against fc-sim only) arms and enters OFFBOARD once the
stream runs and the pre-arm checks pass. backend px4_msgs: VehicleRatesSetpoint + OffboardControlMode
on /fmu/in, VehicleOdometry/VehicleStatus/BatteryStatus from /fmu/out (link/px4_msgs_bridge.py).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import (QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy,
                       qos_profile_sensor_data)
from rclpy.time import Time
from std_msgs.msg import Empty, Float32, String

from ssm_mbrl_ros.core.config import ConfigError, doc
from ssm_mbrl_ros.link.command_input import CommandInput
from ssm_mbrl_ros.link.fc_clock import FcTimeSync
from ssm_mbrl_ros.link.offboard_session import OffboardSession
from ssm_mbrl_ros.ros.conversions import frame_ids, resolve_frame_prefix, state17_to_odom, twist_to_ctbr
from ssm_mbrl_ros.ros.params import read_config, run_node
from ssm_mbrl_ros.ros.realtime import set_fifo_priority

NAN4 = np.full(4, np.nan)


@dataclass
class FcLinkConfig:
    """Parameters of the fc_link node (read once at start)."""

    backend: str = doc("mavlink (pymavlink, PX4 or fc-sim) | px4_msgs (uXRCE-DDS; needs the px4_msgs package)",
                       default="mavlink")
    url: str = doc("MAVLink connection: udpin:HOST:PORT (PX4 SITL / fc-sim send to 14540), udpout:, serial:DEV[:BAUD]",
                   default="udpin:127.0.0.1:14540")
    vehicle: str = doc("vehicle name or YAML (thrust map and supervisor limits)", default="agile5")
    hover_throttle: float = doc("PX4 MPC_THR_HOVER for the thrust map; 0 = g / the vehicle's max thrust", default=0.0,
                                range=(0.0, 1.0))
    rate_hz: float = doc("control rate: setpoints per second (timer), Hz", default=100.0, range=(1.0, 1000.0))
    lockstep: bool = doc("against fc-sim --lockstep: FC (simulated) time, one step per answered state", default=False)
    lockstep_timeout_s: float = doc("lockstep: wall s to wait for the controller's answer before free-running",
                                    default=0.5, range=(0.001, 60.0))
    publish_clock: bool = doc("lockstep: publish /clock from the flight controller's simulated time and stamp fc/odom "
                              "with it (the fly_real graph sets this, and use_sim_time on every node, with "
                              "lockstep:=true)", default=False)
    auto_arm: bool = doc("arm and switch to OFFBOARD once the stream runs and pre-arm passes (rehearsals against "
                         "fc-sim; with flight_controller 'real' it also needs auto_arm_real_fc)", default=False)
    flight_controller: str = doc("'real' (a PX4 or SITL: the default) or 'sim' (the stand-in fc-sim the graph started "
                                 "with sim_fc:=true)", default="real")
    auto_arm_real_fc: bool = doc("second, explicit consent for auto_arm with a real flight controller: the node arms "
                                 "and takes OFFBOARD by itself, without a pilot", default=False)
    fc_system_id: int = doc("MAVLink system id of the flight controller; the only one listened to (PX4: MAV_SYS_ID)",
                            default=1, range=(1, 255))
    fc_component_id: int = doc("MAVLink component id of the autopilot (PX4: 1)", default=1, range=(1, 255))
    allow_remote: bool = doc("allow a non-loopback UDP address in url (e.g. udpin:<this host's LAN address>:14540 for "
                             "a SITL on another host); sign such a link", default=False)
    supervisor_config: str = doc("SupervisorConfig YAML (config/link/supervisor.yaml); empty = vehicle limits and "
                                 "a 10 x 10 x 6 m geofence", default="")
    supervisor_overrides: list = doc("supervisor overrides KEY=VALUE, e.g. [max_command_age_s=0.1]",
                                     default_factory=list)
    realtime_priority: int = doc("SCHED_FIFO priority 1-99 for every thread of the node (ros/realtime.py; needs "
                                 "CAP_SYS_NICE, else a warning); 0 = the default scheduler", default=0, range=(0, 99))
    signing_key_hex: str = doc("MAVLink 2 signing key, 64 hex digits (or $MAVLINK_SIGNING_KEY); with a key, "
                               "unsigned or wrongly signed messages are rejected and counted; empty = unsigned",
                               default="")
    signing_key_file: str = doc("file holding the signing key (64 hex digits), read when signing_key_hex is empty",
                                default="")
    odom_topic: str = doc("FC state output topic", default="fc/odom")
    frame_prefix: str = doc("prefix of the frame ids of fc/odom: 'auto' = the node's namespace, '' = none",
                            default="auto")
    cmd_topic: str = doc("CTBR command input topic", default="cmd_ctbr")
    surprise_topic: str = doc("world-model surprise input (std_msgs/Float32); empty = none", default="")
    px4_odometry_topic: str = doc("px4_msgs: VehicleOdometry topic", default="/fmu/out/vehicle_odometry")
    px4_status_topic: str = doc("px4_msgs: VehicleStatus topic (newer PX4: vehicle_status_vN)",
                                default="/fmu/out/vehicle_status")
    px4_battery_topic: str = doc("px4_msgs: BatteryStatus topic", default="/fmu/out/battery_status")

    def validate(self, source: str = "fc_link") -> None:
        """Known backend, a parsable URL, lockstep only over MAVLink (rates and timeouts: ranges on their fields)."""
        from ssm_mbrl_ros.link.mavlink_link import parse_url

        if self.backend not in ("mavlink", "px4_msgs"):
            raise ConfigError(f"{source}.backend: expected mavlink or px4_msgs, got {self.backend!r}")
        if not 0 <= self.hover_throttle < 1:
            raise ConfigError(f"{source}.hover_throttle: expected 0 (auto) or a value in (0, 1)")
        if self.flight_controller not in ("real", "sim"):
            raise ConfigError(f"{source}.flight_controller: expected real or sim, got {self.flight_controller!r}")
        if self.auto_arm and self.flight_controller == "real" and not self.auto_arm_real_fc:
            raise ConfigError(f"{source}.auto_arm: refusing to arm a real flight controller by itself; the pilot arms "
                              "and switches to OFFBOARD (set auto_arm_real_fc: true as well only if you mean it)")
        for name in ("fc_system_id", "fc_component_id"):
            if not 1 <= getattr(self, name) <= 255:
                raise ConfigError(f"{source}.{name}: MAVLink ids are 1..255, got {getattr(self, name)}")
        if self.publish_clock and not self.lockstep:
            raise ConfigError(f"{source}.publish_clock: only with lockstep (the flight controller's simulated time)")
        if self.lockstep and self.backend != "mavlink":
            raise ConfigError(f"{source}.lockstep: only with backend mavlink (fc-sim --lockstep)")
        try:
            parse_url(self.url)
        except ConfigError as exc:
            raise ConfigError(f"{source}.url: {exc}") from None


class FcLinkNode(Node):
    """The flight-controller link."""

    def __init__(self, **kwargs):
        super().__init__("fc_link", **kwargs)
        from ssm_mbrl_ros.link.supervisor import supervisor_config
        from ssm_mbrl_ros.link.supervisor import Supervisor
        from ssm_mbrl_ros.link.thrust_map import ThrustMap
        from ssm_mbrl_ros.sim.vehicle import load_vehicle

        self.cfg = cfg = read_config(self, FcLinkConfig)
        self.frames = frame_ids(resolve_frame_prefix(cfg.frame_prefix, self.get_namespace()))
        vehicle = load_vehicle(cfg.vehicle)
        tmap = ThrustMap(cfg.hover_throttle) if cfg.hover_throttle else ThrustMap.for_vehicle(vehicle)
        sup = Supervisor(supervisor_config(vehicle, cfg.supervisor_config, cfg.supervisor_overrides,
                                           control_dt_s=1.0 / cfg.rate_hz))
        self.cmd = CommandInput(cfg.lockstep, cfg.lockstep_timeout_s)
        self.sync, self._odom, self.killed, self.surprise = FcTimeSync(identity=cfg.publish_clock), Odometry(), False, None
        self.pub_clock = None
        if cfg.publish_clock:  # the simulated FC is the graph's time source
            from rosgraph_msgs.msg import Clock

            self._clock_msg = Clock()
            self.pub_clock = self.create_publisher(Clock, "/clock", 10)
        self.steps = self.odom_count = 0
        self._engaging, self._prearm_note, self.link = False, "", None
        self.pub_odom = self.create_publisher(Odometry, cfg.odom_topic, qos_profile_sensor_data)
        latched = QoSProfile(depth=10, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        self.pub_event = self.create_publisher(String, "safety/event", latched)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)  # absolute: the aggregator listens there
        self.link = (self._mavlink(tmap) if cfg.backend == "mavlink" else self._px4_msgs(tmap))
        self.session = OffboardSession(self.link, sup, on_failsafe=self.on_failsafe)
        self.create_subscription(TwistStamped, cfg.cmd_topic, self.on_cmd, qos_profile_sensor_data)
        self.create_subscription(Empty, "safety/kill", self.on_kill, 10)
        if cfg.surprise_topic:
            self.create_subscription(Float32, cfg.surprise_topic, self.on_surprise, qos_profile_sensor_data)
        self.create_timer(1.0 / cfg.rate_hz, self.on_timer)
        self.create_timer(1.0, self.publish_diagnostics)
        self.get_logger().info(f"{cfg.backend} link ({cfg.url if cfg.backend == 'mavlink' else '/fmu'}), "
                               f"{'lockstep' if cfg.lockstep else f'{cfg.rate_hz:g} Hz'}, auto_arm {cfg.auto_arm}")
        if cfg.realtime_priority:  # after the link and subscriptions exist: their threads get it too
            self.get_logger().info(set_fifo_priority(cfg.realtime_priority))

    # ---- backends ----
    def _mavlink(self, tmap):
        from ssm_mbrl_ros.link.mavlink_link import MavLink
        from ssm_mbrl_ros.link.offboard_loop import connect

        from ssm_mbrl_ros.link.transport import signing_key

        c = self.cfg
        key = signing_key(c.signing_key_hex, c.signing_key_file or None, source="fc_link.signing_key_hex")
        link = MavLink(c.url, tmap, lockstep=c.lockstep, on_state=self.publish_state, signing_key=key,
                       fc_system_id=c.fc_system_id, fc_component_id=c.fc_component_id, allow_remote=c.allow_remote)
        self.get_logger().info(f"MAVLink {'signed' if key else 'UNSIGNED'}, listening to system {c.fc_system_id} "
                               f"component {c.fc_component_id} only")
        self.link = link

        def setup():  # off the executor: waits for the FC (which may boot later) and ACKs
            while rclpy.ok():
                try:
                    return connect(link, timeout_s=5.0)
                except Exception as exc:
                    self.get_logger().warning(f"waiting for the flight controller on {self.cfg.url}: {exc}")

        threading.Thread(target=setup, name="fc-connect", daemon=True).start()
        return link

    def _px4_msgs(self, tmap):
        try:
            import px4_msgs.msg as px4
        except ImportError:
            raise ConfigError("fc_link parameters.backend: px4_msgs is not importable here; build PX4/px4_msgs in "
                              "your ROS workspace (it is not on PyPI), or use backend mavlink") from None
        from ssm_mbrl_ros.link.px4_msgs_bridge import TOPICS, Px4MsgsLink

        qos_in = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.BEST_EFFORT,
                            durability=QoSDurabilityPolicy.TRANSIENT_LOCAL, history=QoSHistoryPolicy.KEEP_LAST)
        pubs = {k: self.create_publisher(getattr(px4, cls), TOPICS[k], qos_in) for k, cls in
                (("offboard_control_mode", "OffboardControlMode"), ("vehicle_rates_setpoint", "VehicleRatesSetpoint"),
                 ("vehicle_command", "VehicleCommand"))}
        link = Px4MsgsLink(tmap, px4, lambda key, msg: pubs[key].publish(msg),
                           now_us=lambda: self.get_clock().now().nanoseconds // 1000, log=self.get_logger().warning)
        sub = qos_profile_sensor_data
        self.create_subscription(px4.VehicleOdometry, self.cfg.px4_odometry_topic,
                                 lambda m: link.on_odometry(m) and self.publish_state(), sub)
        self.create_subscription(px4.VehicleStatus, self.cfg.px4_status_topic, link.on_status, sub)
        self.create_subscription(px4.BatteryStatus, self.cfg.px4_battery_topic, link.on_battery, sub)
        return link

    # ---- state out, commands in ----
    def publish_state(self) -> None:
        """fc/odom from the link's newest full state (receive thread for MAVLink)."""
        link = self.link
        tel = None if link is None else link.snapshot()  # (telemetry may arrive before the constructor finished)
        if tel is None or tel.fc_stamp_s is None:
            return
        ns = self.sync.to_ros_ns(tel.fc_stamp_s, self.get_clock().now().nanoseconds)
        if self.pub_clock is not None:  # time advances first, then the state of that time
            self._clock_msg.clock = Time(nanoseconds=ns).to_msg()
            self.pub_clock.publish(self._clock_msg)
        self.pub_odom.publish(state17_to_odom(tel.state17(), self._odom, Time(nanoseconds=ns).to_msg(), self.frames))
        self.cmd.state_published(ns, time.monotonic())
        self.odom_count += 1

    def on_cmd(self, msg: TwistStamped) -> None:
        """Hold the latest command; in lockstep, act at once when it answers the newest state."""
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if self.cmd.received(twist_to_ctbr(msg, np.zeros(4)), stamp_ns, self.link.clock()):
            self.tick()

    def on_kill(self, _msg: Empty) -> None:
        """Operator kill: force disarm now (overrides any earlier failsafe)."""
        self.get_logger().error("operator kill received")
        self.killed = True
        self.tick()

    def on_surprise(self, msg: Float32) -> None:
        self.surprise = float(msg.data)

    def on_timer(self) -> None:
        if self.cmd.timer_due(time.monotonic()):
            self.tick()

    # ---- the control step ----
    def tick(self) -> None:
        """Supervise the latest command and act: setpoint, or the failsafe's PX4 command; then maybe engage."""
        if self.cmd.ctbr is None and not self.killed:
            return  # no controller yet: nothing to stream
        now, tel = self.link.clock(), self.link.snapshot()
        ctbr = NAN4 if self.cmd.ctbr is None else self.cmd.ctbr
        self.session.step(now, tel, ctbr, surprise=self.surprise, command_s=self.cmd.received_s, kill=self.killed)
        self.cmd.acted(time.monotonic())
        self.steps += 1
        if self.cfg.auto_arm and not self._engaging and self.session.ready():
            pre = self.session.prearm(now, tel)
            if pre.ok:
                self._engaging = True
                threading.Thread(target=self._engage, name="fc-engage", daemon=True).start()
            elif "; ".join(pre.failures) != self._prearm_note:
                self._prearm_note = "; ".join(pre.failures)
                self.get_logger().warning(f"pre-arm checks failed: {self._prearm_note}")

    def _engage(self) -> None:
        """Arm + OFFBOARD off the executor (blocking on ACKs); the outcome goes to the log."""
        if self.session.engage():
            self.get_logger().info("armed, OFFBOARD")
        else:
            self.get_logger().error(f"arm/OFFBOARD failed: {'; '.join(self.session.log.errors[-1:])}")

    def on_failsafe(self, d) -> None:
        """Report a failsafe on safety/event (JSON) and the log."""
        event = {"reason": d.reason, "action": d.action.value, "time_s": d.triggered_s, "mode": self.link.mode}
        self.pub_event.publish(String(data=json.dumps(event)))
        self.get_logger().error(f"failsafe {d.reason}: {d.action.name}")

    def publish_diagnostics(self) -> None:
        """Link and supervisor status as diagnostic_msgs/DiagnosticArray."""
        fs, log = self.session.sup.failsafe, self.session.log
        values = {"backend": self.cfg.backend, "mode": self.link.mode, "armed": str(self.link.armed),
                  "steps": str(self.steps), "odom": str(self.odom_count), "lockstep": str(self.cfg.lockstep),
                  "free_run": str(self.cmd.free_run), "failsafe": fs.reason if fs else "",
                  "failsafe_action": fs.action.value if fs else "", "rx_errors": str(self.link.rx_errors),
                  "errors": "; ".join(log.errors[-3:])}
        level = DiagnosticStatus.ERROR if fs else DiagnosticStatus.OK
        status = DiagnosticStatus(level=level, name="ssm_mbrl_ros/fc_link", message=f"failsafe {fs.reason}" if fs
                                  else "ok", values=[KeyValue(key=k, value=v) for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(msg)

    def destroy_node(self):
        """Close the link with the node."""
        if getattr(self, "link", None) is not None and hasattr(self.link, "close"):
            self.link.close()
        return super().destroy_node()


def main(args=None) -> int:
    """`python -m ssm_mbrl_ros.ros.fc_link_node --ros-args -p url:=udpin:127.0.0.1:14540 -p auto_arm:=true`."""
    return run_node(FcLinkNode, args, executor="events")  # latency-critical: see make_executor


if __name__ == "__main__":
    raise SystemExit(main())
