"""Episode store: episodes written as rosbag2 MCAP chunks (one bag directory per chunk).

Layout of a store directory:
    ROOT/chunk_000000/  metadata.yaml + chunk_000000_0.mcap   a complete chunk (rosbag2, `ros2 bag info` reads it)
    ROOT/.tmp_chunk_000001/                                   a chunk being written (ignored by readers)
A chunk is written under a temporary name and renamed into place only after the writer closed
it (and fsync'd), so a kill -9 mid-write leaves at most one `.tmp_*` directory per writer and
never a half-written `chunk_*`. Chunk numbers increase, so name order is age order (FIFO
eviction). Several processes may write to one store (on one filesystem): a writer reserves its
chunk number by creating `.tmp_chunk_<n>` with mkdir, which fails for every other writer, and
takes the next number when `chunk_<n>` already exists, so numbers never collide.

Topics in a chunk (ROS conventions: README, "Conventions"):
    /odom          nav_msgs/msg/Odometry: frame_id odom (ENU), child base_link (FLU); pose = position m and
                   attitude body->world; twist = linear velocity m/s and body rates rad/s, both in the
                   child frame (body FLU, per nav_msgs/Odometry).
    /cmd_ctbr      geometry_msgs/msg/TwistStamped, frame_id base_link: twist.angular = body rates FLU rad/s,
                   twist.linear.z = mass-normalised collective thrust m/s^2, x/y zero. The command issued at
                   the odometry sample with the same stamp.
    /privileged    std_msgs/msg/Float32MultiArray, simulation only (layout in the episode info).
    /expert_ctbr   geometry_msgs/msg/TwistStamped (optional, simulation only): the demonstrator's (geometric
                   controller's) CTBR for the state with the same stamp, in the /cmd_ctbr convention; the
                   label of the behaviour-cloning loss (expert-guided training).
    /episode_info  std_msgs/msg/String, one JSON per episode at its first stamp: task, vehicle, seed,
                   control_hz, start_ns/end_ns, terminated, setpoint_m, obs/privileged layout,
                   action spec, reward weights. The same list is in metadata custom_data
                   `ssm_mbrl_ros.episodes`, so a chunk is self-describing on its own.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ..core.frames import quat_conjugate, quat_rotate, quat_wxyz_to_xyzw
from .cdr import encode_float32_multiarray, encode_odometry, encode_twist_stamped

TOPIC_ODOM, TOPIC_CMD, TOPIC_PRIV, TOPIC_INFO = "/odom", "/cmd_ctbr", "/privileged", "/episode_info"
TOPIC_EXPERT = "/expert_ctbr"
TOPIC_TYPES = {TOPIC_ODOM: "nav_msgs/msg/Odometry", TOPIC_CMD: "geometry_msgs/msg/TwistStamped",
               TOPIC_PRIV: "std_msgs/msg/Float32MultiArray", TOPIC_INFO: "std_msgs/msg/String",
               TOPIC_EXPERT: "geometry_msgs/msg/TwistStamped"}
CHUNK_RE = re.compile(r"^chunk_(\d{6,})$")
TMP_PREFIX = ".tmp_chunk_"
EPISODE_GAP_NS = 1_000_000_000  # stamps jump by this between episodes of a chunk (a gap the reader splits at)
_TYPESTORE = None


def typestore():
    """The shared ROS 2 (Humble) typestore with the standard message types."""
    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
    return _TYPESTORE


@dataclass
class EpisodeRecord:
    """One episode to store: per-step state (T, 17) as in sim/state.py, the CTBR issued at each step (T, 4)."""

    state: np.ndarray  # (T, 17): pos m ENU, quat wxyz body->world, vel m/s world ENU, body rates FLU rad/s, rotors
    ctbr: np.ndarray  # (T, 4): thrust m/s^2, body rates FLU rad/s, issued at step t
    privileged: np.ndarray | None = None  # (T, P) simulation only
    info: dict = field(default_factory=dict)  # task, vehicle, seed, control_hz, setpoint_m, terminated, ...
    expert_ctbr: np.ndarray | None = None  # (T, 4) demonstrator CTBR per step (NaN rows: no label), simulation only

    def __post_init__(self):
        self.state = np.asarray(self.state, np.float64)
        self.ctbr = np.asarray(self.ctbr, np.float64)
        assert self.state.ndim == 2 and self.state.shape[1] >= 13, f"state must be (T, 17), got {self.state.shape}"
        assert self.ctbr.shape == (len(self.state), 4), f"ctbr must be (T, 4), got {self.ctbr.shape}"
        if self.privileged is not None:
            self.privileged = np.asarray(self.privileged, np.float32)
            assert len(self.privileged) == len(self.state), "privileged must have one row per step"
        if self.expert_ctbr is not None:
            self.expert_ctbr = np.asarray(self.expert_ctbr, np.float64)
            assert self.expert_ctbr.shape == self.ctbr.shape, (
                f"expert_ctbr must be (T, 4), got {self.expert_ctbr.shape}")


def _stamp(T, ns: int):
    return T["builtin_interfaces/msg/Time"](sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


class _MsgFactory:
    """Builds and serialises single messages with rosbags' generic serialiser (the reference for the bulk encoders)."""

    def __init__(self):
        self.ts = typestore()
        T = self.ts.types
        self.T = T
        self.zero36 = np.zeros(36, np.float64)

    def odom(self, ns, pos, q_xyzw, v_body, omega) -> bytes:
        T = self.T
        m = T["nav_msgs/msg/Odometry"](
            header=T["std_msgs/msg/Header"](stamp=_stamp(T, ns), frame_id="odom"), child_frame_id="base_link",
            pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=T["geometry_msgs/msg/Pose"](
                position=T["geometry_msgs/msg/Point"](x=pos[0], y=pos[1], z=pos[2]),
                orientation=T["geometry_msgs/msg/Quaternion"](x=q_xyzw[0], y=q_xyzw[1], z=q_xyzw[2], w=q_xyzw[3])),
                covariance=self.zero36),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=T["geometry_msgs/msg/Twist"](
                linear=T["geometry_msgs/msg/Vector3"](x=v_body[0], y=v_body[1], z=v_body[2]),
                angular=T["geometry_msgs/msg/Vector3"](x=omega[0], y=omega[1], z=omega[2])),
                covariance=self.zero36))
        return bytes(self.ts.serialize_cdr(m, "nav_msgs/msg/Odometry"))

    def cmd(self, ns, ctbr) -> bytes:
        T = self.T
        m = T["geometry_msgs/msg/TwistStamped"](
            header=T["std_msgs/msg/Header"](stamp=_stamp(T, ns), frame_id="base_link"),
            twist=T["geometry_msgs/msg/Twist"](linear=T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=ctbr[0]),
                                               angular=T["geometry_msgs/msg/Vector3"](x=ctbr[1], y=ctbr[2], z=ctbr[3])))
        return bytes(self.ts.serialize_cdr(m, "geometry_msgs/msg/TwistStamped"))

    def priv(self, row) -> bytes:
        T = self.T
        m = T["std_msgs/msg/Float32MultiArray"](layout=T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0),
                                                data=np.asarray(row, np.float32))
        return bytes(self.ts.serialize_cdr(m, "std_msgs/msg/Float32MultiArray"))

    def string(self, text: str) -> bytes:
        return bytes(self.ts.serialize_cdr(self.T["std_msgs/msg/String"](data=text), "std_msgs/msg/String"))


