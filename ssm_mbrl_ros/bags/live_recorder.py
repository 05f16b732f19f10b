"""Record live message streams (serialised CDR, as DDS delivers them) into the episode store, episode by episode.

What the recorder node feeds in (no rclpy here, so it is testable on its own):
    add(topic, cdr_bytes, log_ns)       /odom, /cmd_ctbr, /privileged (store topic names, store.TOPIC_TYPES) as
                                        received; the bytes are written unchanged, like `ros2 bag record`
    episode_start(stamp_ns, setpoint)   a new episode (the state bridge republishes the setpoint at every start,
                                        stamped just after the odometry of the new episode's first state)
    episode_end(stats)                  the bridge's end-of-episode JSON (terminated, return, ...)
    poll() / close()                    write the chunks that are due / everything (nothing is lost on close)
A chunk is one episode (written once its successor has started and hold_s has passed, so late
messages of the old one still make it), or chunk_every_s of a running one (marked `continued`;
the rest follows in the next chunk, marked `continuation`).
Episode boundaries: the new episode starts at the newest odometry stamped <= the start stamp
(the first odometry if none is). Stamped topics are split at that stamp, unstamped ones
(/privileged) at that odometry's receive time. Every piece gets an /episode_info self-description
(base_info + start_ns, end_ns, setpoint_m, terminated, ...), so bags/dataset.py rebuilds
observations and rewards and `ssm-mbrl bags info` lists it like any store chunk.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from .store import TOPIC_INFO, TOPIC_ODOM, TOPIC_TYPES, EpisodeStore

STAMPED = ("nav_msgs/msg/Odometry", "geometry_msgs/msg/TwistStamped")


def header_stamp_ns(data: bytes) -> int | None:
    """std_msgs/Header stamp (ns) of a serialised stamped message (CDR, either byte order), None if too short."""
    if len(data) < 12:
        return None
    fmt = "<iI" if data[1] == 1 else ">iI"
    sec, nsec = struct.unpack_from(fmt, data, 4)
    return sec * 1_000_000_000 + nsec


@dataclass
class _Msg:
    topic: str
    log_ns: int
    stamp_ns: int | None  # header stamp (stamped types), else None
    data: bytes


@dataclass
class _Episode:
    info: dict = field(default_factory=dict)  # setpoint_m, continued, continuation
    end: dict | None = None  # the bridge's end-of-episode stats


class LiveRecorder:
    """Buffers live messages and writes them as self-describing store chunks (one episode, or a piece, each)."""

    def __init__(self, store: EpisodeStore, base_info: dict | None = None, chunk_every_s: float = 30.0,
                 hold_s: float = 0.2, clock=time.monotonic):
        self.store, self.base_info = store, dict(base_info or {})
        self.chunk_every_s, self.hold_s, self.clock = chunk_every_s, hold_s, clock
        self.buf: list[_Msg] = []
        self.current = _Episode()
        self._starts: list[tuple[float, int, list | None]] = []  # (received, stamp ns, setpoint) not yet applied
        self._ends: list[tuple[float, dict]] = []  # (received, stats) not yet matched to a start
        self._last_write = clock()
        self.chunks_written: list[Path] = []
        self.messages = self.episodes = 0

    def add(self, topic: str, data: bytes, log_ns: int) -> None:
        """One received message on a store topic (CDR bytes, receive time ns)."""
        if topic not in TOPIC_TYPES or topic == TOPIC_INFO:
            raise ValueError(f"LiveRecorder: {topic!r} is not a recorded store topic ({sorted(TOPIC_TYPES)})")
        stamp = header_stamp_ns(data) if TOPIC_TYPES[topic] in STAMPED else None
        self.buf.append(_Msg(topic, int(log_ns), stamp, bytes(data)))
        self.messages += 1

    def episode_start(self, stamp_ns: int, setpoint_m=None) -> None:
        """A new episode starts at stamp_ns (ROS time), optionally with its hover setpoint (ENU m)."""
        sp = None if setpoint_m is None else [float(x) for x in setpoint_m]
        self._starts.append((self.clock(), int(stamp_ns), sp))

    def episode_end(self, stats: dict) -> None:
        """End-of-episode statistics (JSON of the bridge: terminated, return, ...) for the episode ending now."""
        self._ends.append((self.clock(), dict(stats)))

    # ---- writing ------------------------------------------------------------------------------

    def _start_index(self, stamp_ns: int) -> int:
        """Buffer index of the newest odometry stamped <= stamp_ns, else of the first odometry (-1: none)."""
        best = first = -1
        for i, m in enumerate(self.buf):
            if m.topic != TOPIC_ODOM or m.stamp_ns is None:
                continue
            first = i if first < 0 else first
            if m.stamp_ns <= stamp_ns and (best < 0 or m.stamp_ns >= self.buf[best].stamp_ns):
                best = i
        return best if best >= 0 else first

    def _split(self, cut: _Msg) -> tuple[list[_Msg], list[_Msg]]:
        """(before, from) the cut message: stamped messages by header stamp, others by receive time."""
        before, after = [], []
        for m in self.buf:
            key, ref = (m.stamp_ns, cut.stamp_ns) if m.stamp_ns is not None else (m.log_ns, cut.log_ns)
            (before if key < ref else after).append(m)
        return before, after

    def _end_stats(self, received: float) -> dict | None:
        """The end-of-episode stats received closest to a start (within 1 s), removed from the queue."""
        if not self._ends:
            return None
        k = min(range(len(self._ends)), key=lambda j: abs(self._ends[j][0] - received))
        return self._ends.pop(k)[1] if abs(self._ends[k][0] - received) <= 1.0 else None

    def _apply_start(self, received: float, stamp_ns: int, setpoint) -> None:
        """Cut the buffer at an episode start and write the ended episode (or just describe the running one)."""
        end = self._end_stats(received)
        i = self._start_index(stamp_ns)
        if i >= 0:
            before, after = self._split(self.buf[i])
            if any(m.topic == TOPIC_ODOM for m in before):
                self.current.end = end
                self._write(self.current, before)
                self.buf, self.current = after, _Episode()
        self.current.info = {k: v for k, v in self.current.info.items() if k != "setpoint_m"}
        if setpoint is not None:
            self.current.info["setpoint_m"] = setpoint

    def _info(self, ep: _Episode, msgs: list[_Msg]) -> dict | None:
        """Self-description of one episode piece (None when it holds no odometry)."""
        odom = [m.stamp_ns for m in msgs if m.topic == TOPIC_ODOM and m.stamp_ns is not None]
        if not odom:
            return None
        info = dict(self.base_info, **ep.info, start_ns=min(odom), end_ns=max(odom), num_odometry=len(odom),
                    source="live")
        end = ep.end or {}
        info["terminated"] = bool(end.get("terminated", False))
        info["truncated"] = bool(end) and not info["terminated"]
        if end:
            info["episode_stats"] = end
        return info

    def _write(self, ep: _Episode, msgs: list[_Msg]) -> Path | None:
        """Write one episode piece as a chunk (dropped when it holds no odometry)."""
        self._last_write = self.clock()
        info = self._info(ep, msgs)
        if info is None:
            return None
        path = self.store.write_raw_chunk([(m.topic, m.log_ns, m.data) for m in msgs], [info])
        self.chunks_written.append(path)
        self.episodes += 0 if info.get("continued") else 1
        return path

    def poll(self, final: bool = False) -> list[Path]:
        """Write what is due: ended episodes (hold_s after their successor started), and the running one's data
        after chunk_every_s (marked continued) or when final."""
        before = len(self.chunks_written)
        now = self.clock()
        while self._starts and (final or now - self._starts[0][0] >= self.hold_s):
            self._apply_start(*self._starts.pop(0))
        if final or (self.buf and now - self._last_write >= self.chunk_every_s):
            if not final:
                self.current.info["continued"] = True
            self._write(self.current, self.buf)
            keep = {k: v for k, v in self.current.info.items() if k == "setpoint_m"}
            self.buf, self.current = [], _Episode(info={**keep, "continuation": True})
        return self.chunks_written[before:]

    def close(self) -> list[Path]:
        """Write everything buffered (applying pending episode starts): nothing received is lost."""
        if self._ends and not self._starts:  # the episode ended and nothing followed: it is complete
            self.current.end = self._ends.pop(-1)[1]
        return self.poll(final=True)
