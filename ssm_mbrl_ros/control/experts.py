"""Classical controllers that fly the vector env from the true simulator state: the evaluation yardsticks and the
experts of expert-guided training (`ssm-mbrl train --set expert=geometric|geometric_priv`). Simulation only.

An agent has `reset(env_ids)` and `act(obs, env) -> (N, 4) tensor`; `physical` says whether the action is physical
CTBR (thrust m/s^2, body rates rad/s FLU) or normalised [-1, 1].
"""
from __future__ import annotations

import torch

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.sim.state import QUAT, ROTOR, quat_to_rotmat

CONTROLLERS = ("geometric", "geometric_pd", "geometric_priv", "hover")
# experts that may label training data (train `expert`): simulation-only controllers of the true state
EXPERTS = ("geometric", "geometric_priv")


class GeometricAgent:
    """The classical geometric controller tracking the task's reference, in physical CTBR."""

    physical = True

    def __init__(self, env, integral: bool = True):
        """integral=False drops the position-error integral: a memoryless PD law of the true state."""
        from ssm_mbrl_ros.control.geometric import GeometricController, GeometricGains

        gains = GeometricGains() if integral else GeometricGains(ki_pos=(0.0, 0.0, 0.0))
        self.controller = GeometricController(
            env.vehicle, env.num_envs, gains, control_dt_s=env.sim.control_dt_s, device=env.sim.device,
            dtype=env.sim.dtype
        )

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        """Clear integrator state of the given envs (all when None)."""
        self.controller.reset(env_ids)

    def act(self, obs: torch.Tensor, env) -> torch.Tensor:
        """CTBR (N, 4) from the simulator's true state and the task reference."""
        ref = env.task.reference()
        return self.controller.compute(env.sim.state, ref["pos"], ref["vel"], ref["acc"], ref["yaw"],
                                       ref_jerk=ref.get("jerk"))


def wind_drag_acc(sim, state: torch.Tensor, wind_mps: torch.Tensor) -> torch.Tensor:
    """World-frame acceleration (N, 3) m/s^2 that the wind adds through body and rotor drag: the drag on the airspeed
    v - w, minus the drag on v alone, i.e. R diag(d_x + d_r, d_y + d_r, d_z) R^T w with the true (randomised)
    per-mass coefficients and the rotor speeds of state (N, 17)."""
    inv_mass = 1.0 / sim.mass  # (N,) 1/kg
    rotor_drag = sim.rotor_drag * inv_mass * state[:, ROTOR].sum(-1)  # (N,) 1/s
    coeff = sim.body_drag * inv_mass[:, None] + torch.stack([rotor_drag, rotor_drag, torch.zeros_like(rotor_drag)], -1)
    rot = quat_to_rotmat(state[:, QUAT])  # body -> world
    w_body = (rot.transpose(1, 2) @ wind_mps.to(rot.dtype).unsqueeze(-1)).squeeze(-1)
    return (rot @ (coeff * w_body).unsqueeze(-1)).squeeze(-1)


class PrivilegedGeometricAgent(GeometricAgent):
    """The geometric PD law (no integral) plus the true disturbance as feed-forward: the wind's drag cancelled and
    the thrust divided by the randomised thrust-coefficient / mass ratio (the rate loop's mixer assumes nominal
    values). Memoryless given the simulator's privileged state, so its action is a function of what a recurrent
    policy can infer from a short history (the integral of the plain expert depends on the whole episode)."""

    def __init__(self, env):
        super().__init__(env, integral=False)

    def act(self, obs: torch.Tensor, env) -> torch.Tensor:
        """CTBR (N, 4) from the true state, the true vehicle parameters and the current wind."""
        ref, state = env.task.reference(), env.sim.state  # sim.state stacks a copy: take it once
        ref_acc = ref["acc"] - wind_drag_acc(env.sim, state, env.wind.wind_mps)
        ctbr = self.controller.compute(state, ref["pos"], ref["vel"], ref_acc, ref["yaw"],
                                       ref_jerk=ref.get("jerk"))
        gain = env.sim.scales["thrust_coeff"] / env.sim.scales["mass"]  # actual / commanded thrust
        thrust = (ctbr[:, 0] / gain.to(ctbr.dtype)).clamp(self.controller.low[0], self.controller.high[0])
        return torch.cat([thrust.unsqueeze(-1), ctbr[:, 1:]], -1)


class HoverThrustAgent:
    """Open-loop hover thrust and zero rates: a baseline that shows what 'no control' looks like."""

    physical = True

    def __init__(self, env):
        self.ctbr = torch.zeros(env.num_envs, 4, device=env.sim.device, dtype=env.sim.dtype)
        self.ctbr[:, 0] = 9.81

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        """Stateless."""

    def act(self, obs: torch.Tensor, env) -> torch.Tensor:
        """Constant hover CTBR."""
        return self.ctbr


def make_expert(name: str, env):
    """The labelling expert of expert-guided training (train `expert`), None for 'none'."""
    if name == "none":
        return None
    if name not in EXPERTS:
        raise ConfigError(f"unknown expert {name!r}; valid experts: {['none', *EXPERTS]}")
    return make_agent(name, env)


def make_agent(controller: str, env):
    """Build the named classical controller for env; unknown names list the valid ones."""
    if controller == "geometric":
        return GeometricAgent(env)
    if controller == "geometric_pd":
        return GeometricAgent(env, integral=False)
    if controller == "geometric_priv":
        return PrivilegedGeometricAgent(env)
    if controller == "hover":
        return HoverThrustAgent(env)
    raise ConfigError(f"unknown controller {controller!r}; valid controllers: {list(CONTROLLERS)}")
