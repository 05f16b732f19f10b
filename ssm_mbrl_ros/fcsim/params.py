"""The PX4 parameters fc-sim models, and the MAVLink parameter protocol for them.

Names, types, units and defaults follow PX4 (where fc-sim's airframe sets the default, e.g. MPC_THR_HOVER, that is
said). A ground station reads them with PARAM_REQUEST_LIST / PARAM_REQUEST_READ and changes them with PARAM_SET;
every accepted change is applied at once (fc-sim's `on_change` hook) and echoed as PARAM_VALUE, as PX4 does. Integer
parameters travel bytewise in PARAM_VALUE's float field (PX4's MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE).
A PARAM_SET that is not finite or outside the range is refused: the reply carries the unchanged value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ssm_mbrl_ros.link.param_codec import INT32, REAL32, decode, encode


@dataclass(frozen=True)
class ParamDef:
    """One parameter: PX4 name, MAVLink type, default, allowed range, unit and meaning."""

    name: str
    ptype: int
    default: float
    low: float
    high: float
    unit: str
    meaning: str


def _defs(airframe_hover_throttle: float, max_rates_deg_s, loss_timeout_s: float, loss_action: int,
          takeoff_alt_m: float, land_speed_mps: float, system_id: int) -> list[ParamDef]:
    r, p, y = (float(v) for v in max_rates_deg_s)
    return [
        ParamDef("COM_OF_LOSS_T", REAL32, loss_timeout_s, 0.0, 60.0, "s", "offboard setpoint silence before failsafe"),
        ParamDef("COM_OBL_RC_ACT", INT32, loss_action, 0, 7, "", "offboard-loss action: 0/1/5 hold, 4 land, "
                 "7 disarm (2, 3, 6 are flown as hold: no manual mode, return or termination here)"),
        ParamDef("COM_RC_IN_MODE", INT32, 4, 0, 4, "", "manual control input (fc-sim has none: stored and reported, "
                 "no RC checks)"),
        ParamDef("MPC_THR_HOVER", REAL32, airframe_hover_throttle, 0.1, 0.9, "", "hover throttle the flight "
                 "controller's own position control assumes (default: the airframe's true one)"),
        ParamDef("MPC_LAND_SPEED", REAL32, land_speed_mps, 0.1, 5.0, "m/s", "descent speed in AUTO.LAND"),
        ParamDef("MIS_TAKEOFF_ALT", REAL32, takeoff_alt_m, 0.5, 100.0, "m", "takeoff height above home"),
        ParamDef("MC_ROLLRATE_P", REAL32, 0.15, 0.01, 0.6, "", "roll-rate P gain (scales the airframe's gain)"),
        ParamDef("MC_ROLLRATE_I", REAL32, 0.2, 0.0, 2.0, "", "roll-rate I gain"),
        ParamDef("MC_ROLLRATE_D", REAL32, 0.003, 0.0, 0.01, "", "roll-rate D gain"),
        ParamDef("MC_PITCHRATE_P", REAL32, 0.15, 0.01, 0.6, "", "pitch-rate P gain"),
        ParamDef("MC_PITCHRATE_I", REAL32, 0.2, 0.0, 2.0, "", "pitch-rate I gain"),
        ParamDef("MC_PITCHRATE_D", REAL32, 0.003, 0.0, 0.01, "", "pitch-rate D gain"),
        ParamDef("MC_YAWRATE_P", REAL32, 0.2, 0.0, 0.6, "", "yaw-rate P gain"),
        ParamDef("MC_YAWRATE_I", REAL32, 0.1, 0.0, 2.0, "", "yaw-rate I gain"),
        ParamDef("MC_YAWRATE_D", REAL32, 0.0, 0.0, 0.01, "", "yaw-rate D gain"),
        ParamDef("MC_ROLLRATE_MAX", REAL32, r, 0.0, 1800.0, "deg/s", "offboard roll-rate setpoints are clamped here"),
        ParamDef("MC_PITCHRATE_MAX", REAL32, p, 0.0, 1800.0, "deg/s", "offboard pitch-rate clamp"),
        ParamDef("MC_YAWRATE_MAX", REAL32, y, 0.0, 1800.0, "deg/s", "offboard yaw-rate clamp"),
        ParamDef("MAV_SYS_ID", INT32, system_id, 1, 250, "", "MAVLink system id (read at boot; a change applies "
                 "after restart, as on PX4)"),
    ]


class Px4Params:
    """Values of the modelled parameters; `on_change(name, value)` is called after every accepted change."""

    def __init__(self, defs: list[ParamDef], on_change=None):
        self.defs = {d.name: d for d in defs}
        self.order = [d.name for d in defs]
        self.values = {d.name: float(d.default) for d in defs}
        self.on_change = on_change

    @classmethod
    def for_fc(cls, cfg, vehicle, hover_throttle: float, loss_action: int, on_change=None) -> "Px4Params":
        """The parameter set of an fc-sim with config cfg flying vehicle."""
        rates = [math.degrees(v) for v in vehicle.max_rate_radps]
        return cls(_defs(hover_throttle, rates, cfg.offboard_loss_timeout_s, loss_action, cfg.takeoff_alt_m,
                         cfg.land_speed_mps, cfg.system_id), on_change)

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def set(self, name: str, value: float) -> bool:
        """Change a parameter if the value is finite and in range (integers are rounded); True when accepted."""
        d = self.defs.get(name)
        if d is None or not math.isfinite(value) or not d.low <= value <= d.high:
            return False
        value = float(round(value)) if d.ptype == INT32 else float(value)
        self.values[name] = value
        if self.on_change is not None:
            self.on_change(name, value)
        return True

    def message(self, mav, name: str):
        """PARAM_VALUE for one parameter."""
        d = self.defs[name]
        return mav.MAVLink_param_value_message(name.encode(), encode(self.values[name], d.ptype), d.ptype,
                                               len(self.order), self.order.index(name))

    def handle(self, mav, msg) -> list:
        """Replies (PARAM_VALUE messages) to PARAM_REQUEST_LIST / _READ / PARAM_SET; [] for unknown names."""
        kind = msg.get_type()
        if kind == "PARAM_REQUEST_LIST":
            return [self.message(mav, n) for n in self.order]
        name = _param_id(msg.param_id)
        if kind == "PARAM_REQUEST_READ":
            if msg.param_index >= 0:
                return [self.message(mav, self.order[msg.param_index])] if msg.param_index < len(self.order) else []
            return [self.message(mav, name)] if name in self.defs else []
        if kind == "PARAM_SET" and name in self.defs:
            d = self.defs[name]
            ptype = msg.param_type if msg.param_type in (INT32, REAL32) else d.ptype
            self.set(name, decode(msg.param_value, ptype))
            return [self.message(mav, name)]  # the new value, or the unchanged one when refused
        return []


def _param_id(raw) -> str:
    """A PARAM_* message's id as text (pymavlink gives str or bytes, NUL-padded to 16)."""
    text = raw.decode(errors="replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
    return text.split("\x00", 1)[0]
