"""A steadier actor late in a run: its learning rate annealed over the run's budget, and a Polyak average of its
weights that is exported and evaluated instead of the live actor (docs/learning.md section 17).

The live actor keeps collecting and learning in imagination; only what leaves the trainer (policy.onnx, best.onnx,
the evaluations that rank them) reads the average.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def budget_fraction(wall_s: float, env_steps: int, minutes: float, max_env_steps: int) -> float | None:
    """How much of the run's budget is spent, in [0, 1] (the larger of the wall-clock and env-step fractions);
    None when the run has no budget."""
    parts = []
    if minutes:
        parts.append(wall_s / (minutes * 60.0))
    if max_env_steps:
        parts.append(env_steps / max_env_steps)
    return min(1.0, max(parts)) if parts else None


def anneal_factor(fraction: float | None, start: float, final: float) -> float:
    """Learning-rate multiplier: 1 until `start` of the budget, then linear down to `final` at its end (1 without a
    budget or with start >= 1)."""
    if fraction is None or start >= 1.0 or fraction <= start:
        return 1.0
    return 1.0 + (final - 1.0) * (fraction - start) / (1.0 - start)


class ActorAverage:
    """Exponential moving average of an actor's parameters (buffers copied), updated once per learner update."""

    def __init__(self, actor: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"actor average decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(actor).eval()
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, actor: nn.Module) -> None:
        """avg <- decay * avg + (1 - decay) * actor."""
        for avg, live in zip(self.module.parameters(), actor.parameters()):
            avg.lerp_(live.detach(), 1.0 - self.decay)
        for avg, live in zip(self.module.buffers(), actor.buffers()):
            avg.copy_(live)

    def state_dict(self) -> dict:
        """The averaged weights (checkpoints)."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore averaged weights from state_dict()."""
        self.module.load_state_dict(state)
