"""A minimal MCAP record scanner: message offsets per channel without copying message data.

Only what fast ingest needs: Schema, Channel and Message records at top level or inside
uncompressed Chunk records (what `rosbags` writes by default). The scan returns, per channel,
the log times and (offset, length) of each message's data inside the file buffer, so CDR can be
decoded in bulk with numpy. A truncated or garbled file stops the scan at the first bad record
and says where (`error`); everything before it is kept. Compressed chunks are reported in
`compressed_chunks` and the caller falls back to the generic `rosbags` reader.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"\x89MCAP0\r\n"
_REC = struct.Struct("<BQ")
_MSG = struct.Struct("<HIQQ")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_FOOTER, OP_DATA_END = 0x03, 0x04, 0x05, 0x06, 0x02, 0x0F


@dataclass
class ChannelInfo:
    """A channel: topic, message type and schema text (the .msg definition stored in the bag)."""

    topic: str
    schema_name: str
    schema_encoding: str
    schema_data: str
    log_time_ns: list = field(default_factory=list)
    offset: list = field(default_factory=list)
    length: list = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log_time_ns int64, data offset int64, data length int64), each shape (n,)."""
        return (np.asarray(self.log_time_ns, dtype=np.int64), np.asarray(self.offset, dtype=np.int64),
                np.asarray(self.length, dtype=np.int64))


@dataclass
class McapScan:
    """Result of scanning one MCAP file."""

    buffer: bytes
    channels: dict[int, ChannelInfo]
    error: str = ""  # set when the scan stopped early (truncated / corrupt); data before it is kept
    compressed_chunks: int = 0
    complete: bool = False  # footer seen

    def by_topic(self) -> dict[str, ChannelInfo]:
        """topic -> channel (first channel wins for a repeated topic)."""
        out: dict[str, ChannelInfo] = {}
        for ch in self.channels.values():
            out.setdefault(ch.topic, ch)
        return out


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = _U32.unpack_from(buf, pos)
    return buf[pos + 4:pos + 4 + n].decode("utf-8"), pos + 4 + n


def scan_mcap(path: str | Path) -> McapScan:
    """Scan an MCAP file; raises ValueError when it is not MCAP at all (bad magic)."""
    buf = Path(path).read_bytes()
    if buf[:8] != MAGIC:
        raise ValueError(f"{path}: not an MCAP file (magic {buf[:8]!r})")
    scan = McapScan(buf, {})
    schemas: dict[int, tuple[str, str, str]] = {}
    try:
        _scan_records(buf, 8, len(buf), scan, schemas)
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        scan.error = scan.error or f"unreadable record ({exc})"
    return scan


def _scan_records(buf: bytes, pos: int, end: int, scan: McapScan, schemas: dict) -> None:
    """Walk records in buf[pos:end]; recurse into uncompressed chunks."""
    channels = scan.channels
    while pos < end:
        if end - pos < 9:
            if buf[pos:end] != MAGIC[: end - pos] or end - pos == 0:
                scan.error = f"truncated record header at byte {pos}"
            return
        op, n = _REC.unpack_from(buf, pos)
        body, nxt = pos + 9, pos + 9 + n
        if nxt > end:
            scan.error = f"truncated record (opcode 0x{op:02x}) at byte {pos}: needs {n} bytes, {end - body} left"
            return
        if op == OP_MESSAGE:
            cid, _seq, log_time, _pub = _MSG.unpack_from(buf, body)
            ch = channels.get(cid)
            if ch is None:
                raise ValueError(f"message on unknown channel {cid} at byte {pos}")
            ch.log_time_ns.append(log_time)
            ch.offset.append(body + 22)
            ch.length.append(n - 22)
        elif op == OP_CHANNEL:
            (cid,) = _U16.unpack_from(buf, body)
            (sid,) = _U16.unpack_from(buf, body + 2)
            topic, _ = _string(buf, body + 4)
            if cid not in channels:
                name, enc, data = schemas.get(sid, ("", "", ""))
                channels[cid] = ChannelInfo(topic, name, enc, data)
        elif op == OP_SCHEMA:
            (sid,) = _U16.unpack_from(buf, body)
            name, p = _string(buf, body + 2)
            enc, p = _string(buf, p)
            data, _ = _string(buf, p)
            schemas[sid] = (name, enc, data)
        elif op == OP_CHUNK:
            comp, p = _string(buf, body + 28)
            (rec_len,) = struct.unpack_from("<Q", buf, p)
            if comp:
                scan.compressed_chunks += 1
            else:
                if p + 8 + rec_len > nxt:
                    raise ValueError(f"chunk at byte {pos} claims {rec_len} bytes of records past its end")
                _scan_records(buf, p + 8, p + 8 + rec_len, scan, schemas)
                if scan.error:
                    return
        elif op == OP_FOOTER:
            scan.complete = True
        elif op > 0x0F and op < 0x80:
            raise ValueError(f"invalid opcode 0x{op:02x} at byte {pos}")
        pos = nxt
