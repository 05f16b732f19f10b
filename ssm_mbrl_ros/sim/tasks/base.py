"""Task base: config fields shared by every task and the hooks the vector env calls.

Hot-path tensors are struct-of-arrays (feature axis first): the simulator state arrives as x
(17, N) (rows as in sim/state.py), positions as (3, N), and observation blocks are returned as
(k, N), because row ops on contiguous (N,) vectors are several times faster on CPU than
column ops on (N, 17). Reset outputs and `reference()` are ordinary row-major (n, 3) tensors.

A task owns the per-env task state (elapsed time, setpoints, trajectory phases, gate indices),
turns positions into the task block of the observation, computes the task part of the reward
and the position error, and exposes the reference (pos/vel/acc/yaw) that classical controllers
track. The vector env (sim/env.py) adds everything common: the rest of the observation, rate and
smoothness penalties, the crash penalty, terminations, truncation, autoreset and statistics.

Common reward terms (added by the env, weights in `reward:`):
    - rate_weight * |omega_B|^2            body rates, (rad/s)^2
    - smooth_weight * |a_t - a_{t-1}|^2    change of the normalised action
    - crash_penalty                        once, on termination (crash, out of bounds, tilt, bad action)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch

from ...core.config import ConfigError, doc, require_positive
from ...core.spaces import ObsField
from ..randomization import RandomizationConfig
from ..sensors import SensorConfig


@dataclass
class RewardConfig:
    """Reward weights shared by all tasks (task configs extend this)."""

    rate_weight: float = doc("penalty per (rad/s)^2 of body rate", default=0.002)
    smooth_weight: float = doc("penalty per squared change of the normalised action", default=0.02)
    crash_penalty: float = doc("penalty on termination (crash, out of bounds, tilt, non-finite action)", default=10.0)


def common_penalty(weights, rate_sq, action_change_sq):
    """The reward terms every task shares (crash penalty aside): rate_weight |omega|^2 + smooth_weight |a_t - a_{t-1}|^2,
    from |omega_B|^2 ((rad/s)^2) and the squared change of the normalised action; numpy or torch. weights: a
    RewardConfig or its dict."""
    w = weights if isinstance(weights, dict) else vars(weights)
    return w["rate_weight"] * rate_sq + w["smooth_weight"] * action_change_sq


def precision_reward(weights, err_m):
    """precision_weight * exp(-err_m / precision_scale_m), the sharp peak hover and tracking rewards may add at zero
    error (err_m in m; numpy or torch); 0 where the weight is 0 or absent (a bag's recorded weights). weights: a
    reward config or its dict."""
    w = weights if isinstance(weights, dict) else vars(weights)
    weight = w.get("precision_weight", 0.0)
    if not weight:
        return 0.0
    exp = torch.exp if isinstance(err_m, torch.Tensor) else np.exp
    return weight * exp(err_m * (-1.0 / w["precision_scale_m"]))


@dataclass
class TaskConfig:
    """Fields common to every task; task modules subclass this with their own."""

    observation: Literal["full", "partial"] = doc(
        "full: true position error + velocity; partial: noisy delayed position, no velocity", default="full")
    episode_length_s: float = doc("episode length before truncation, s", default=10.0)
    control_hz: float = doc("control (env step) rate, Hz", default=100.0)
    physics_hz: float = doc("RK4 physics rate, Hz (a multiple of control_hz)", default=500.0)
    bounds_low_m: tuple[float, float, float] = doc("lower corner of the allowed box, world ENU, m",
                                                   default=(-10.0, -10.0, -1.0))
    bounds_high_m: tuple[float, float, float] = doc("upper corner of the allowed box, world ENU, m",
                                                    default=(10.0, 10.0, 8.0))
    max_tilt_deg: float = doc("terminate when body z is tilted more than this from world z, deg (180 = off)",
                              default=90.0)
    policy_thrust_mps2: tuple = doc("collective-thrust range [min, max] a policy's normalised action spans, m/s^2, "
                                    "within the vehicle's (empty = the vehicle's full range); classical controllers "
                                    "keep the vehicle's limits", default=())
    policy_max_rate_radps: tuple = doc("body-rate limits [roll, pitch, yaw] a policy's normalised action spans, rad/s, "
                                       "within the vehicle's (empty = the vehicle's)", default=())
    reward: RewardConfig = doc("reward weights", default_factory=RewardConfig)
    sensors: SensorConfig = doc("position sensor of the partial observation", default_factory=SensorConfig)
    randomization: RandomizationConfig = doc("domain randomisation and wind", default_factory=RandomizationConfig)

    def validate(self, source: str) -> None:
        """Positive rates and lengths, a non-empty bounds box, tilt limit in (0, 180]."""
        require_positive(self, source, "episode_length_s", "control_hz", "physics_hz")
        ratio = self.physics_hz / self.control_hz
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ConfigError(f"{source}.physics_hz: must be a multiple of control_hz, got "
                              f"{self.physics_hz} and {self.control_hz}")
        if not all(lo < hi for lo, hi in zip(self.bounds_low_m, self.bounds_high_m)):
            raise ConfigError(f"{source}.bounds_low_m: must be below bounds_high_m on every axis, got "
                              f"{list(self.bounds_low_m)} and {list(self.bounds_high_m)}")
        if self.policy_thrust_mps2 and not (len(self.policy_thrust_mps2) == 2
                                            and 0.0 <= self.policy_thrust_mps2[0] < self.policy_thrust_mps2[1]):
            raise ConfigError(f"{source}.policy_thrust_mps2: must be [min, max] with 0 <= min < max, got "
                              f"{list(self.policy_thrust_mps2)}")
        if self.policy_max_rate_radps and not (len(self.policy_max_rate_radps) == 3
                                               and all(r > 0 for r in self.policy_max_rate_radps)):
            raise ConfigError(f"{source}.policy_max_rate_radps: must be 3 positive rates, got "
                              f"{list(self.policy_max_rate_radps)}")
        if not 0.0 < self.max_tilt_deg <= 180.0:
            raise ConfigError(f"{source}.max_tilt_deg: must be in (0, 180], got {self.max_tilt_deg}")

    def policy_action_spec(self, vehicle_spec):
        """The ActionSpec a policy's normalised action maps to: the vehicle's, narrowed by policy_thrust_mps2 and
        policy_max_rate_radps (exported in the sidecar, so flight maps actions the same way)."""
        from ...core.spaces import ActionSpec

        lo, hi = vehicle_spec.thrust_min_mps2, vehicle_spec.thrust_max_mps2
        if self.policy_thrust_mps2:
            lo, hi = max(lo, float(self.policy_thrust_mps2[0])), min(hi, float(self.policy_thrust_mps2[1]))
        rates = vehicle_spec.max_rate_radps
        if self.policy_max_rate_radps:
            rates = tuple(min(float(a), float(b)) for a, b in zip(rates, self.policy_max_rate_radps))
        return ActionSpec(lo, hi, tuple(rates))

    @property
    def episode_steps(self) -> int:
        """Episode length in control steps."""
        return max(1, int(round(self.episode_length_s * self.control_hz)))


class TaskStep(NamedTuple):
    """Per-step task outputs, each (N,)."""

    reward: torch.Tensor  # task part of the reward
    pos_err_m: torch.Tensor  # distance to the reference/setpoint/next gate centre, m
    collision: torch.Tensor | None  # bool, collision with task geometry (gate frames), or None


def norm3(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the first axis of (3, N) vectors (a fast outer-axis reduction)."""
    return (v * v).sum(0).sqrt()


def check_box(value, source: str, low_name: str, high_name: str) -> None:
    """Raise ConfigError unless low <= high on every axis."""
    low, high = value
    if not all(lo <= hi for lo, hi in zip(low, high)):
        raise ConfigError(f"{source}.{low_name}: must be <= {high_name} on every axis, got {list(low)} and {list(high)}")


def uniform_box(low, high, n: int, generator: torch.Generator, device, dtype) -> torch.Tensor:
    """Points (n, 3) uniform in the box [low, high] (3-sequences), m."""
    lo = torch.tensor(low, device=device, dtype=dtype)
    hi = torch.tensor(high, device=device, dtype=dtype)
    return lo + (hi - lo) * torch.rand(n, 3, generator=generator, device=device, dtype=dtype)


def random_attitude(n: int, max_tilt_deg: float, yaw_range_rad: float, generator: torch.Generator,
                    device, dtype, yaw_center_rad: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Quaternions (n, 4) wxyz: yaw uniform in center +- yaw_range, tilt uniform in [0, max] about a random horizontal axis."""
    u = torch.rand(n, 3, generator=generator, device=device, dtype=dtype)
    yaw = yaw_center_rad + yaw_range_rad * (2.0 * u[:, 0] - 1.0)
    tilt = math.radians(max_tilt_deg) * u[:, 1]
    axis = 2.0 * math.pi * u[:, 2]
    cy, sy = torch.cos(0.5 * yaw), torch.sin(0.5 * yaw)
    ct, st = torch.cos(0.5 * tilt), torch.sin(0.5 * tilt)
    ax, ay = torch.cos(axis) * st, torch.sin(axis) * st
    # q_yaw (cy, 0, 0, sy) * q_tilt (ct, ax, ay, 0)
    return torch.stack([cy * ct, cy * ax - sy * ay, cy * ay + sy * ax, sy * ct], 1)


class Task:
    """Base class of a batched task; subclasses fill in the hooks below."""

    name = "task"
    # task config overrides a trainer applies to its own drones by default (a curriculum or reward shaping that
    # leaves the task as evaluated unchanged; TrainConfig.collect_overrides)
    training_overrides: tuple[str, ...] = ()

    def __init__(self, cfg: TaskConfig, num_envs: int, device="cpu", dtype=torch.float32):
        self.cfg = cfg
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype
        self.dt_s = 1.0 / cfg.control_hz
        self.partial = cfg.observation == "partial"
        self.time_s = torch.zeros(num_envs, device=self.device, dtype=dtype)  # per-env elapsed time, s

    # -- hooks --
    def obs_fields(self) -> tuple[ObsField, ...]:
        """Task block of the observation (relative references), computed from the (measured) position."""
        raise NotImplementedError

    def reset(self, env_ids: torch.Tensor, generator: torch.Generator):
        """Resample task state of env_ids; return start (pos (n, 3) m, vel (n, 3) m/s, quat (n, 4) wxyz)."""
        raise NotImplementedError

    def observe(self, pos_m: torch.Tensor, env_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Task observation block (k, M) from positions pos_m (3, M) of all envs or of env_ids."""
        raise NotImplementedError

    def step(self, x: torch.Tensor) -> TaskStep:
        """Task reward, position error and collisions from the state x (17, N) after a physics step
        (time already advanced)."""
        raise NotImplementedError

    def success(self, truncated: torch.Tensor, pos_err_m: torch.Tensor, pos_rmse_m: torch.Tensor) -> torch.Tensor:
        """(N,) bool task success of an episode ending now (only read where the episode ends)."""
        raise NotImplementedError

    def reference(self) -> dict[str, torch.Tensor]:
        """Reference at the current time: pos (N, 3) m, vel (N, 3) m/s, acc (N, 3) m/s^2 (world ENU), yaw (N,) rad;
        plus jerk (N, 3) m/s^3 where the task has it analytically (hover, tracking)."""
        raise NotImplementedError

    def reference_path(self) -> np.ndarray:
        """Reference path (M, 3) m world ENU for plotting."""
        raise NotImplementedError

    def step_info(self) -> dict[str, torch.Tensor]:
        """Extra per-env info tensors (N,) of this task (e.g. laps)."""
        return {}

    # -- shared --
    def advance_time(self) -> None:
        """Advance every env's elapsed time by one control period."""
        self.time_s.add_(self.dt_s)

    def _reset_time(self, env_ids: torch.Tensor) -> None:
        self.time_s[env_ids] = 0.0
