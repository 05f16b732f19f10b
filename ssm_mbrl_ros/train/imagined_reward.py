"""The task's own reward, evaluated on imagined observations.

Imagination predicts observations (the world model's decoder) as well as rewards (its reward head). Where the task
defines its reward as a function of the observation (hover with full observation: distance to the setpoint, velocity,
body rates, action change), the actor-critic can score imagined steps with that very function instead of the learned
reward head. The head learns the reward's shape from replay, where states near the setpoint are rare early on: measured,
it predicted 0.68 within 0.3 m of the setpoint where the simulator paid 0.99, and 0.83 at 0.3-1 m. With the task's
function the reward ranks decoded positions exactly as the simulator does; in two 10-minute runs this did not fly
closer to the setpoint than the head did (docs/learning.md section 9), so it is an option (`imagined_reward=task`).

Expected termination enters as -crash_penalty * (1 - continue probability) of each imagined step.
"""
from __future__ import annotations

import torch

from ..core.spaces import ObsLayout
from ..world_models.distributions import symexp

IMAGINED_REWARDS = ("task", "head")


class HoverObservationReward:
    """Hover step reward (sim/tasks/hover.hover_step_reward) from observations (N, H, D) in their units."""

    def __init__(self, weights, obs_layout: ObsLayout):
        """weights: the task's HoverReward; obs_layout: the observation the world model decodes."""
        self.weights = weights
        sl = obs_layout.slices()
        self.pos_err, self.vel, self.omega = sl["pos_err"], sl["vel"], sl["omega"]
        self.last_action = sl["last_action"]

    def __call__(self, obs: torch.Tensor, prev_action: torch.Tensor, action: torch.Tensor,
                 cont: torch.Tensor) -> torch.Tensor:
        """Reward (N, H) on arriving at obs[:, t] after action[:, t] (taken after prev_action[:, t]), with the
        continue probabilities cont (N, H) of those steps."""
        from ..sim.tasks.hover import hover_step_reward

        err = obs[..., self.pos_err].norm(dim=-1)
        vel_sq = obs[..., self.vel].square().sum(-1)
        rate_sq = obs[..., self.omega].square().sum(-1)
        change_sq = (action - prev_action).square().sum(-1)
        reward = hover_step_reward(self.weights, err, vel_sq, rate_sq, change_sq)
        return reward - self.weights.crash_penalty * (1.0 - cont)

    def previous_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The action before each observation (..., A): its last_action block."""
        return obs[..., self.last_action]


def observation_reward(env, choice: str = "task") -> HoverObservationReward | None:
    """The observation reward of env's task when choice is 'task' and the task has one (hover with full observation:
    the velocity is observed), else None (imagination keeps the reward head)."""
    if choice not in IMAGINED_REWARDS:
        raise ValueError(f"imagined_reward must be one of {IMAGINED_REWARDS}, got {choice!r}")
    names = {f.name for f in env.obs_layout.fields}
    if choice == "head" or env.task.name != "hover" or not {"pos_err", "vel", "omega", "last_action"} <= names:
        return None
    return HoverObservationReward(env.cfg.reward, env.obs_layout)


def decoded_observation(wm, feat: torch.Tensor) -> torch.Tensor:
    """The world model's predicted observation (..., D) in the observation's units for features (..., F)."""
    return symexp(wm.heads.decoder(feat))
