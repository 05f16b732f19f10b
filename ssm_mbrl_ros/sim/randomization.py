"""Domain randomisation: per-env vehicle parameter scales and a wind process (mean + gusts), m/s.

Parameter scales multiply the nominal vehicle values (1.0 = nominal) and are drawn uniformly from
the configured ranges at every episode reset: mass, inertia, thrust coefficient (also scales the
rotor torque coefficient in the simulator), motor time constant and drag (body + rotor drag).

Wind (world ENU, m/s) = a per-episode mean (horizontal speed uniform in [0, mean_speed_max_mps],
uniform direction, vertical mean uniform in +-mean_vertical_max_mps) + a gust: a per-env
Ornstein-Uhlenbeck process per axis with correlation time gust_tau_s and stationary std
gust_std_mps (vertical: gust_std_mps * gust_vertical_ratio). It is discretised exactly,
g <- a g + std sqrt(1 - a^2) n with a = exp(-dt / tau), so its std does not depend on the
control rate. All randomness comes from the caller's torch.Generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.config import ConfigError, doc

PARAM_NAMES = ("mass", "inertia", "thrust_coeff", "motor_tau", "drag")


@dataclass
class WindConfig:
    """Wind = per-episode mean + Ornstein-Uhlenbeck gusts, world ENU, m/s."""

    enabled: bool = doc("simulate wind (False: still air)", default=True)
    mean_speed_max_mps: float = doc("max horizontal mean wind speed, m/s (uniform in [0, max])", default=1.0)
    mean_vertical_max_mps: float = doc("max |vertical mean wind|, m/s", default=0.0)
    gust_std_mps: float = doc("stationary std of horizontal gusts, m/s", default=0.3)
    gust_vertical_ratio: float = doc("vertical gust std / horizontal gust std", default=0.5)
    gust_tau_s: float = doc("gust correlation time, s", default=1.0)

    def validate(self, source: str) -> None:
        """Speeds and stds are >= 0, the correlation time is > 0."""
        for name in ("mean_speed_max_mps", "mean_vertical_max_mps", "gust_std_mps", "gust_vertical_ratio"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ConfigError(f"{source}.{name}: must be finite and >= 0, got {value}")
        if not (math.isfinite(self.gust_tau_s) and self.gust_tau_s > 0.0):
            raise ConfigError(f"{source}.gust_tau_s: must be > 0, got {self.gust_tau_s}")

    @property
    def active(self) -> bool:
        """True when any wind component can be non-zero."""
        return self.enabled and (self.mean_speed_max_mps > 0 or self.mean_vertical_max_mps > 0 or self.gust_std_mps > 0)


@dataclass
class RandomizationConfig:
    """Per-episode scale ranges [low, high] (1.0 = nominal) of vehicle parameters, plus wind."""

    enabled: bool = doc("randomise vehicle parameters at reset (False: nominal vehicle)", default=True)
    mass_scale: tuple[float, float] = doc("mass scale range", default=(0.9, 1.1))
    inertia_scale: tuple[float, float] = doc("inertia scale range", default=(0.85, 1.15))
    thrust_coeff_scale: tuple[float, float] = doc("rotor thrust (and torque) coefficient scale range", default=(0.9, 1.1))
    motor_tau_scale: tuple[float, float] = doc("motor time constant scale range", default=(0.8, 1.25))
    drag_scale: tuple[float, float] = doc("body + rotor drag scale range", default=(0.5, 1.5))
    wind: WindConfig = doc("wind model", default_factory=WindConfig)

    def validate(self, source: str) -> None:
        """Every range is 0 < low <= high."""
        for name in PARAM_NAMES:
            low, high = getattr(self, f"{name}_scale")
            if not (0.0 < low <= high and math.isfinite(high)):
                raise ConfigError(f"{source}.{name}_scale: need 0 < low <= high, got {[low, high]}")

    def ranges(self) -> list[tuple[float, float]]:
        """Scale ranges in PARAM_NAMES order."""
        return [tuple(getattr(self, f"{name}_scale")) for name in PARAM_NAMES]


def sample_param_scales(cfg: RandomizationConfig, n: int, generator: torch.Generator, device, dtype) -> torch.Tensor:
    """Scales (n, 5) in PARAM_NAMES order: uniform in the configured ranges, ones when disabled."""
    if not cfg.enabled:
        return torch.ones(n, len(PARAM_NAMES), device=device, dtype=dtype)
    rng = torch.tensor(cfg.ranges(), device=device, dtype=dtype)  # (5, 2)
    u = torch.rand(n, len(PARAM_NAMES), generator=generator, device=device, dtype=dtype)
    return rng[:, 0] + (rng[:, 1] - rng[:, 0]) * u


class WindProcess:
    """Per-env wind (N, 3) world ENU m/s: episode mean + exact-discretised OU gusts."""

    def __init__(self, cfg: WindConfig, num_envs: int, dt_s: float, device, dtype):
        self.cfg = cfg
        self.active = cfg.active
        kw = dict(device=device, dtype=dtype)
        # struct-of-arrays (3, N): contiguous rows for the per-step update; (N, 3) views outside
        self._mean = torch.zeros(3, num_envs, **kw)
        self._gust = torch.zeros(3, num_envs, **kw)
        self._wind = torch.zeros(3, num_envs, **kw)
        self._noise = torch.zeros(3, num_envs, **kw)
        self._decay = math.exp(-dt_s / cfg.gust_tau_s)
        self._std = torch.tensor([1.0, 1.0, cfg.gust_vertical_ratio], **kw).reshape(3, 1) * cfg.gust_std_mps
        self._innovation = self._std * math.sqrt(1.0 - self._decay**2)

    @property
    def wind_mps(self) -> torch.Tensor:
        """Current wind (N, 3) m/s, world ENU (a view)."""
        return self._wind.t()

    @property
    def mean_mps(self) -> torch.Tensor:
        """Per-episode mean wind (N, 3) m/s (a view)."""
        return self._mean.t()

    def reset(self, env_ids: torch.Tensor, generator: torch.Generator) -> None:
        """Draw a new mean wind and a stationary gust state for env_ids."""
        if not self.active:
            return
        n = env_ids.shape[0]
        kw = dict(generator=generator, device=self._mean.device, dtype=self._mean.dtype)
        u = torch.rand(3, n, **kw)
        speed = self.cfg.mean_speed_max_mps * u[0]
        heading = 2.0 * math.pi * u[1]
        vertical = self.cfg.mean_vertical_max_mps * (2.0 * u[2] - 1.0)
        mean = torch.stack([speed * torch.cos(heading), speed * torch.sin(heading), vertical], 0)
        gust = torch.randn(3, n, **kw) * self._std
        self._mean[:, env_ids] = mean
        self._gust[:, env_ids] = gust
        self._wind[:, env_ids] = mean + gust

    def step(self, generator: torch.Generator) -> torch.Tensor | None:
        """Advance the gusts one control period; returns wind (N, 3) m/s (a view), or None when inactive."""
        if not self.active:
            return None
        self._noise.normal_(generator=generator)
        self._gust.mul_(self._decay).addcmul_(self._noise, self._innovation)
        torch.add(self._mean, self._gust, out=self._wind)
        return self._wind.t()
