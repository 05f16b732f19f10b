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


class RunningStandardizer(nn.Module):
    """Per-feature mean and variance of every row seen so far (buffers, saved in checkpoints), for regression targets
    whose features have very different spreads (a privileged vector mixes rotor speeds with 0.9-1.1 scales)."""

    def __init__(self, dim: int, min_std: float = 0.01):
        super().__init__()
        self.min_std = min_std
        # sums a tensor across data-parallel ranks in place (set by the learner under torchrun); every rank then merges
        # the same rows and the statistics stay identical
        self.reduce = None
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(dim, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Merge rows x (..., D) (where mask (...) is true) into the statistics (Chan et al.'s parallel update)."""
        rows = x.reshape(-1, x.shape[-1]).double()
        if mask is not None:
            rows = rows[mask.reshape(-1).bool()]
        # count, then sums of (x - mean) and (x - mean)^2 around the current mean: one flat vector to reduce
        shifted = rows - self.mean
        sums = torch.cat([rows.new_tensor([rows.shape[0]]), shifted.sum(0), shifted.square().sum(0)])
        if self.reduce is not None:
            self.reduce(sums)
        n, dim = float(sums[0]), self.mean.shape[0]
        if n == 0:
            return
        s1, s2 = sums[1:1 + dim], sums[1 + dim:]
        delta = s1 / n  # batch mean - running mean
        m2 = s2 - s1.square() / n
        total = self.count + n
        self.mean += delta * (n / total)
        self.m2 += m2 + delta.square() * (self.count * n / total)
        self.count.copy_(total)

    def std(self) -> torch.Tensor:
        """Per-feature standard deviation (D,), floored at min_std."""
        var = self.m2 / self.count.clamp(min=1.0)
        return var.sqrt().clamp(min=self.min_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std in x's dtype."""
        return (x - self.mean.to(x.dtype)) / self.std().to(x.dtype)


class Heads(nn.Module):
    """Decoder + reward + continue (+ privileged when priv_dim > 0) heads on feat (..., F)."""

    def __init__(self, feat_dim: int, obs_dim: int, priv_dim: int, hidden: int, mlp_layers: int,
                 head_layers: int, reward_bins: int, priv_standardize: bool = False):
        """priv_standardize: the privileged head predicts per-feature standardised symlog targets (running
        statistics), so every privileged feature weighs the same in its loss."""
        super().__init__()
        self.feat_dim, self.obs_dim, self.priv_dim = feat_dim, obs_dim, priv_dim
        self.decoder = mlp(feat_dim, obs_dim, hidden, mlp_layers)
        self.reward_head = mlp(feat_dim, reward_bins, hidden, head_layers, zero_out=True)
        self.cont_head = mlp(feat_dim, 1, hidden, head_layers)
        self.priv_head = mlp(feat_dim, priv_dim, hidden, head_layers) if priv_dim > 0 else None
        self.priv_norm = RunningStandardizer(priv_dim) if priv_dim > 0 and priv_standardize else None
        self.register_buffer("bins", twohot_bins(reward_bins), persistent=False)
        # per-channel weight of the reconstruction loss (set_obs_weight; from the training config, not checkpointed)
        self.register_buffer("obs_weight", torch.ones(obs_dim), persistent=False)

    def set_obs_weight(self, weight) -> None:
        """Weigh each observation channel's reconstruction loss (obs_dim,) (1 = the plain symlog MSE)."""
        w = torch.as_tensor(weight, dtype=self.obs_weight.dtype, device=self.obs_weight.device)
        if w.shape != self.obs_weight.shape or bool((w < 0).any()):
            raise ValueError(f"obs weight must be {self.obs_dim} non-negative numbers, got {tuple(w.shape)}")
        self.obs_weight.copy_(w)

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
            "obs": ((self.decoder(feat) - symlog(obs)).square() * self.obs_weight.to(feat.dtype)).sum(-1),
            "reward": twohot_loss(self.reward_head(feat), reward, self.bins),
            "cont": F.binary_cross_entropy_with_logits(self.cont_head(feat).squeeze(-1), cont.to(feat.dtype),
                                                       reduction="none"),
        }
        priv = batch.get("privileged")
        if priv is not None and self.priv_head is not None:
            if priv.shape[-1] != self.priv_dim:
                raise ValueError(f"batch['privileged'] must have {self.priv_dim} features, got {tuple(priv.shape)}")
            target = symlog(priv)
            if self.priv_norm is not None:
                if self.training:
                    self.priv_norm.update(target, batch.get("priv_mask"))
                target = self.priv_norm(target)
            out["priv"] = (self.priv_head(feat) - target).square().sum(-1)
        return out
