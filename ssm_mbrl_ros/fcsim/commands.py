"""fc-sim's answers to COMMAND_LONG / COMMAND_INT, following PX4's rules for the commands it models.

NaN in a parameter a command does not need means "default" (the MAVLink convention companion libraries use).
Results as PX4 gives them: ACCEPTED; DENIED for a refused request (bad arguments, pre-arm not passed, disarm in the
air without force, OFFBOARD without a setpoint stream); TEMPORARILY_REJECTED while the estimator is not ready for a
take-off; UNSUPPORTED for a command or message fc-sim does not model.

Modelled: COMPONENT_ARM_DISARM (param1 exactly 1 arms, 0 disarms, 21196 in param2 forces), DO_SET_MODE (PX4 custom
modes POSCTL, OFFBOARD, AUTO.LOITER = HOLD, AUTO.LAND, AUTO.TAKEOFF), NAV_TAKEOFF (param7 altitude AMSL, NaN = home +
MIS_TAKEOFF_ALT; climbs, then holds), NAV_LAND, REQUEST_MESSAGE and REQUEST_AUTOPILOT_CAPABILITIES (the message is
sent once after the ACK), SET_MESSAGE_INTERVAL (interval us; 0 = default rate, -1 = off).
"""
from __future__ import annotations

import math

from ssm_mbrl_ros.link.px4_modes import FORCE_DISARM_MAGIC, MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, MODES

from .config import DEFAULT_RATES_HZ

MAX_RATE_HZ = 1000.0  # SET_MESSAGE_INTERVAL faster than this is capped


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def command_params(msg) -> tuple[int, list[float]]:
    """(command id, [param1 .. param7]) of a COMMAND_LONG or COMMAND_INT (x, y as degE7 -> deg, z as is)."""
    if msg.get_type() == "COMMAND_INT":
        return msg.command, [msg.param1, msg.param2, msg.param3, msg.param4, msg.x * 1e-7, msg.y * 1e-7, msg.z]
    return msg.command, [msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7]


def handle_command(fc, msg, now: float) -> None:
    """Apply one command to the FcSim and queue its COMMAND_ACK (and any requested message)."""
    m = fc.mav
    c, p = command_params(msg)
    result, send_after = _dispatch(fc, m, c, p, now)
    if result == m.MAV_RESULT_DENIED or result == m.MAV_RESULT_TEMPORARILY_REJECTED:
        fc.stats.rejected += 1
    fc.queue_out(m.MAVLink_command_ack_message(c, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent()))
    if send_after is not None:
        fc.queue_out(fc.message(send_after, now))


def _dispatch(fc, m, c: int, p: list[float], now: float):
    """(MAV_RESULT, name of a message to send after the ACK or None)."""
    if c == m.MAV_CMD_COMPONENT_ARM_DISARM:
        return _arm_disarm(fc, m, p, now), None
    if c == m.MAV_CMD_DO_SET_MODE:
        if not (_finite(p[0]) and _finite(p[1])) or not 0 <= p[0] < 256:
            return m.MAV_RESULT_DENIED, None
        sub = p[2] if _finite(p[2]) else 0.0  # NaN = no sub mode
        if not int(p[0]) & MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
            return m.MAV_RESULT_DENIED, None
        target = next((n for n, (mm, ss) in MODES.items() if mm == int(p[1]) and ss == int(sub)), None)
        if target is None:
            return m.MAV_RESULT_UNSUPPORTED, None
        if target == "OFFBOARD" and not fc.offboard_signal_ok(now):
            fc.event("offboard refused: no setpoint stream")
            return m.MAV_RESULT_DENIED, None
        if target == "TAKEOFF":
            return _takeoff(fc, m, float("nan"), now), None
        fc.set_mode(target, now)
        return m.MAV_RESULT_ACCEPTED, None
    if c == m.MAV_CMD_NAV_TAKEOFF:
        return _takeoff(fc, m, p[6], now), None
    if c == m.MAV_CMD_NAV_LAND:
        fc.set_mode("LAND", now)
        return m.MAV_RESULT_ACCEPTED, None
    if c in (m.MAV_CMD_REQUEST_MESSAGE, m.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES):
        msg_id = m.MAVLINK_MSG_ID_AUTOPILOT_VERSION if c == m.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES else p[0]
        name = _message_name(m, msg_id)
        if name is None:
            return m.MAV_RESULT_UNSUPPORTED, None
        return m.MAV_RESULT_ACCEPTED, name
    if c == m.MAV_CMD_SET_MESSAGE_INTERVAL:
        if not _finite(p[0]) or not _finite(p[1]):
            return m.MAV_RESULT_DENIED, None
        name = _message_name(m, p[0])
        if name is None:
            return m.MAV_RESULT_UNSUPPORTED, None
        us = p[1]
        fc.rates_hz[name] = 0.0 if us < 0 else (DEFAULT_RATES_HZ[name] if us == 0 else min(1e6 / us, MAX_RATE_HZ))
        fc.next_tx[name] = 0.0
        return m.MAV_RESULT_ACCEPTED, None
    return m.MAV_RESULT_UNSUPPORTED, None


def _message_name(m, msg_id) -> str | None:
    """The name of a message id fc-sim can send, else None."""
    if not _finite(msg_id):
        return None
    names = {getattr(m, f"MAVLINK_MSG_ID_{n}"): n for n in DEFAULT_RATES_HZ}
    return names.get(int(msg_id))


def _arm_disarm(fc, m, p: list[float], now: float) -> int:
    """PX4: param1 1 arms, 0 disarms, anything else is refused; param2 21196 forces a disarm in the air."""
    if p[0] not in (0.0, 1.0):
        return m.MAV_RESULT_DENIED
    if p[0] == 1.0:
        if not fc.armed:
            if not fc.estimator_ready(now):
                fc.event("arming denied: estimator not ready")
                return m.MAV_RESULT_DENIED
            fc.arm(now)
        return m.MAV_RESULT_ACCEPTED
    landed = fc.state()[2] < 0.05
    if landed or p[1] == FORCE_DISARM_MAGIC:
        fc.disarm("" if landed else " (forced in air)")
        return m.MAV_RESULT_ACCEPTED
    return m.MAV_RESULT_DENIED


def _takeoff(fc, m, alt_amsl_m: float, now: float) -> int:
    """Climb to alt_amsl_m (NaN: home + MIS_TAKEOFF_ALT) and hold there; needs the vehicle armed and ready."""
    if not fc.armed:
        return m.MAV_RESULT_DENIED
    if not fc.estimator_ready(now):
        return m.MAV_RESULT_TEMPORARILY_REJECTED
    height = (alt_amsl_m - fc.cfg.home_alt_m) if _finite(alt_amsl_m) else fc.params["MIS_TAKEOFF_ALT"]
    fc.takeoff_to(max(0.5, float(height)), now)
    return m.MAV_RESULT_ACCEPTED
