"""Read one rosbag2 bag (MCAP or sqlite3) into canonical numpy streams in ROS frames.

Streams (all times int64 ns; arrays float64):
    odom: t_ns (header stamp), log_ns (bag receive time), pos (n,3) m world ENU, quat (n,4) wxyz
          body FLU -> world ENU, vel (n,3) m/s world ENU, omega (n,3) rad/s body FLU
    cmd:  t_ns, log_ns, ctbr (n,4): mass-normalised collective thrust m/s^2, body rates FLU rad/s
    priv: t_ns, log_ns, data (n,P) float32
    expert: t_ns, log_ns, ctbr (n,4): optional demonstrator labels (/expert_ctbr, TwistStamped CTBR convention)
    infos: episode self-descriptions (list of dicts from /episode_info or metadata custom_data)

Supported message types: nav_msgs/Odometry, px4_msgs/VehicleOdometry (NED/FRD, converted),
geometry_msgs/TwistStamped (our CTBR convention), px4_msgs/VehicleRatesSetpoint (FRD, thrust
normalised: needs thrust_max_mps2), mavros_msgs/AttitudeTarget (body_rate FLU as mavros
publishes it, thrust normalised: needs thrust_max_mps2). Our own MCAP chunks go through the
fast path (mcap_scan + bulk CDR); anything else through rosbags' AnyReader, which registers
types (px4_msgs, mavros_msgs) from the definitions stored in the bag.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..core import frames
from .cdr import (decode_float32_multiarray_bulk, decode_odometry_bulk, decode_twist_stamped_bulk,
                  odometry_fields, twist_stamped_fields)
from .mcap_scan import scan_mcap
from .report import IngestReport
from .store import TOPIC_CMD, TOPIC_EXPERT, TOPIC_INFO, TOPIC_ODOM, TOPIC_PRIV, typestore

ODOM_TYPES = ("nav_msgs/msg/Odometry", "px4_msgs/msg/VehicleOdometry")
CMD_TYPES = ("geometry_msgs/msg/TwistStamped", "px4_msgs/msg/VehicleRatesSetpoint", "mavros_msgs/msg/AttitudeTarget")


@dataclass
class BagStreams:
    """Decoded streams of one bag plus its topic table."""

    path: str
    odom: dict | None = None
    cmd: dict | None = None
    priv: dict | None = None
    expert: dict | None = None
    infos: list = field(default_factory=list)
    topics: dict = field(default_factory=dict)  # topic -> {"type": str, "count": int}
    duration_s: float = 0.0
    names: "TopicNames" = None


@dataclass
class TopicNames:
    """Which topics hold odometry, commands, privileged state and episode info."""

    odom: str = TOPIC_ODOM
    cmd: str = TOPIC_CMD
    priv: str = TOPIC_PRIV
    info: str = TOPIC_INFO
    expert: str = TOPIC_EXPERT


def bag_storage_files(path: Path) -> tuple[list[Path], str, dict]:
    """(storage files, storage id, custom_data) of a rosbag2 directory, or a bare .mcap file."""
    path = Path(path)
    if path.is_file():
        return [path], "mcap", {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    meta = yaml.load((path / "metadata.yaml").read_text(), Loader=loader)["rosbag2_bagfile_information"]
    files = [path / f for f in meta.get("relative_file_paths", [])]
    root = path.resolve()
    for f in files:  # a bag may only name its own files: never read whatever metadata.yaml points at
        if root not in f.resolve().parents:
            raise ValueError(f"metadata.yaml names {str(f.relative_to(path))!r}, outside the bag directory; refused")
    return files, meta.get("storage_identifier", ""), meta.get("custom_data") or {}


def _odom_from_msg_dicts(rows: list[dict], log_ns) -> dict:
    """Stack per-message Odometry field dicts and rotate body-frame velocity into the world."""
    t = np.array([r["stamp_ns"] for r in rows], np.int64)
    q = frames.quat_xyzw_to_wxyz(np.array([r["quat_xyzw"] for r in rows], float).reshape(-1, 4))
    lin = np.array([r["lin"] for r in rows], float).reshape(-1, 3)
    return {"t_ns": t, "log_ns": np.asarray(log_ns, np.int64), "pos": np.array([r["pos"] for r in rows], float).reshape(-1, 3),
            "quat": q, "vel": frames.quat_rotate(q, lin), "omega": np.array([r["ang"] for r in rows], float).reshape(-1, 3)}


def _odom_bulk(d: dict, log_ns) -> dict:
    q = frames.quat_xyzw_to_wxyz(d["quat_xyzw"])
    return {"t_ns": d["stamp_ns"], "log_ns": np.asarray(log_ns, np.int64), "pos": d["pos"], "quat": q,
            "vel": frames.quat_rotate(q, d["lin"]), "omega": d["ang"]}


def _merge(parts: list[tuple[np.ndarray, dict]], n: int) -> dict:
    """Put decoded parts (row index arrays, field dicts) back in message order."""
    out = {}
    for idx, d in parts:
        for k, v in d.items():
            v = np.asarray(v)
            if k not in out:
                out[k] = np.zeros((n,) + v.shape[1:], v.dtype)
            out[k][idx] = v
    return out


def _read_fast(files: list[Path], names: TopicNames, out: BagStreams, report: IngestReport) -> bool:
    """Fast path for MCAP with our message types; False when the generic reader must be used."""
    ts = typestore()
    per_topic: dict[str, list] = {}
    for f in files:
        scan = scan_mcap(f)
        if scan.compressed_chunks:
            return False
        if scan.error:
            report.add(out.path, "truncated", f"{f.name}: {scan.error}; messages before it kept")
        elif not scan.complete:
            report.add(out.path, "truncated", f"{f.name}: no footer (writer interrupted); complete records kept")
        for ch in scan.channels.values():
            per_topic.setdefault(ch.topic, []).append((scan, ch))
    types = {t: lst[0][1].schema_name for t, lst in per_topic.items()}
    for t, typ in types.items():
        out.topics[t] = {"type": typ, "count": sum(len(ch.offset) for _, ch in per_topic[t])}
    for role, topic, want in (("odom", names.odom, "nav_msgs/msg/Odometry"),
                              ("cmd", names.cmd, "geometry_msgs/msg/TwistStamped")):
        if topic in types and types[topic] != want:
            return False  # another type (px4, mavros) on this topic: generic path
    for topic, lst in per_topic.items():
        for scan, ch in lst:
            log, off, ln = ch.arrays()
            typ = ch.schema_name
            if topic == names.odom:
                d, ok = decode_odometry_bulk(scan.buffer, off, ln)
                parts = [(np.flatnonzero(ok), _odom_bulk(d, log[ok]))]
                bad = np.flatnonzero(~ok)
                if len(bad):
                    rows = [odometry_fields(ts.deserialize_cdr(scan.buffer[off[i]:off[i] + ln[i]], typ)) for i in bad]
                    parts.append((bad, _odom_from_msg_dicts(rows, log[bad])))
                out.odom = _concat(out.odom, _merge(parts, len(off)))
            elif topic in (names.cmd, names.expert) and typ == "geometry_msgs/msg/TwistStamped":
                d, ok = decode_twist_stamped_bulk(scan.buffer, off, ln)
                bad = np.flatnonzero(~ok)
                rows = [twist_stamped_fields(ts.deserialize_cdr(scan.buffer[off[i]:off[i] + ln[i]], typ)) for i in bad]
                parts = [(np.flatnonzero(ok), _cmd_from_twist(d["stamp_ns"], d["lin"], d["ang"], log[ok]))]
                if rows:
                    parts.append((bad, _cmd_from_twist([r["stamp_ns"] for r in rows], [r["lin"] for r in rows],
                                                       [r["ang"] for r in rows], log[bad])))
                role = "cmd" if topic == names.cmd else "expert"
                setattr(out, role, _concat(getattr(out, role), _merge(parts, len(off))))
            elif topic == names.priv:
                d, ok = decode_float32_multiarray_bulk(scan.buffer, off, ln)
                if (~ok).any():
                    report.add(out.path, "privileged_skipped", "messages with another layout or length dropped",
                               topic, int((~ok).sum()))
                out.priv = _concat(out.priv, {"t_ns": log[ok], "log_ns": log[ok], "data": d["data"]})
            elif topic == names.info:
                for i in range(len(off)):
                    msg = ts.deserialize_cdr(scan.buffer[off[i]:off[i] + ln[i]], typ)
                    out.infos.append(json.loads(msg.data))
    return True


def _concat(a: dict | None, b: dict) -> dict:
    if a is None:
        return b
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _cmd_from_twist(t_ns, lin, ang, log_ns) -> dict:
    lin, ang = np.asarray(lin, float).reshape(-1, 3), np.asarray(ang, float).reshape(-1, 3)
    return {"t_ns": np.asarray(t_ns, np.int64), "log_ns": np.asarray(log_ns, np.int64),
            "ctbr": np.concatenate([lin[:, 2:3], ang], 1)}


def _read_generic(path: Path, names: TopicNames, out: BagStreams, report: IngestReport, thrust_max_mps2) -> None:
    """Any rosbag2 bag through rosbags' AnyReader (types registered from the bag's stored definitions)."""
    from rosbags.highlevel import AnyReader

    with AnyReader([path], default_typestore=typestore()) as reader:
        out.topics = {t: {"type": i.msgtype, "count": i.msgcount} for t, i in reader.topics.items()}
        for role in ("odom", "cmd", "priv", "info", "expert"):
            topic = getattr(names, role)
            conns = [c for c in reader.connections if c.topic == topic]
            if not conns:
                continue
            typ = conns[0].msgtype
            rows, logs = [], []
            for conn, log_ns, raw in reader.messages(connections=conns):
                rows.append(reader.deserialize(raw, conn.msgtype))
                logs.append(log_ns)
            if role == "info":
                out.infos.extend(json.loads(m.data) for m in rows)
            elif role == "priv":
                out.priv = {"t_ns": np.array(logs, np.int64), "log_ns": np.array(logs, np.int64),
                            "data": np.array([np.asarray(m.data, np.float32) for m in rows]) if rows else np.zeros((0, 0))}
            elif role == "odom":
                out.odom = _odom_generic(typ, rows, logs, out, topic, report)
            elif role == "expert":
                if typ == "geometry_msgs/msg/TwistStamped":
                    out.expert = _cmd_generic(typ, rows, logs, out, topic, report, None)
            else:
                out.cmd = _cmd_generic(typ, rows, logs, out, topic, report, thrust_max_mps2)


def _odom_generic(typ, rows, logs, out, topic, report) -> dict | None:
    if typ == "nav_msgs/msg/Odometry":
        return _odom_from_msg_dicts([odometry_fields(m) for m in rows], logs)
    if typ == "px4_msgs/msg/VehicleOdometry":
        t = np.array([m.timestamp_sample or m.timestamp for m in rows], np.int64) * 1000  # us -> ns
        pos_ned = np.array([m.position for m in rows], float).reshape(-1, 3)
        q_ned_frd = np.array([m.q for m in rows], float).reshape(-1, 4)
        vel = np.array([m.velocity for m in rows], float).reshape(-1, 3)
        vframe = np.array([m.velocity_frame for m in rows])
        q = frames.attitude_ned_frd_to_enu_flu(q_ned_frd)
        vel_enu = frames.ned_to_enu(vel)
        body = vframe == 3  # VELOCITY_FRAME_BODY_FRD
        if body.any():
            vel_enu[body] = frames.quat_rotate(q[body], frames.frd_to_flu(vel[body]))
        if any(m.pose_frame == 2 for m in rows):
            report.add(out.path, "frame_assumed", "pose_frame FRD (heading-free) treated as NED", topic)
        omega = frames.frd_to_flu(np.array([m.angular_velocity for m in rows], float).reshape(-1, 3))
        return {"t_ns": t, "log_ns": np.asarray(logs, np.int64), "pos": frames.ned_to_enu(pos_ned), "quat": q,
                "vel": vel_enu, "omega": omega}
    report.add(out.path, "unsupported_type", f"odometry type {typ} (expected one of {ODOM_TYPES})", topic)
    return None


def _cmd_generic(typ, rows, logs, out, topic, report, thrust_max_mps2) -> dict | None:
    logs = np.asarray(logs, np.int64)
    if typ == "geometry_msgs/msg/TwistStamped":
        r = [twist_stamped_fields(m) for m in rows]
        return _cmd_from_twist([x["stamp_ns"] for x in r], [x["lin"] for x in r], [x["ang"] for x in r], logs)
    if typ not in CMD_TYPES:
        report.add(out.path, "unsupported_type", f"command type {typ} (expected one of {CMD_TYPES})", topic)
        return None
    scale = np.nan if thrust_max_mps2 is None else float(thrust_max_mps2)
    if thrust_max_mps2 is None:
        report.add(out.path, "thrust_unscaled", "normalised thrust needs the vehicle's thrust_max_mps2; thrust left NaN", topic)
    if typ == "px4_msgs/msg/VehicleRatesSetpoint":
        t = np.array([m.timestamp for m in rows], np.int64) * 1000
        rates = frames.frd_to_flu(np.array([[m.roll, m.pitch, m.yaw] for m in rows], float).reshape(-1, 3))
        thrust = -np.array([m.thrust_body[2] for m in rows], float) * scale  # FRD z down: -z is up
    else:  # mavros_msgs/AttitudeTarget: body_rate already FLU (mavros converts), thrust in [0, 1]
        t = np.array([m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for m in rows], np.int64)
        rates = np.array([[m.body_rate.x, m.body_rate.y, m.body_rate.z] for m in rows], float).reshape(-1, 3)
        thrust = np.array([m.thrust for m in rows], float) * scale
    return {"t_ns": t, "log_ns": logs, "ctbr": np.concatenate([thrust[:, None], rates], 1)}


def read_bag(path: str | Path, names: TopicNames | None = None, report: IngestReport | None = None,
             thrust_max_mps2: float | None = None) -> BagStreams | None:
    """Decode one bag into streams; a bag that cannot be read is reported and None returned."""
    names = names or TopicNames()
    report = report if report is not None else IngestReport()
    path = Path(path)
    out = BagStreams(str(path), names=names)
    try:
        files, storage, custom = bag_storage_files(path)
        if "ssm_mbrl_ros.episodes" in custom:
            out.infos = []  # /episode_info carries the same list; prefer the topic, fall back below
        done = storage == "mcap" and all(f.suffix == ".mcap" for f in files) and _read_fast(files, names, out, report)
        if not done:
            out.odom = out.cmd = out.priv = out.expert = None
            out.infos, out.topics = [], {}
            _read_generic(path, names, out, report, thrust_max_mps2)
        if not out.infos and "ssm_mbrl_ros.episodes" in custom:
            out.infos = json.loads(custom["ssm_mbrl_ros.episodes"])
    except Exception as exc:  # noqa: BLE001 - any unreadable bag is reported and skipped, never fatal
        report.add(path, "unreadable", f"{type(exc).__name__}: {exc}")
        report.bags_skipped += 1
        return None
    for role in ("odom", "cmd"):
        if getattr(out, role) is None or len(getattr(out, role)["t_ns"]) == 0:
            report.add(path, "missing_topic", f"no {role} messages", getattr(names, role))
            setattr(out, role, None)
    if out.odom is not None:
        out.duration_s = float(out.odom["log_ns"].max() - out.odom["log_ns"].min()) / 1e9
    report.bags_read += 1
    return out
