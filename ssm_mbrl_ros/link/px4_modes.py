"""PX4 flight modes as carried in MAVLink HEARTBEAT.custom_mode and MAV_CMD_DO_SET_MODE.

PX4 packs its mode into the 32-bit custom_mode as (main_mode << 16) | (sub_mode << 24)
(px4_custom_mode.h). MAV_CMD_DO_SET_MODE takes param1 = base mode with
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED set, param2 = main mode, param3 = sub mode.
"""
from __future__ import annotations

from enum import IntEnum


class MainMode(IntEnum):
    """PX4_CUSTOM_MAIN_MODE_*."""

    MANUAL = 1
    ALTCTL = 2
    POSCTL = 3
    AUTO = 4
    ACRO = 5
    OFFBOARD = 6
    STABILIZED = 7


class AutoSubMode(IntEnum):
    """PX4_CUSTOM_SUB_MODE_AUTO_*."""

    READY = 1
    TAKEOFF = 2
    LOITER = 3  # "Hold" in QGroundControl
    MISSION = 4
    RTL = 5
    LAND = 6


MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 1
MAV_MODE_FLAG_SAFETY_ARMED = 128
FORCE_DISARM_MAGIC = 21196.0  # param2 of MAV_CMD_COMPONENT_ARM_DISARM: force (kill) even in flight

# name -> (main, sub)
MODES = {
    "POSCTL": (MainMode.POSCTL, 0),
    "OFFBOARD": (MainMode.OFFBOARD, 0),
    "HOLD": (MainMode.AUTO, AutoSubMode.LOITER),
    "LAND": (MainMode.AUTO, AutoSubMode.LAND),
    "TAKEOFF": (MainMode.AUTO, AutoSubMode.TAKEOFF),
}


def encode_custom_mode(main: int, sub: int = 0) -> int:
    """32-bit HEARTBEAT.custom_mode for a PX4 (main, sub) mode."""
    return (int(main) & 0xFF) << 16 | (int(sub) & 0xFF) << 24


def decode_custom_mode(custom_mode: int) -> tuple[int, int]:
    """(main, sub) from HEARTBEAT.custom_mode."""
    return (int(custom_mode) >> 16) & 0xFF, (int(custom_mode) >> 24) & 0xFF


def mode_name(main: int, sub: int = 0) -> str:
    """Readable name: one of MODES' keys, else 'MAIN<n>.SUB<m>'."""
    for name, (m, s) in MODES.items():
        if m == main and s == sub:
            return name
    return f"MAIN{main}.SUB{sub}"
