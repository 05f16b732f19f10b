"""Things that act in the vector env during evaluation: classical controllers (and, later, policies).

An agent has `reset(env_ids)` and `act(obs, env) -> (N, 4) tensor`; `physical` says whether the
action is physical CTBR (thrust m/s^2, body rates rad/s FLU) or normalised [-1, 1].
"""
from __future__ import annotations

import torch

from ssm_mbrl_ros.core.config import ConfigError

CONTROLLERS = ("geometric", "geometric_pd", "hover")


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


def make_agent(controller: str, env):
    """Build the named classical controller for env; unknown names list the valid ones."""
    if controller == "geometric":
        return GeometricAgent(env)
    if controller == "geometric_pd":
        return GeometricAgent(env, integral=False)
    if controller == "hover":
        return HoverThrustAgent(env)
    raise ConfigError(f"unknown controller {controller!r}; valid controllers: {list(CONTROLLERS)}")


class OnnxPolicyAgent:
    """An exported policy (.onnx + sidecar) run with onnxruntime: the deployed path, one row per env."""

    physical = False

    def __init__(self, env, onnx_path, threads: int = 1):
        from ssm_mbrl_ros.runtime.policy import OnnxPolicy

        self.policy = OnnxPolicy(onnx_path, threads=threads)
        want, have = self.policy.obs_layout, env.obs_layout
        if want.to_dict() != have.to_dict():
            raise ConfigError(f"policy {onnx_path} reads observation layout {want.names()} ({want.dim} values) but "
                              f"task {env.task_name!r} produces {have.names()} ({have.dim}); evaluate it on the task "
                              f"it was trained for ({self.policy.sidecar.get('task')!r})")
        self.policy.reset(env.num_envs)
        self.surprise: list[float] = []

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        """Reset the recurrent state of the given envs (all when None)."""
        if env_ids is None:
            self.policy.reset(self.policy.batch_size)
            return
        mask = torch.zeros(self.policy.batch_size, dtype=torch.bool)
        mask[env_ids.cpu()] = True
        self.policy.reset_where(mask.numpy())

    def act(self, obs: torch.Tensor, env) -> torch.Tensor:
        """Normalised action (N, 4) from the ONNX graph."""
        action, _, surprise = self.policy.step(obs.detach().cpu().float().numpy(), copy=False)
        self.surprise.append(float(surprise.mean()))
        return torch.from_numpy(action.copy()).to(obs.device, obs.dtype)
