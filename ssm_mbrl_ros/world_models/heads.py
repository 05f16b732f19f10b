"""MLP builder and the world-model prediction heads (observation, reward, continue, privileged).

All heads read the model feature feat = [h, z] (..., F). Targets live in symlog space for the
observation and privileged vectors; the reward is a two-hot distribution over symlog-spaced bins
whose output layer starts at zero (a uniform distribution decoding to exactly 0, as DreamerV3).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .distributions import symexp, symlog, twohot_bins, twohot_loss, twohot_mean


def mlp(in_dim: int, out_dim: int | None, hidden: int, layers: int, zero_out: bool = False) -> nn.Sequential:
    """`layers` x [Linear (no bias) -> LayerNorm -> SiLU], then Linear to out_dim (None: no output layer)."""
    mods: list[nn.Module] = []
    width = in_dim
    for _ in range(layers):
        mods += [nn.Linear(width, hidden, bias=False), nn.LayerNorm(hidden), nn.SiLU()]
        width = hidden
    if out_dim is not None:
        out = nn.Linear(width, out_dim)
        if zero_out:
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
        mods.append(out)
    return nn.Sequential(*mods)


class Heads(nn.Module):
    """Decoder + reward + continue (+ privileged when priv_dim > 0) heads on feat (..., F)."""

    def __init__(self, feat_dim: int, obs_dim: int, priv_dim: int, hidden: int, mlp_layers: int,
                 head_layers: int, reward_bins: int):
        super().__init__()
        self.feat_dim, self.obs_dim, self.priv_dim = feat_dim, obs_dim, priv_dim
        self.decoder = mlp(feat_dim, obs_dim, hidden, mlp_layers)
        self.reward_head = mlp(feat_dim, reward_bins, hidden, head_layers, zero_out=True)
        self.cont_head = mlp(feat_dim, 1, hidden, head_layers)
        self.priv_head = mlp(feat_dim, priv_dim, hidden, head_layers) if priv_dim > 0 else None
        self.register_buffer("bins", twohot_bins(reward_bins), persistent=False)

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        """Expected reward (...,) decoded from the two-hot distribution."""
        return twohot_mean(self.reward_head(feat), self.bins)

    def cont(self, feat: torch.Tensor) -> torch.Tensor:
        """Probability (...,) that the episode continues after this state."""
        return torch.sigmoid(self.cont_head(feat).squeeze(-1))

    def decode(self, feat: torch.Tensor) -> torch.Tensor:
        """Reconstructed observation (..., D) in physical units (symexp of the symlog prediction)."""
        return symexp(self.decoder(feat))

    def losses(self, feat: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """Per-step losses (B, T) for obs, reward, cont and priv (priv is zero where absent or masked)."""
        obs, reward, cont = batch["obs"], batch["reward"], batch["cont"]
        out = {
            "obs": (self.decoder(feat) - symlog(obs)).square().sum(-1),
            "reward": twohot_loss(self.reward_head(feat), reward, self.bins),
            "cont": F.binary_cross_entropy_with_logits(self.cont_head(feat).squeeze(-1), cont.to(feat.dtype),
                                                       reduction="none"),
        }
        priv = batch.get("privileged")
        if priv is not None and self.priv_head is not None:
            if priv.shape[-1] != self.priv_dim:
                raise ValueError(f"batch['privileged'] must have {self.priv_dim} features, got {tuple(priv.shape)}")
            out["priv"] = (self.priv_head(feat) - symlog(priv)).square().sum(-1)
        return out
