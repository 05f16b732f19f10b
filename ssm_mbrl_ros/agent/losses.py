"""Pure DreamerV3 actor-critic loss functions for imagined trajectories, plus the return normaliser.

Index convention (matches WorldModel.imagine): an imagined trajectory has states s_0..s_H, with
feat (N, H+1, F) where index 0 is the start state, and reward/cont (N, H) where reward[:, t] and
cont[:, t] are r_{t+1} and c_{t+1}, i.e. predicted for the state s_{t+1} reached by action a_t.
value (N, H+1) is v(s_0)..v(s_H). lambda_returns gives R_0..R_{H-1} (N, H):

    R_t = r_{t+1} + gamma c_{t+1} ((1 - lam) v_{t+1} + lam R_{t+1}),   R_H = v_H,

so it bootstraps from the last value. Actor and critic losses are taken at states 0..H-1 with
weights imagination_weights(...)[:, :H].
"""
from __future__ import annotations

import torch
from torch import nn

from ..world_models.distributions import twohot_loss, twohot_mean


def _check(name: str, x: torch.Tensor, shape: tuple) -> None:
    """Assert x has the given shape (module boundary check with a clear message)."""
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")


def lambda_returns(reward: torch.Tensor, value: torch.Tensor, cont: torch.Tensor, discount: float,
                   lam: float = 0.95) -> torch.Tensor:
    """TD(lambda) returns R_0..R_{H-1} (N, H) from reward/cont (N, H) and value (N, H+1); see module doc."""
    if reward.dim() != 2:
        raise ValueError(f"reward must have shape (N, H), got {tuple(reward.shape)}")
    n, h = reward.shape
    _check("value", value, (n, h + 1))
    _check("cont", cont, (n, h))
    disc = discount * cont  # (N, H): gamma c_{t+1}
    interm = reward + disc * (1.0 - lam) * value[:, 1:]  # (N, H)
    out = []
    ret = value[:, -1]  # (N,) R_H = v_H
    for t in reversed(range(h)):
        ret = interm[:, t] + disc[:, t] * lam * ret
        out.append(ret)
    return torch.stack(out[::-1], 1)  # (N, H)


def imagination_weights(cont: torch.Tensor, discount: float) -> torch.Tensor:
    """Loss weights (N, H+1) w_t = c_0 prod_{k=1..t} gamma c_k for states s_0..s_H (detached).

    cont (N, H+1) is the continue flag of every imagined state, index 0 the start (1 for a live start;
    use 1 - is_terminal of the start state). A state after a predicted termination gets weight ~0.
    """
    if cont.dim() != 2:
        raise ValueError(f"cont must have shape (N, H+1), got {tuple(cont.shape)}")
    cont = cont.detach()
    scale = torch.full_like(cont, discount)
    scale[:, 0] = 1.0
    return torch.cumprod(scale * cont, dim=1)  # (N, H+1)


class ReturnNormalizer(nn.Module):
    """EMA of the 5th and 95th return percentiles; scale = max(1, P95 - P5) (DreamerV3).

    The EMA starts at zero (as DreamerV3): after the first update low = (1 - decay) P5.
    State (low, high) is in buffers, so state_dict/load_state_dict and .to(device) work.
    """

    def __init__(self, decay: float = 0.99, low_pct: float = 5.0, high_pct: float = 95.0, max_scale_floor: float = 1.0):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ReturnNormalizer decay must be in [0, 1), got {decay}")
        if not 0.0 <= low_pct < high_pct <= 100.0:
            raise ValueError(f"ReturnNormalizer percentiles must satisfy 0 <= low < high <= 100, got {low_pct}, {high_pct}")
        self.decay, self.low_pct, self.high_pct, self.floor = decay, low_pct, high_pct, max_scale_floor
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> None:
        """Fold the percentiles of returns (any shape, flattened) into the EMA."""
        x = returns.detach().reshape(-1).to(self.low.dtype)
        q = torch.quantile(x, torch.tensor([self.low_pct, self.high_pct], dtype=x.dtype, device=x.device) / 100.0)
        self.low.mul_(self.decay).add_((1.0 - self.decay) * q[0])
        self.high.mul_(self.decay).add_((1.0 - self.decay) * q[1])

    def scale(self) -> torch.Tensor:
        """Current scale () = max(floor, high - low)."""
        return torch.clamp(self.high - self.low, min=self.floor)

    def forward(self, returns: torch.Tensor, value: torch.Tensor, update: bool = True) -> torch.Tensor:
        """Normalised advantage (R - v) / scale (same shape); updates the EMA with returns first if update."""
        if update:
            self.update(returns)
        return (returns - value) / self.scale().to(returns.dtype)


def actor_loss(logp: torch.Tensor, entropy: torch.Tensor, advantage: torch.Tensor, weight: torch.Tensor,
               entropy_coef: float = 3e-4) -> torch.Tensor:
    """REINFORCE loss () = mean(-w (logp sg(adv) + eta H)) over (N, H); advantage already normalised."""
    _check("entropy", entropy, logp.shape)
    _check("advantage", advantage, logp.shape)
    _check("weight", weight, logp.shape)
    per_step = logp * advantage.detach() + entropy_coef * entropy  # (N, H)
    return -(weight.detach() * per_step).mean()


def critic_loss(value_logits: torch.Tensor, target: torch.Tensor, slow_value_logits: torch.Tensor,
                bins: torch.Tensor, weight: torch.Tensor, slow_reg: float = 1.0) -> torch.Tensor:
    """Two-hot critic loss () on logits (N, H, K) toward sg(target) (N, H), plus slow_reg x the two-hot loss
    toward the slow critic's mean prediction (DreamerV3 slow-critic regulariser), weighted by weight (N, H)."""
    k = bins.shape[0]
    _check("value_logits", value_logits, (*target.shape, k))
    _check("slow_value_logits", slow_value_logits, value_logits.shape)
    _check("weight", weight, target.shape)
    loss = twohot_loss(value_logits, target.detach(), bins)  # (N, H)
    if slow_reg:
        slow_mean = twohot_mean(slow_value_logits.detach(), bins)  # (N, H)
        loss = loss + slow_reg * twohot_loss(value_logits, slow_mean, bins)
    return (weight.detach() * loss).mean()
