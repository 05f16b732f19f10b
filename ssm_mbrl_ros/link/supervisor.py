"""Flight safety supervisor: pure decision logic between the policy and the flight controller.

No I/O and no clocks: every call takes the current time `now_s` (any monotonic clock, seconds) so
the logic is deterministic and testable. Per control step the caller passes the latest state
(with the time it was received), the policy's CTBR command (mass-normalised thrust m/s^2, FLU
body rates rad/s) and how long the policy took; the supervisor returns either a clamped,
slew-limited command to stream, or a latched failsafe (HOLD, LAND or KILL) with its reason. The
caller must then command PX4 into that mode (AUTO.LOITER / AUTO.LAND / force disarm), not merely
stop streaming. Because the decision is made in the same call that sees the trigger, every
failsafe acts within the control period in which its trigger is first observed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from ssm_mbrl_ros.core.config import ConfigError, doc


class Action(str, Enum):
    """What the link must do this control step."""

    STREAM = "stream"  # send the (clamped) command as an offboard setpoint
    HOLD = "hold"  # switch PX4 to AUTO.LOITER (position hold)
    LAND = "land"  # switch PX4 to AUTO.LAND
    KILL = "kill"  # force-disarm (operator kill only)


# reason -> default failsafe action (overridable in SupervisorConfig.actions)
DEFAULT_ACTIONS = {
    "stale_state": "land",  # no trustworthy state: PX4's own estimator lands
    "nonfinite_state": "land",
    "nan_action": "hold",
    "geofence": "hold",
    "tilt": "hold",
    "surprise": "hold",
    "overrun": "hold",
    "battery": "land",
    "fc_heartbeat": "land",
    "stale_command": "hold",  # the controller went quiet (ROS link node): PX4 holds position
    "operator_kill": "kill",
}


@dataclass
class SupervisorConfig:
    """Limits and guards of the flight safety supervisor (SI units, ENU world frame)."""

    control_dt_s: float = doc("control period, s", default=0.01)
    max_state_age_s: float = doc("state older than this (now - receive time) triggers stale_state, s", default=0.05)
    max_command_age_s: float = doc("a command older than this (now - when it arrived) triggers stale_command; checked "
                                   "only where commands arrive from elsewhere (the ROS fc_link node), s", default=0.05)
    max_fc_heartbeat_age_s: float = doc("flight-controller heartbeat older than this fails pre-arm / in flight, s",
                                        default=3.0)
    geofence_min_m: list | None = doc("geofence box lower corner [x, y, z] ENU m; None = not set (pre-arm fails)",
                                      default=None)
    geofence_max_m: list | None = doc("geofence box upper corner [x, y, z] ENU m", default=None)
    max_tilt_deg: float = doc("tilt (body z vs world up) beyond this triggers the tilt guard, deg", default=60.0)
    surprise_threshold: float | None = doc("world-model surprise above this counts as surprising; None = guard off "
                                           "(calibrate with calibrate_surprise_threshold)", default=None)
    surprise_steps: int = doc("consecutive surprising steps that trigger the surprise guard", default=5)
    max_policy_time_s: float = doc("policy compute time above this is an overrun, s", default=0.008)
    overrun_steps: int = doc("consecutive overruns that trigger the overrun guard", default=3)
    min_battery_fraction: float = doc("remaining battery below this fails pre-arm and lands in flight (0..1)",
                                      default=0.2)
    thrust_min_mps2: float = doc("commanded collective thrust clamp, lower, m/s^2", default=0.0)
    thrust_max_mps2: float = doc("commanded collective thrust clamp, upper, m/s^2", default=30.0)
    max_rate_radps: list = doc("body-rate clamp [roll, pitch, yaw] FLU rad/s", default_factory=lambda: [6.0, 6.0, 3.0])
    thrust_slew_mps3: float = doc("maximum thrust change per second, m/s^3", default=400.0)
    actions: dict = doc("failsafe reason -> hold | land | kill", default_factory=dict)

    def validate(self, source: str = "supervisor") -> None:
        """Raise ConfigError naming the field if a limit is impossible."""
        for name in ("control_dt_s", "max_state_age_s", "max_command_age_s", "max_fc_heartbeat_age_s",
                     "max_policy_time_s", "thrust_slew_mps3", "thrust_max_mps2"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{source}.{name}: must be > 0, got {v}")
        if not 0 < self.max_tilt_deg < 180:
            raise ConfigError(f"{source}.max_tilt_deg: must be in (0, 180), got {self.max_tilt_deg}")
        if not 0 <= self.thrust_min_mps2 < self.thrust_max_mps2:
            raise ConfigError(f"{source}.thrust_min_mps2: need 0 <= min < max, got {self.thrust_min_mps2}")
        if len(self.max_rate_radps) != 3 or min(self.max_rate_radps) <= 0:
            raise ConfigError(f"{source}.max_rate_radps: need 3 positive values, got {self.max_rate_radps}")
        if (self.geofence_min_m is None) != (self.geofence_max_m is None):
            raise ConfigError(f"{source}.geofence_min_m/geofence_max_m: set both or neither")
        if self.geofence_min_m is not None and not np.all(
                np.asarray(self.geofence_min_m) < np.asarray(self.geofence_max_m)):
            raise ConfigError(f"{source}.geofence_min_m: must be below geofence_max_m on every axis")
        if self.surprise_steps < 1 or self.overrun_steps < 1:
            raise ConfigError(f"{source}.surprise_steps/overrun_steps: must be >= 1")
        for reason, act in self.actions.items():
            if reason not in DEFAULT_ACTIONS or act not in ("hold", "land", "kill"):
                raise ConfigError(f"{source}.actions.{reason}: expected a reason from {sorted(DEFAULT_ACTIONS)} "
                                  f"mapped to hold|land|kill, got {act!r}")


@dataclass(frozen=True)
class StateSample:
    """The latest vehicle state as the supervisor sees it (ENU world, FLU body)."""

    pos_m: np.ndarray  # (3,) ENU
    quat_wxyz: np.ndarray  # (4,) body FLU -> world ENU
    received_s: float  # when the newest complete state arrived, same clock as now_s


@dataclass(frozen=True)
class Decision:
    """Outcome of one supervisor step: a command to stream, or a failsafe action with its reason."""

    action: Action
    ctbr: np.ndarray | None = None  # (4,) clamped command when action is STREAM
    reason: str = ""
    triggered_s: float | None = None  # time at which the failsafe latched


@dataclass
class PreArmResult:
    """Pre-arm verdict: ok only if every check passed; failures lists the failed checks."""

    ok: bool
    failures: list = field(default_factory=list)


def calibrate_surprise_threshold(surprises, quantile: float = 0.999, margin: float = 1.5) -> float:
    """Surprise threshold = margin * the given quantile of surprise values from nominal flights."""
    x = np.asarray(surprises, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size < 10:
        raise ValueError(f"need at least 10 finite surprise samples to calibrate, got {x.size}")
    return float(margin * np.quantile(x, quantile))


def tilt_deg(quat_wxyz) -> float:
    """Angle between body z and world up, degrees."""
    w, x, y, z = (float(c) for c in quat_wxyz)
    n = w * w + x * x + y * y + z * z
    cos_t = 1.0 - 2.0 * (x * x + y * y) / max(n, 1e-12)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos_t))))


class Supervisor:
    """Pre-arm checks, in-flight guards, command clamps and a latched failsafe decision."""

    def __init__(self, config: SupervisorConfig):
        config.validate()
        self.cfg = config
        self.actions = {**DEFAULT_ACTIONS, **config.actions}
        self.reset()

    def reset(self) -> None:
        """Clear the latched failsafe, counters and slew memory (before a new flight)."""
        self.failsafe: Decision | None = None
        self._surprise_count = 0
        self._overrun_count = 0
        self._last_thrust: float | None = None

    # ---- pre-arm ----
    def prearm(self, now_s: float, state: StateSample | None, fc_heartbeat_s: float | None,
               model_validated: bool, battery_fraction: float | None, fc_prearm_ok: bool | None = None) -> PreArmResult:
        """Check fresh state, a live FC heartbeat, the FC's own pre-arm checks (when it reports them), a validated
        model, a geofence and the battery."""
        c, fails = self.cfg, []
        if fc_prearm_ok is False:
            fails.append("fc_prearm: the flight controller reports its pre-arm checks failing")
        if state is None or now_s - state.received_s > c.max_state_age_s:
            fails.append("state: no state or older than max_state_age_s")
        elif not (np.all(np.isfinite(state.pos_m)) and np.all(np.isfinite(state.quat_wxyz))):
            fails.append("state: non-finite")
        elif c.geofence_min_m is not None and not self._inside_fence(state.pos_m):
            fails.append("geofence: vehicle outside the geofence")
        if fc_heartbeat_s is None or now_s - fc_heartbeat_s > c.max_fc_heartbeat_age_s:
            fails.append("fc_heartbeat: no flight-controller heartbeat")
        if not model_validated:
            fails.append("model: policy not validated")
        if c.geofence_min_m is None:
            fails.append("geofence: not set")
        if battery_fraction is None or not battery_fraction >= c.min_battery_fraction:
            fails.append(f"battery: {battery_fraction} below {c.min_battery_fraction}")
        return PreArmResult(not fails, fails)

    # ---- in flight ----
    def kill(self, now_s: float, reason: str = "operator_kill") -> Decision:
        """Operator kill: latch KILL (overrides any earlier failsafe)."""
        self.failsafe = Decision(Action.KILL, None, reason, now_s)
        return self.failsafe

    def step(self, now_s: float, state: StateSample | None, ctbr, policy_time_s: float = 0.0,
             surprise: float | None = None, fc_heartbeat_s: float | None = None,
             battery_fraction: float | None = None, command_s: float | None = None) -> Decision:
        """One control step: guards first (a failsafe latches), else the clamped, slew-limited command.

        command_s: when the command arrived (same clock as now_s), for commands computed elsewhere; None skips
        the stale-command guard (a command computed in this step is fresh).
        """
        if self.failsafe is not None:
            return self.failsafe
        reason = self._guard(now_s, state, ctbr, policy_time_s, surprise, fc_heartbeat_s, battery_fraction,
                             command_s)
        if reason is not None:
            self.failsafe = Decision(Action(self.actions[reason]), None, reason, now_s)
            return self.failsafe
        return Decision(Action.STREAM, self.clamp(ctbr))

    def clamp(self, ctbr) -> np.ndarray:
        """Clamp thrust and rates to the limits and the thrust change to thrust_slew_mps3 * dt."""
        c = self.cfg
        cmd = np.asarray(ctbr, dtype=float).copy()
        thrust = min(max(cmd[0], c.thrust_min_mps2), c.thrust_max_mps2)
        if self._last_thrust is not None:
            step = c.thrust_slew_mps3 * c.control_dt_s
            thrust = min(max(thrust, self._last_thrust - step), self._last_thrust + step)
        self._last_thrust = thrust
        cmd[0] = thrust
        r = np.asarray(c.max_rate_radps, dtype=float)
        cmd[1:] = np.clip(cmd[1:], -r, r)
        return cmd

    def _inside_fence(self, pos) -> bool:
        lo, hi = np.asarray(self.cfg.geofence_min_m, float), np.asarray(self.cfg.geofence_max_m, float)
        p = np.asarray(pos, float)
        return bool(np.all(p >= lo) and np.all(p <= hi))

    def _guard(self, now_s, state, ctbr, policy_time_s, surprise, fc_heartbeat_s, battery_fraction,
               command_s=None) -> str | None:
        """Name of the first guard that trips this step, or None."""
        c = self.cfg
        if state is None or now_s - state.received_s > c.max_state_age_s:
            return "stale_state"
        if not (np.all(np.isfinite(state.pos_m)) and np.all(np.isfinite(state.quat_wxyz))):
            return "nonfinite_state"
        if fc_heartbeat_s is not None and now_s - fc_heartbeat_s > c.max_fc_heartbeat_age_s:
            return "fc_heartbeat"
        if command_s is not None and now_s - command_s > c.max_command_age_s:
            return "stale_command"
        cmd = np.asarray(ctbr, dtype=float)
        if cmd.shape != (4,) or not np.all(np.isfinite(cmd)):
            return "nan_action"
        if c.geofence_min_m is not None and not self._inside_fence(state.pos_m):
            return "geofence"
        if tilt_deg(state.quat_wxyz) > c.max_tilt_deg:
            return "tilt"
        if battery_fraction is not None and battery_fraction < c.min_battery_fraction:
            return "battery"
        self._overrun_count = self._overrun_count + 1 if policy_time_s > c.max_policy_time_s else 0
        if self._overrun_count >= c.overrun_steps:
            return "overrun"
        if c.surprise_threshold is not None and surprise is not None:
            bad = not math.isfinite(surprise) or surprise > c.surprise_threshold
            self._surprise_count = self._surprise_count + 1 if bad else 0
            if self._surprise_count >= c.surprise_steps:
                return "surprise"
        return None


def default_supervisor_config(vehicle, **overrides) -> SupervisorConfig:
    """Supervisor limits from the vehicle (thrust, rates) with a 10 x 10 x 6 m geofence around the origin."""
    cfg = dict(geofence_min_m=[-5.0, -5.0, -0.5], geofence_max_m=[5.0, 5.0, 6.0],
               thrust_max_mps2=vehicle.max_collective_thrust_mps2, max_rate_radps=list(vehicle.max_rate_radps))
    cfg.update(overrides)
    return SupervisorConfig(**cfg)


def supervisor_config(vehicle, path: str = "", overrides=(), **defaults) -> SupervisorConfig:
    """SupervisorConfig from YAML (else default_supervisor_config(vehicle, **defaults)) plus KEY=VALUE overrides."""
    from ssm_mbrl_ros.core.config import apply_overrides, from_dict, load_yaml, to_dict

    data = load_yaml(path) if path else to_dict(default_supervisor_config(vehicle, **defaults))
    return from_dict(SupervisorConfig, apply_overrides(data, list(overrides)), path or "supervisor")
