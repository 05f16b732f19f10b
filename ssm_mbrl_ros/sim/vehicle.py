"""Quadrotor vehicle parameters (SI units) loaded from config/vehicles/<name>.yaml, with validation.

Every file gives mass, full inertia, rotor geometry and spin directions, rotor thrust/torque
coefficients, rotor speed limits, motor lag, drag and the PX4-like rate-loop gains. Errors name
the file and the field (`config/vehicles/x500.yaml.mass_kg: must be > 0, got -1.0`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.config import ConfigError, doc, from_dict, load_yaml, resolve_shipped_config, shipped_config_names
from ..core.spaces import ActionSpec
from .state import GRAVITY_MPS2

PACKAGE = "ssm_mbrl_ros"


@dataclass
class RateGains:
    """PX4-like body-rate PID + feed-forward gains per axis (roll, pitch, yaw), on angular acceleration."""

    kp: list[float] = doc("proportional gain per axis, (rad/s^2)/(rad/s)")
    ki: list[float] = doc("integral gain per axis, (rad/s^2)/rad")
    kd: list[float] = doc("derivative gain on measured rate per axis, (rad/s^2)/(rad/s^2)")
    kff: list[float] = doc("rate set-point feed-forward per axis, (rad/s^2)/(rad/s)")
    integrator_limit_radps2: list[float] = doc("anti-windup clamp on ki * integral per axis, rad/s^2")

    def validate(self, source: str) -> None:
        """Each gain is 3 finite non-negative numbers; the integrator limit is positive."""
        for name in ("kp", "ki", "kd", "kff", "integrator_limit_radps2"):
            values = getattr(self, name)
            where = f"{source}.{name}"
            if len(values) != 3:
                raise ConfigError(f"{where}: expected 3 values (roll, pitch, yaw), got {len(values)}")
            if not all(math.isfinite(v) and v >= 0.0 for v in values):
                raise ConfigError(f"{where}: values must be finite and >= 0, got {values}")
        if min(self.integrator_limit_radps2) <= 0.0:
            raise ConfigError(f"{source}.integrator_limit_radps2: must be > 0, got {self.integrator_limit_radps2}")


@dataclass
class VehicleParams:
    """Physical parameters of one quadrotor (SI units, FLU body frame, rotor order as in the file)."""

    name: str = doc("vehicle identifier")
    mass_kg: float = doc("total mass, kg")
    inertia_kgm2: list[list[float]] = doc("full 3x3 inertia about the centre of mass, FLU axes, kg m^2")
    rotor_positions_m: list[list[float]] = doc("4x3 rotor hub positions in FLU body frame, m")
    rotor_directions: list[int] = doc("4 spin directions: +1 counter-clockwise seen from above, -1 clockwise")
    thrust_coeff: float = doc("rotor thrust per rotor speed squared, N/(rad/s)^2")
    torque_coeff: float = doc("rotor drag torque per rotor speed squared, N m/(rad/s)^2")
    rotor_speed_min_radps: float = doc("minimum (idle) rotor speed, rad/s")
    rotor_speed_max_radps: float = doc("maximum rotor speed, rad/s")
    motor_time_constant_s: float = doc("first-order motor lag time constant, s")
    body_drag_npmps: list[float] = doc("linear body drag per body axis (x, y, z), N/(m/s)")
    rotor_drag_coeff: float = doc("rotor (blade-flapping/induced) drag per rotor speed and in-plane airspeed, N/(m/s)/(rad/s)")
    max_rate_radps: list[float] = doc("body-rate command limits (roll, pitch, yaw), rad/s")
    rate_gains: RateGains = doc("PX4-like rate-loop gains")

    def validate(self, source: str) -> None:
        """Reject physically impossible values with a ConfigError naming `source`.field."""

        def fail(field_name: str, msg: str):
            raise ConfigError(f"{source}.{field_name}: {msg}")

        def finite(field_name: str, value: float, positive: bool = True):
            if not math.isfinite(value):
                fail(field_name, f"must be finite, got {value}")
            if positive and value <= 0.0:
                fail(field_name, f"must be > 0, got {value}")

        finite("mass_kg", self.mass_kg)
        inertia = np.asarray(self.inertia_kgm2, dtype=np.float64)
        if inertia.shape != (3, 3):
            fail("inertia_kgm2", f"expected a 3x3 matrix, got shape {inertia.shape}")
        if not np.all(np.isfinite(inertia)):
            fail("inertia_kgm2", "must be finite")
        if not np.allclose(inertia, inertia.T, rtol=1e-9, atol=1e-15):
            fail("inertia_kgm2", f"must be symmetric, got {inertia.tolist()}")
        if np.linalg.eigvalsh(inertia).min() <= 0.0:
            fail("inertia_kgm2", f"must be positive definite (eigenvalues {np.linalg.eigvalsh(inertia).tolist()})")
        rotors = np.asarray(self.rotor_positions_m, dtype=np.float64)
        if rotors.shape != (4, 3) or not np.all(np.isfinite(rotors)):
            fail("rotor_positions_m", f"expected 4 rows of 3 finite numbers, got shape {rotors.shape}")
        if len(self.rotor_directions) != 4 or any(d not in (-1, 1) for d in self.rotor_directions):
            fail("rotor_directions", f"expected 4 values each +1 or -1, got {self.rotor_directions}")
        if sum(self.rotor_directions) != 0:
            fail("rotor_directions", f"need two rotors each way for yaw balance, got {self.rotor_directions}")
        finite("thrust_coeff", self.thrust_coeff)
        finite("torque_coeff", self.torque_coeff)
        finite("rotor_speed_min_radps", self.rotor_speed_min_radps, positive=False)
        if self.rotor_speed_min_radps < 0.0:
            fail("rotor_speed_min_radps", f"must be >= 0, got {self.rotor_speed_min_radps}")
        finite("rotor_speed_max_radps", self.rotor_speed_max_radps)
        if self.rotor_speed_max_radps <= self.rotor_speed_min_radps:
            fail("rotor_speed_max_radps", f"must exceed rotor_speed_min_radps ({self.rotor_speed_min_radps}), "
                 f"got {self.rotor_speed_max_radps}")
        finite("motor_time_constant_s", self.motor_time_constant_s)
        if len(self.body_drag_npmps) != 3 or not all(math.isfinite(d) and d >= 0.0 for d in self.body_drag_npmps):
            fail("body_drag_npmps", f"expected 3 finite values >= 0, got {self.body_drag_npmps}")
        finite("rotor_drag_coeff", self.rotor_drag_coeff, positive=False)
        if self.rotor_drag_coeff < 0.0:
            fail("rotor_drag_coeff", f"must be >= 0, got {self.rotor_drag_coeff}")
        if len(self.max_rate_radps) != 3 or not all(math.isfinite(r) and r > 0.0 for r in self.max_rate_radps):
            fail("max_rate_radps", f"expected 3 finite values > 0, got {self.max_rate_radps}")
        try:
            np.linalg.inv(self.allocation_matrix())
        except np.linalg.LinAlgError:
            fail("rotor_positions_m", "rotor geometry cannot produce independent roll/pitch/yaw torques")
        if self.thrust_to_weight <= 1.0:
            fail("rotor_speed_max_radps", f"thrust-to-weight {self.thrust_to_weight:.2f} <= 1: the vehicle cannot hover")

    # ---- derived quantities ----
    @property
    def inertia(self) -> np.ndarray:
        """Inertia matrix (3, 3), kg m^2."""
        return np.asarray(self.inertia_kgm2, dtype=np.float64)

    @property
    def rotor_positions(self) -> np.ndarray:
        """Rotor hub positions (4, 3) in FLU body frame, m."""
        return np.asarray(self.rotor_positions_m, dtype=np.float64)

    @property
    def hover_rotor_speed_radps(self) -> float:
        """Rotor speed at which the four rotors together carry the weight, rad/s."""
        return math.sqrt(self.mass_kg * GRAVITY_MPS2 / (4.0 * self.thrust_coeff))

    @property
    def max_collective_thrust_mps2(self) -> float:
        """Mass-normalised thrust with all rotors at maximum speed, m/s^2."""
        return 4.0 * self.thrust_coeff * self.rotor_speed_max_radps**2 / self.mass_kg

    @property
    def min_collective_thrust_mps2(self) -> float:
        """Mass-normalised thrust with all rotors at idle speed, m/s^2."""
        return 4.0 * self.thrust_coeff * self.rotor_speed_min_radps**2 / self.mass_kg

    @property
    def thrust_to_weight(self) -> float:
        """Maximum thrust over weight (dimensionless)."""
        return self.max_collective_thrust_mps2 / GRAVITY_MPS2

    def allocation_matrix(self) -> np.ndarray:
        """(4, 4) map from per-rotor thrusts (N) to [collective thrust N, torque x, y, z N m] (FLU).

        A rotor at (x, y) pushing F along +z gives torque (y F, -x F, 0); a counter-clockwise
        rotor (+1) drags the body clockwise: yaw torque -(torque_coeff / thrust_coeff) F.
        """
        pos = self.rotor_positions
        ratio = self.torque_coeff / self.thrust_coeff
        dirs = np.asarray(self.rotor_directions, dtype=np.float64)
        return np.stack([np.ones(4), pos[:, 1], -pos[:, 0], -ratio * dirs])

    def action_spec(self) -> ActionSpec:
        """CTBR action spec: thrust 0..max collective thrust (m/s^2), rates from max_rate_radps."""
        return ActionSpec(0.0, self.max_collective_thrust_mps2, tuple(float(r) for r in self.max_rate_radps))


def list_vehicles() -> list[str]:
    """Names of the vehicle files found in the search folders."""
    return shipped_config_names("vehicles")


def resolve_vehicle_path(name_or_path: str | Path) -> Path:
    """A path to an existing file, or config/vehicles/<name>.yaml found in the search folders."""
    return resolve_shipped_config("vehicles", name_or_path, "vehicle", "vehicles")


def load_vehicle(name_or_path: str | Path) -> VehicleParams:
    """Load and validate a vehicle by bare name (agile5, x500, crazyflie) or YAML path."""
    path = resolve_vehicle_path(name_or_path)
    return from_dict(VehicleParams, load_yaml(path), str(path))
