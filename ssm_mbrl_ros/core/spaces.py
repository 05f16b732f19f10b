"""Observation layouts and the CTBR action spec shared by the simulator, trainer, exporter and runtime.

The policy acts in [-1, 1]^4; `ActionSpec` maps that box to physical collective thrust + body
rates (CTBR): mass-normalised collective thrust along body z in m/s^2, body rates (FLU) in rad/s.
`ObsLayout` names every slice of an observation vector with its unit and frame, so a sidecar or a
ROS node can build the same vector without guessing. Both are plain numpy/python (no torch), and
round-trip through dicts for JSON sidecars.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ACTION_NAMES = ("collective_thrust", "roll_rate", "pitch_rate", "yaw_rate")
ACTION_UNITS = ("m/s^2", "rad/s", "rad/s", "rad/s")


@dataclass(frozen=True)
class ActionSpec:
    """Affine map between normalised actions in [-1, 1] and physical CTBR, with limits."""

    thrust_min_mps2: float
    thrust_max_mps2: float
    max_rate_radps: tuple[float, float, float]

    def __post_init__(self):
        if not self.thrust_max_mps2 > self.thrust_min_mps2 >= 0.0:
            raise ValueError(f"need 0 <= thrust_min_mps2 < thrust_max_mps2, got {self}")
        if len(self.max_rate_radps) != 3 or min(self.max_rate_radps) <= 0:
            raise ValueError(f"max_rate_radps must be 3 positive values, got {self.max_rate_radps}")

    @property
    def low(self) -> np.ndarray:
        """Physical lower limits (4,): thrust m/s^2, rates rad/s."""
        r = np.asarray(self.max_rate_radps, dtype=np.float64)
        return np.concatenate([[self.thrust_min_mps2], -r])

    @property
    def high(self) -> np.ndarray:
        """Physical upper limits (4,): thrust m/s^2, rates rad/s."""
        r = np.asarray(self.max_rate_radps, dtype=np.float64)
        return np.concatenate([[self.thrust_max_mps2], r])

    def scale_offset(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, offset) with physical = scale * normalised + offset, each shape (4,)."""
        return 0.5 * (self.high - self.low), 0.5 * (self.high + self.low)

    def to_physical(self, action):
        """Clamp a normalised action (..., 4) to [-1, 1] and map it to physical CTBR (numpy or torch)."""
        scale, offset = self.scale_offset()
        if hasattr(action, "clamp"):  # torch tensor: keep device and dtype
            import torch

            s = torch.as_tensor(scale, dtype=action.dtype, device=action.device)
            o = torch.as_tensor(offset, dtype=action.dtype, device=action.device)
            return action.clamp(-1.0, 1.0) * s + o
        return np.clip(action, -1.0, 1.0) * scale + offset

    def to_normalized(self, ctbr):
        """Map physical CTBR (..., 4) to [-1, 1] (clamped), the inverse of to_physical (numpy or torch)."""
        scale, offset = self.scale_offset()
        if hasattr(ctbr, "clamp"):
            import torch

            s = torch.as_tensor(scale, dtype=ctbr.dtype, device=ctbr.device)
            o = torch.as_tensor(offset, dtype=ctbr.dtype, device=ctbr.device)
            return ((ctbr - o) / s).clamp(-1.0, 1.0)
        return np.clip((ctbr - offset) / scale, -1.0, 1.0)

    def to_dict(self) -> dict:
        """JSON-ready description (names, units, limits) for sidecars."""
        return {
            "names": list(ACTION_NAMES),
            "units": list(ACTION_UNITS),
            "frame": "body FLU; thrust along body +z",
            "thrust_min_mps2": self.thrust_min_mps2,
            "thrust_max_mps2": self.thrust_max_mps2,
            "max_rate_radps": list(self.max_rate_radps),
            "normalized_range": [-1.0, 1.0],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ActionSpec":
        """Inverse of to_dict."""
        return cls(float(d["thrust_min_mps2"]), float(d["thrust_max_mps2"]), tuple(float(x) for x in d["max_rate_radps"]))


@dataclass(frozen=True)
class ObsField:
    """One named block of an observation vector."""

    name: str
    size: int
    unit: str = ""
    frame: str = ""
    description: str = ""


@dataclass(frozen=True)
class ObsLayout:
    """Ordered named blocks making up an observation vector."""

    fields: tuple[ObsField, ...] = field(default_factory=tuple)

    @property
    def dim(self) -> int:
        """Total length of the observation vector."""
        return sum(f.size for f in self.fields)

    def slices(self) -> dict[str, slice]:
        """Map field name -> slice into the observation vector."""
        out, start = {}, 0
        for f in self.fields:
            out[f.name] = slice(start, start + f.size)
            start += f.size
        return out

    def channel_weights(self, field_weights: dict) -> list[float]:
        """Per-channel weights (dim,) from {field name: weight}; fields not named weigh 1. ValueError on unknown
        names or negative weights."""
        sl = self.slices()
        unknown = sorted(set(field_weights) - set(sl))
        if unknown:
            raise ValueError(f"unknown observation field(s) {unknown}; this observation has {list(sl)}")
        out = [1.0] * self.dim
        for name, weight in field_weights.items():
            if not float(weight) >= 0.0:
                raise ValueError(f"observation field weight {name}: must be >= 0, got {weight!r}")
            out[sl[name]] = [float(weight)] * (sl[name].stop - sl[name].start)
        return out

    def names(self) -> list[str]:
        """Per-element names, e.g. ['pos_err[0]', 'pos_err[1]', ...]."""
        return [f"{f.name}[{i}]" if f.size > 1 else f.name for f in self.fields for i in range(f.size)]

    def to_dict(self) -> dict:
        """JSON-ready description for sidecars."""
        return {"dim": self.dim, "fields": [vars(f).copy() for f in self.fields]}

    @classmethod
    def from_dict(cls, d: dict) -> "ObsLayout":
        """Inverse of to_dict."""
        return cls(tuple(ObsField(**f) for f in d["fields"]))