def write_bag(path: Path, episodes: list[EpisodeRecord], start_ns: int, *, chunk_id: int | None = None) -> list[dict]:
    """Write episodes as one rosbag2 MCAP bag at path (must not exist); returns the episode infos written."""
    f = _MsgFactory()
    ts = f.ts
    infos = []
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        c_odom = w.add_connection(TOPIC_ODOM, "nav_msgs/msg/Odometry", typestore=ts)
        c_cmd = w.add_connection(TOPIC_CMD, "geometry_msgs/msg/TwistStamped", typestore=ts)
        c_info = w.add_connection(TOPIC_INFO, "std_msgs/msg/String", typestore=ts)
        c_priv = None
        if any(e.privileged is not None for e in episodes):
            c_priv = w.add_connection(TOPIC_PRIV, "std_msgs/msg/Float32MultiArray", typestore=ts)
        c_expert = None
        if any(e.expert_ctbr is not None for e in episodes):
            c_expert = w.add_connection(TOPIC_EXPERT, "geometry_msgs/msg/TwistStamped", typestore=ts)
        t0 = int(start_ns)
        for k, ep in enumerate(episodes):
            hz = float(ep.info.get("control_hz", 100.0))
            dt_ns = int(round(1e9 / hz))
            n = len(ep.state)
            stamps = t0 + dt_ns * np.arange(n, dtype=np.int64)
            info = dict(ep.info, control_hz=hz, episode=k, chunk=chunk_id, num_steps=n,
                        start_ns=int(stamps[0]), end_ns=int(stamps[-1]))
            infos.append(info)
            w.write(c_info, int(stamps[0]), f.string(json.dumps(info)))
            q = ep.state[:, 3:7]
            v_body = quat_rotate(quat_conjugate(q), ep.state[:, 7:10])  # world ENU -> body FLU
            odom = encode_odometry(stamps, ep.state[:, 0:3], quat_wxyz_to_xyzw(q), v_body, ep.state[:, 10:13])
            lin = np.zeros((n, 3))
            lin[:, 2] = ep.ctbr[:, 0]
            cmd = encode_twist_stamped(stamps, lin, ep.ctbr[:, 1:4])
            priv = encode_float32_multiarray(ep.privileged) if (c_priv is not None and ep.privileged is not None) else None
            expert, labelled = None, np.zeros(n, bool)
            if ep.expert_ctbr is not None:
                labelled = np.isfinite(ep.expert_ctbr).all(1)
                lin_e = np.zeros((n, 3))
                lin_e[:, 2] = np.nan_to_num(ep.expert_ctbr[:, 0])
                expert = encode_twist_stamped(stamps, lin_e, np.nan_to_num(ep.expert_ctbr[:, 1:4]))
            for i in range(n):
                ns = int(stamps[i])
                w.write(c_odom, ns, odom[i].data)
                w.write(c_cmd, ns, cmd[i].data)
                if priv is not None:
                    w.write(c_priv, ns, priv[i].data)
                if labelled[i]:
                    w.write(c_expert, ns, expert[i].data)
            t0 = int(stamps[-1]) + EPISODE_GAP_NS
        w.set_custom_data("ssm_mbrl_ros.episodes", json.dumps(infos))
    return infos


