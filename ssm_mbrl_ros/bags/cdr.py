"""Bulk CDR decoding with numpy for fixed-layout messages, and the generic fallback.

ROS 2 CDR (little endian): a 4-byte encapsulation header (00 01 00 00), then the fields, each
aligned to its size counted from the end of that header. A std_msgs/Header is int32 sec,
uint32 nanosec, then a string (uint32 length incl. NUL + bytes). After the header strings
(frame_id, and child_frame_id for Odometry) the rest of Odometry / TwistStamped is float64 only,
so once the per-message offset of the first float64 is known (vectorised from the string lengths,
which vary per message) every wanted float64 is one numpy gather. Messages whose layout does not
match (big endian, too short) are returned in `bad` for the generic deserialiser.
"""
from __future__ import annotations

import numpy as np

_BLOCK = 32768  # messages per gather block (bounds the index array to ~30 MB)


def _u32_at(u8: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Little-endian uint32 at each byte position pos (n,) -> (n,) int64."""
    return u8[pos[:, None] + np.arange(4)].view("<u4")[:, 0].astype(np.int64)


def _gather(u8: np.ndarray, starts: np.ndarray, byte_idx: np.ndarray, dtype: str) -> np.ndarray:
    """Bytes at starts[:, None] + byte_idx viewed as dtype: (n, len(byte_idx) / itemsize)."""
    out = []
    for i in range(0, len(starts), _BLOCK):
        s = starts[i:i + _BLOCK]
        out.append(u8[s[:, None] + byte_idx[None, :]].view(dtype))
    k = len(byte_idx) // np.dtype(dtype).itemsize
    return np.concatenate(out, 0) if out else np.zeros((0, k), dtype)


def _f64_bytes(index_ranges) -> np.ndarray:
    """Byte indices of the float64s numbered by index_ranges (list of (start, stop))."""
    idx = np.concatenate([np.arange(a, b) for a, b in index_ranges])
    return (idx[:, None] * 8 + np.arange(8)).reshape(-1)


def decode_stamped_f64(buf: bytes, offset: np.ndarray, length: np.ndarray, n_strings: int,
                       n_f64: int, want) -> tuple[dict, np.ndarray]:
    """Decode header stamp + selected float64s of messages that are a Header, n_strings-1 more strings, then n_f64 float64.

    want: list of (start, stop) float64 index ranges after the strings. Returns
    ({"stamp_ns": (m,), "f64": (m, k)}, ok) where ok (n,) marks the messages decoded here
    (the rest need the generic path).
    """
    offset, length = np.asarray(offset, np.int64), np.asarray(length, np.int64)
    u8 = np.frombuffer(buf, np.uint8)
    n = len(offset)
    ok = length >= 16
    if n == 0:
        return {"stamp_ns": np.zeros(0, np.int64), "f64": np.zeros((0, 0))}, ok
    head = u8[np.where(ok, offset, 0)[:, None] + np.arange(2)]
    ok &= (head[:, 0] == 0) & (head[:, 1] == 1)  # CDR little endian
    pos = np.full(n, 12, np.int64)  # relative to message start: first string length
    for _ in range(n_strings):
        safe = ok & (pos + 4 <= length)
        strlen = np.zeros(n, np.int64)
        strlen[safe] = _u32_at(u8, offset[safe] + pos[safe])
        ok = safe & (strlen < 1 << 20)
        pos = pos + 4 + strlen
        pos = 4 + ((pos - 4 + 3) & ~3)  # align 4 for the next uint32
    data = 4 + ((pos - 4 + 7) & ~7)  # align 8 for the float64 block
    ok &= data + 8 * n_f64 <= length
    start = offset[ok]
    if len(start) == 0:
        return {"stamp_ns": np.zeros(0, np.int64), "f64": np.zeros((0, sum(b - a for a, b in want)))}, ok
    stamp = _gather(u8, start, np.arange(4, 12), "<i4").astype(np.int64)  # (m, 2): sec, nanosec (as int32)
    stamp_ns = stamp[:, 0] * 1_000_000_000 + (stamp[:, 1] & 0xFFFFFFFF)
    dstart = start + data[ok]
    f64 = _gather(u8, dstart, _f64_bytes(want), "<f8")
    return {"stamp_ns": stamp_ns, "f64": f64}, ok


def decode_odometry_bulk(buf, offset, length) -> tuple[dict, np.ndarray]:
    """nav_msgs/Odometry in bulk: stamp_ns, pos (m,3), quat_xyzw (m,4), lin (m,3), ang (m,3) (twist in child frame)."""
    # pose.position 0:3, orientation 3:7, pose.covariance 7:43, twist.linear 43:46, angular 46:49, cov 49:85
    d, ok = decode_stamped_f64(buf, offset, length, 2, 85, [(0, 7), (43, 49)])
    f = d["f64"].reshape(-1, 13)
    return {"stamp_ns": d["stamp_ns"], "pos": f[:, 0:3], "quat_xyzw": f[:, 3:7], "lin": f[:, 7:10],
            "ang": f[:, 10:13]}, ok


def decode_twist_stamped_bulk(buf, offset, length) -> tuple[dict, np.ndarray]:
    """geometry_msgs/TwistStamped in bulk: stamp_ns, lin (m,3), ang (m,3)."""
    d, ok = decode_stamped_f64(buf, offset, length, 1, 6, [(0, 6)])
    f = d["f64"].reshape(-1, 6)
    return {"stamp_ns": d["stamp_ns"], "lin": f[:, 0:3], "ang": f[:, 3:6]}, ok


def decode_float32_multiarray_bulk(buf, offset, length) -> tuple[dict, np.ndarray]:
    """std_msgs/Float32MultiArray with an empty layout.dim in bulk: data (m, k); messages of another length go generic."""
    offset, length = np.asarray(offset, np.int64), np.asarray(length, np.int64)
    u8 = np.frombuffer(buf, np.uint8)
    ok = length >= 16
    if not ok.any():
        return {"data": np.zeros((0, 0), np.float32)}, ok
    hdr = np.zeros((len(offset), 4), np.int64)
    hdr[ok] = u8[offset[ok][:, None] + np.arange(16)].view("<u4").astype(np.int64)
    ok &= (u8[np.where(ok, offset, 0)] == 0) & (u8[np.where(ok, offset, 0) + 1] == 1)
    ok &= (hdr[:, 1] == 0) & (length >= 16 + 4 * hdr[:, 3])  # no dims; data fits
    if not ok.any():
        return {"data": np.zeros((0, 0), np.float32)}, ok
    k = int(np.bincount(hdr[ok, 3]).argmax())  # the common data length; others go generic
    ok &= hdr[:, 3] == k
    data = _gather(u8, offset[ok] + 16, np.arange(4 * k), "<f4")
    return {"data": data.reshape(-1, k)}, ok


def odometry_fields(msg) -> dict:
    """Generic-path Odometry object -> the same fields as decode_odometry_bulk (one message)."""
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    return {"stamp_ns": msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
            "pos": [p.x, p.y, p.z], "quat_xyzw": [q.x, q.y, q.z, q.w], "lin": [lin.x, lin.y, lin.z],
            "ang": [ang.x, ang.y, ang.z]}


def twist_stamped_fields(msg) -> dict:
    """Generic-path TwistStamped object -> the fields of decode_twist_stamped_bulk."""
    lin, ang = msg.twist.linear, msg.twist.angular
    return {"stamp_ns": msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
            "lin": [lin.x, lin.y, lin.z], "ang": [ang.x, ang.y, ang.z]}


def _header_prefix(strings: list[str]) -> tuple[bytes, int]:
    """CDR bytes from the encapsulation header through the header strings, and the float64 block offset.

    The stamp (bytes 4:12) is left zero for the caller to fill in.
    """
    out = bytearray(b"\x00\x01\x00\x00" + bytes(8))
    for s in strings:
        while (len(out) - 4) % 4:
            out.append(0)
        b = s.encode() + b"\x00"
        out += len(b).to_bytes(4, "little") + b
    while (len(out) - 4) % 8:
        out.append(0)
    return bytes(out), len(out)


def encode_stamped_f64(stamp_ns: np.ndarray, strings: list[str], f64: np.ndarray) -> np.ndarray:
    """Serialise n messages of layout Header + strings + float64 block (n, k) in bulk: (n, L) uint8 rows."""
    prefix, data_off = _header_prefix(strings)
    n, k = f64.shape
    rows = np.zeros((n, data_off + 8 * k), np.uint8)
    rows[:, :data_off] = np.frombuffer(prefix, np.uint8)
    stamp_ns = np.asarray(stamp_ns, np.int64)
    stamp = np.stack([stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000], 1).astype("<u4")
    rows[:, 4:12] = stamp.view(np.uint8).reshape(n, 8)
    rows[:, data_off:] = np.ascontiguousarray(f64, "<f8").view(np.uint8).reshape(n, 8 * k)
    return rows


def encode_odometry(stamp_ns, pos, quat_xyzw, lin, ang, frame_id="odom", child_frame_id="base_link") -> np.ndarray:
    """nav_msgs/Odometry rows (n, L) uint8 with zero covariances (twist in the child frame)."""
    n = len(stamp_ns)
    f = np.zeros((n, 85))
    f[:, 0:3], f[:, 3:7], f[:, 43:46], f[:, 46:49] = pos, quat_xyzw, lin, ang
    return encode_stamped_f64(stamp_ns, [frame_id, child_frame_id], f)


def encode_twist_stamped(stamp_ns, lin, ang, frame_id="base_link") -> np.ndarray:
    """geometry_msgs/TwistStamped rows (n, L) uint8."""
    return encode_stamped_f64(stamp_ns, [frame_id], np.concatenate([lin, ang], 1))


def encode_float32_multiarray(data: np.ndarray) -> np.ndarray:
    """std_msgs/Float32MultiArray rows (n, 16 + 4k) uint8 with an empty layout."""
    data = np.ascontiguousarray(data, "<f4")
    n, k = data.shape
    rows = np.zeros((n, 16 + 4 * k), np.uint8)
    rows[:, 1] = 1
    rows[:, 12:16] = np.frombuffer(np.uint32(k).tobytes(), np.uint8)
    rows[:, 16:] = data.view(np.uint8).reshape(n, 4 * k)
    return rows
