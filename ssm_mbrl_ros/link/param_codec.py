"""PX4's parameter encoding in PARAM_VALUE / PARAM_SET: REAL32 as is, INT32 bytewise in the float field
(MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE). Shared by the companion link and fc-sim."""
from __future__ import annotations

import struct

REAL32, INT32 = 9, 6  # MAV_PARAM_TYPE_REAL32, MAV_PARAM_TYPE_INT32


def encode(value: float, ptype: int) -> float:
    """PARAM_VALUE's float field: the value itself (REAL32), or an int32's bytes read as a float (INT32)."""
    if ptype == INT32:
        return struct.unpack("<f", struct.pack("<i", int(value)))[0]
    return float(value)


def decode(raw: float, ptype: int) -> float:
    """Inverse of encode for a received PARAM_VALUE / PARAM_SET."""
    if ptype == INT32:
        return float(struct.unpack("<i", struct.pack("<f", raw))[0])
    return float(raw)
