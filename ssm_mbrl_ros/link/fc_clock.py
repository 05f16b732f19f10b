"""Flight-controller time -> ROS time for message stamps.

Telemetry carries the autopilot's own time (MAVLink time_boot_ms / time_usec, px4_msgs timestamp:
seconds since PX4 boot, or simulated time from `fc-sim --lockstep`). A ROS stamp must be on the
node's clock, so the first sample fixes an offset (ROS now - FC time, i.e. including that sample's
transport delay, as a one-shot timesync) and later samples keep it: stamps stay evenly spaced like
the FC's clock and never jitter with the transport. When the FC clock jumps backwards (an FC reboot
or a restarted simulator) the offset is taken again. In lockstep the FC clock runs faster or slower
than the ROS clock, so stamps drift from ROS now by the difference; they remain consistent with each
other, which is what the answering-stamp convention of cmd_ctbr needs.
"""
from __future__ import annotations


class FcTimeSync:
    """Maps FC time (s) to ROS time (ns) with an offset fixed at the first sample (re-taken after a jump back)."""

    def __init__(self, jump_back_s: float = 1.0, identity: bool = False):
        """identity=True: ROS time IS the FC's time (sim time: the node publishes /clock from it), offset 0."""
        self.jump_back_s = jump_back_s
        self.identity = identity
        self.offset_ns: int | None = 0 if identity else None
        self._last_fc_s: float | None = None
        self.resyncs = 0

    def to_ros_ns(self, fc_time_s: float, ros_now_ns: int) -> int:
        """ROS time (ns) of an FC time stamp; ros_now_ns is the node clock when the sample arrived."""
        fc_ns = int(round(fc_time_s * 1e9))
        if self.identity:
            return fc_ns
        if self.offset_ns is None or (self._last_fc_s is not None and fc_time_s < self._last_fc_s - self.jump_back_s):
            if self.offset_ns is not None:
                self.resyncs += 1
            self.offset_ns = int(ros_now_ns) - fc_ns
        self._last_fc_s = fc_time_s
        return self.offset_ns + fc_ns

    def to_fc_s(self, ros_ns: int) -> float | None:
        """FC time (s) of a ROS stamp made by to_ros_ns (None before the first sample)."""
        return None if self.offset_ns is None else (int(ros_ns) - self.offset_ns) * 1e-9
