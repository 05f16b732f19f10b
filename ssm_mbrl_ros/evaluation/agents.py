"""Exported policies acting in the vector env during evaluation (the deployed ONNX path, one row per env). The
classical controllers and training experts are in control/experts.py.
"""
from __future__ import annotations

import torch

from ssm_mbrl_ros.core.config import ConfigError


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
        if abs(self.policy.control_hz * env.dt_s - 1.0) > 1e-6:
            raise ConfigError(f"policy {onnx_path} was trained at {self.policy.control_hz:g} Hz but the task steps at "
                              f"{1.0 / env.dt_s:g} Hz; build the task with the sidecar's task definition "
                              f"(runtime.sidecar.task_overrides_of)")
        if self.policy.action_spec != env.action_spec:
            raise ConfigError(f"policy {onnx_path} maps its actions to {self.policy.action_spec} but the task spans "
                              f"{env.action_spec}; build the task with the sidecar's task definition "
                              f"(runtime.sidecar.task_overrides_of)")
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