def write_raw_bag(path: Path, messages: list[tuple[str, int, bytes]], infos: list[dict],
                  types: dict[str, str] | None = None) -> list[dict]:
    """Write already-serialised CDR messages (topic, receive time ns, bytes) and episode infos as one MCAP bag.

    Message types come from `types` (topic -> type name; the store's topics by default). Each info
    becomes an /episode_info message at its start_ns and the list goes to the metadata custom data.
    """
    types = {**TOPIC_TYPES, **(types or {})}
    f = _MsgFactory()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conns = {}
        for topic in dict.fromkeys([TOPIC_INFO] + [m[0] for m in messages]):
            if topic not in types:
                raise ValueError(f"write_raw_bag: no message type known for topic {topic!r}")
            conns[topic] = w.add_connection(topic, types[topic], typestore=f.ts)
        rows = [(int(i.get("start_ns", 0)), TOPIC_INFO, f.string(json.dumps(i))) for i in infos]
        rows += [(int(t), topic, data) for topic, t, data in messages]
        for t, topic, data in sorted(rows, key=lambda r: r[0]):
            w.write(conns[topic], t, data)
        w.set_custom_data("ssm_mbrl_ros.episodes", json.dumps(infos))
    return infos


def list_chunks(root: str | Path) -> list[Path]:
    """Complete chunk directories of a store, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := CHUNK_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def list_partial(root: str | Path) -> list[Path]:
    """Leftover temporary chunk directories (a writer died mid-write)."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if p.name.startswith(TMP_PREFIX)) if root.is_dir() else []


class EpisodeStore:
    """A directory of MCAP chunks; `write_chunk` adds one atomically."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def chunks(self) -> list[Path]:
        """Complete chunks, oldest first."""
        return list_chunks(self.root)

    def _next_id(self) -> int:
        """One more than the highest chunk number in use (complete or being written)."""
        ids = [int(CHUNK_RE.match(p.name).group(1)) for p in self.chunks()]
        for p in list_partial(self.root):
            m = re.match(r"^\.tmp_chunk_(\d+)", p.name)
            if m:
                ids.append(int(m.group(1)))
        return max(ids, default=-1) + 1

    def _reserve(self) -> tuple[int, Path]:
        """(chunk number, its temporary directory), reserved against concurrent writers by an exclusive mkdir."""
        for _ in range(10_000):
            cid = self._next_id()
            tmp = self.root / f"{TMP_PREFIX}{cid:06d}"
            try:
                tmp.mkdir()
            except FileExistsError:  # another writer reserved this number between our scan and mkdir
                continue
            if (self.root / f"chunk_{cid:06d}").exists():  # ... or already finished it (its tmp dir was gone)
                tmp.rmdir()
                continue
            return cid, tmp
        raise RuntimeError(f"{self.root}: could not reserve a chunk number")

    def _commit(self, write) -> Path:
        """Reserve a number, write(bag_dir, chunk_id) into the temporary directory, fsync, rename into place."""
        cid, tmp = self._reserve()
        name = f"chunk_{cid:06d}"
        bag_tmp = tmp / name  # the bag dir is created by the writer and named like the final chunk
        try:
            write(bag_tmp, cid)
            for p in bag_tmp.iterdir():
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # nothing of it is usable; free the number's directory
            raise
        final = self.root / name
        os.rename(bag_tmp, final)  # atomic on one filesystem; nobody else holds this number
        os.rmdir(tmp)
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return final

    def write_chunk(self, episodes: list[EpisodeRecord], start_ns: int | None = None) -> Path:
        """Write episodes as the next chunk (temp dir, fsync, rename); returns the chunk directory."""
        if not episodes:
            raise ValueError("write_chunk: no episodes")
        t0 = time.time_ns() if start_ns is None else start_ns
        return self._commit(lambda path, cid: write_bag(path, episodes, t0, chunk_id=cid))

    def write_raw_chunk(self, messages: list[tuple[str, int, bytes]], infos: list[dict],
                        types: dict[str, str] | None = None) -> Path:
        """Write serialised messages (topic, receive ns, CDR bytes) + episode infos as the next chunk."""
        if not messages:
            raise ValueError("write_raw_chunk: no messages")

        def write(path, cid):
            write_raw_bag(path, messages, [dict(i, chunk=cid) for i in infos], types)

        return self._commit(write)
