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
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_INDEX, OP_FOOTER = 0x03, 0x04, 0x05, 0x06, 0x07, 0x02


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
        _scan_top(buf, len(buf), scan, schemas)
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        scan.error = scan.error or f"unreadable record ({exc})"
    return scan


def _scan_records(buf: bytes, pos: int, end: int, scan: McapScan, schemas: dict, nested: bool = False) -> None:
    """Walk records in buf[pos:end] one by one; recurse into uncompressed chunks."""
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
        elif op == OP_CHUNK and not nested:
            comp, p = _string(buf, body + 28)
            (rec_len,) = struct.unpack_from("<Q", buf, p)
            if comp:
                scan.compressed_chunks += 1
            else:
                if p + 8 + rec_len > nxt:
                    raise ValueError(f"chunk at byte {pos} claims {rec_len} bytes of records past its end")
                _scan_records(buf, p + 8, p + 8 + rec_len, scan, schemas, True)
                if scan.error:
                    return
        elif op == OP_FOOTER:
            scan.complete = True
        elif op > 0x0F and op < 0x80:
            raise ValueError(f"invalid opcode 0x{op:02x} at byte {pos}")
        pos = nxt


def _scan_top(buf: bytes, end: int, scan: McapScan, schemas: dict) -> None:
    """Top level: uncompressed chunks followed by MessageIndex records are read vectorised, the rest walked."""
    pos = 8
    while pos < end:
        if end - pos < 9:
            return _scan_records(buf, pos, end, scan, schemas)
        op, n = _REC.unpack_from(buf, pos)
        nxt = pos + 9 + n
        if op == OP_CHUNK and nxt > end:  # truncated chunk: keep the complete records inside it
            comp, p = _string(buf, pos + 9 + 28)
            if not comp and p + 8 < end:
                _scan_records(buf, p + 8, end, scan, schemas, True)
            scan.error = scan.error or f"truncated chunk at byte {pos}"
            return
        if op != OP_CHUNK:
            _scan_records(buf, pos, min(nxt, end), scan, schemas)
            if scan.error:
                return
            pos = nxt
            continue
        body = pos + 9
        comp, p = _string(buf, body + 28)
        (rec_len,) = struct.unpack_from("<Q", buf, p)
        rec_start, rec_end = p + 8, p + 8 + rec_len
        if comp or rec_end > nxt:
            _scan_records(buf, pos, nxt, scan, schemas)
            if scan.error:
                return
            pos = nxt
            continue
        # MessageIndex records right after the chunk: channel -> (log_time, offset into the records)
        index: dict[int, np.ndarray] = {}
        q = nxt
        while end - q >= 9:
            op2, n2 = _REC.unpack_from(buf, q)
            if op2 != OP_INDEX or q + 9 + n2 > end:
                break
            (cid,) = _U16.unpack_from(buf, q + 9)
            (nb,) = _U32.unpack_from(buf, q + 11)
            index[cid] = np.frombuffer(buf, "<u8", count=nb // 8, offset=q + 15).reshape(-1, 2)
            q += 9 + n2
        _scan_chunk_indexed(buf, rec_start, rec_end, index, scan, schemas)
        if scan.error:
            return
        pos = q


def _scan_chunk_indexed(buf, rec_start: int, rec_end: int, index: dict, scan: McapScan, schemas: dict) -> None:
    """Messages listed in the index are located with numpy; the bytes between them are walked record by record."""
    if not index:
        return _scan_records(buf, rec_start, rec_end, scan, schemas, True)
    u8 = np.frombuffer(buf, np.uint8)
    cids = np.concatenate([np.full(len(v), c, np.int64) for c, v in index.items()])
    ent = np.concatenate(list(index.values())).astype(np.int64)  # (m, 2): log_time, offset
    off = rec_start + ent[:, 1]
    order = np.argsort(off, kind="stable")
    off, cids, log = off[order], cids[order], ent[order, 0]
    if len(off) and (off.min() < rec_start or off.max() + 9 > rec_end):
        return _scan_records(buf, rec_start, rec_end, scan, schemas, True)
    lens = u8[off[:, None] + 1 + np.arange(8)].view("<u8")[:, 0].astype(np.int64)
    ends = off + 9 + lens
    if (u8[off] != OP_MESSAGE).any() or (ends > rec_end).any() or (ends[:-1] > off[1:]).any():
        return _scan_records(buf, rec_start, rec_end, scan, schemas, True)  # index does not match the records
    starts = np.concatenate([[rec_start], ends])
    stops = np.concatenate([off, [rec_end]])
    for a, b in zip(starts[starts < stops], stops[starts < stops]):  # schemas, channels, unindexed records
        _scan_records(buf, int(a), int(b), scan, schemas, True)
        if scan.error:
            return
    for cid in np.unique(cids):
        ch = scan.channels.get(int(cid))
        if ch is None:
            raise ValueError(f"message index for unknown channel {cid}")
        m = cids == cid
        ch.log_time_ns.extend(log[m].tolist())
        ch.offset.extend((off[m] + 9 + 22).tolist())
        ch.length.extend((lens[m] - 22).tolist())
