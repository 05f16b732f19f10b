"""Actor (tanh-squashed Gaussian over [-1, 1]^A) and two-hot critic with a slow target copy.

The actor reads only the world-model feature feat (..., F); the critic may also read a privileged
vector priv (..., P) (asymmetric critic, simulation only). Actions are in the policy's normalised
[-1, 1] range; the action spec maps them to CTBR units.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..world_models.distributions import twohot_bins, twohot_mean
from ..world_models.heads import mlp

_LOG2 = math.log(2.0)
ACTOR_LATENTS = ("mode", "sample", "probs", "prior")


def _tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2) elementwise, computed stably as 2 (log 2 - u - softplus(-2u))."""
    return 2.0 * (_LOG2 - u - F.softplus(-2.0 * u))


class Actor(nn.Module):
    """Policy pi(a | feat): a = tanh(u), u ~ Normal(mu, std), std in [min_std, max_std] (DreamerV3 bounds)."""

    def __init__(self, feat_dim: int, action_dim: int = 4, hidden: int = 256, layers: int = 2,
                 min_std: float = 0.1, max_std: float = 1.0, eps: float = 1e-6,
                 init_action: torch.Tensor | None = None, init_std: float | None = None, latent: str = "mode"):
        """latent: which world-model latent feat carries ('mode', 'sample', 'probs' or 'prior'); the exporter and the
        collector build the same feature for acting."""
        super().__init__()
        if latent not in ACTOR_LATENTS:
            raise ValueError(f"Actor latent must be one of {ACTOR_LATENTS}, got {latent!r}")
        self.latent = latent
        if not 0.0 < min_std < max_std:
            raise ValueError(f"Actor needs 0 < min_std < max_std, got {min_std}, {max_std}")
        self.feat_dim, self.action_dim = feat_dim, action_dim
        self.min_std, self.max_std, self.eps = min_std, max_std, eps
        self.net = mlp(feat_dim, 2 * action_dim, hidden, layers)
        with torch.no_grad():  # small output layer: the initial policy is ~init_action with std ~init_std
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.zero_()
            if init_action is not None:  # e.g. hover thrust: exploration starts from flying, not falling
                a = torch.as_tensor(init_action, dtype=torch.float32).clamp(-0.99, 0.99)
                self.net[-1].bias[:action_dim] = torch.atanh(a)
            if init_std is not None:
                if not min_std < init_std < max_std:
                    raise ValueError(f"Actor init_std must be in ({min_std}, {max_std}), got {init_std}")
                frac = (init_std - min_std) / (max_std - min_std)
                self.net[-1].bias[action_dim:] = math.log(frac / (1.0 - frac)) - 2.0

    def dist_params(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-squash Normal parameters (mu, std), each (..., A)."""
        if feat.shape[-1] != self.feat_dim:
            raise ValueError(f"Actor expects feat (..., {self.feat_dim}), got {tuple(feat.shape)}")
        mu, raw_std = self.net(feat).chunk(2, dim=-1)  # (..., A) each
        std = (self.max_std - self.min_std) * torch.sigmoid(raw_std + 2.0) + self.min_std
        return mu, std

    def mean_action(self, feat: torch.Tensor) -> torch.Tensor:
        """Deterministic action tanh(mu) (..., A) in [-1, 1] (what the exported ONNX policy outputs)."""
        return torch.tanh(self.dist_params(feat)[0])

    def sample(self, feat: torch.Tensor, generator: torch.Generator | None = None):
        """Reparameterised sample: (action (..., A) in [-1, 1], logp (...), entropy (...)).

        entropy = H[Normal] + log|d tanh/du| at the sampled u, a one-sample, differentiable estimate of
        the squashed distribution's entropy (its expectation is the true entropy).
        """
        mu, std = self.dist_params(feat)
        noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        u = mu + std * noise  # (..., A)
        log_det = _tanh_log_det(u)  # (..., A)
        base_logp = -0.5 * noise.square() - std.log() - 0.5 * math.log(2 * math.pi)
        logp = (base_logp - log_det).sum(-1)
        base_entropy = 0.5 + 0.5 * math.log(2 * math.pi) + std.log()
        entropy = (base_entropy + log_det).sum(-1)
        return torch.tanh(u), logp, entropy

    def log_prob(self, feat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action | feat) (...) for actions (..., A) in [-1, 1] (clamped to +-(1 - eps) before atanh)."""
        mu, std = self.dist_params(feat)
        if action.shape != mu.shape:
            raise ValueError(f"action must have shape {tuple(mu.shape)}, got {tuple(action.shape)}")
        u = torch.atanh(action.clamp(-1.0 + self.eps, 1.0 - self.eps))
        base_logp = -0.5 * ((u - mu) / std).square() - std.log() - 0.5 * math.log(2 * math.pi)
        return (base_logp - _tanh_log_det(u)).sum(-1)


class Critic(nn.Module):
    """Value v(feat[, priv]) as a two-hot distribution over `bins` symlog-spaced bins, with a slow copy."""

    def __init__(self, feat_dim: int, priv_dim: int = 0, hidden: int = 256, layers: int = 2, bins: int = 255):
        super().__init__()
        if priv_dim < 0:
            raise ValueError(f"Critic priv_dim must be >= 0, got {priv_dim}")
        self.feat_dim, self.priv_dim, self.num_bins = feat_dim, priv_dim, bins
        self.net = mlp(feat_dim + priv_dim, bins, hidden, layers, zero_out=True)
        self.slow = copy.deepcopy(self.net)
        self.slow.requires_grad_(False)
        self.register_buffer("bins", twohot_bins(bins), persistent=False)

    def _input(self, feat: torch.Tensor, priv: torch.Tensor | None) -> torch.Tensor:
        """Concatenate [feat, priv] (..., F+P) after checking shapes."""
        if feat.shape[-1] != self.feat_dim:
            raise ValueError(f"Critic expects feat (..., {self.feat_dim}), got {tuple(feat.shape)}")
        if self.priv_dim == 0:
            if priv is not None:
                raise ValueError("Critic was built with priv_dim=0 but got a privileged input")
            return feat
        if priv is None or priv.shape != (*feat.shape[:-1], self.priv_dim):
            got = None if priv is None else tuple(priv.shape)
            raise ValueError(f"Critic expects priv {(*feat.shape[:-1], self.priv_dim)}, got {got}")
        return torch.cat([feat, priv.to(feat.dtype)], -1)

    def logits(self, feat: torch.Tensor, priv: torch.Tensor | None = None) -> torch.Tensor:
        """Value logits (..., K) of the trained critic."""
        return self.net(self._input(feat, priv))

    def slow_logits(self, feat: torch.Tensor, priv: torch.Tensor | None = None) -> torch.Tensor:
        """Value logits (..., K) of the slow target critic (no gradient)."""
        with torch.no_grad():
            return self.slow(self._input(feat, priv))

    def value(self, feat: torch.Tensor, priv: torch.Tensor | None = None) -> torch.Tensor:
        """Expected value (...) of the trained critic."""
        return twohot_mean(self.logits(feat, priv), self.bins)

    def slow_value(self, feat: torch.Tensor, priv: torch.Tensor | None = None) -> torch.Tensor:
        """Expected value (...) of the slow critic (no gradient)."""
        return twohot_mean(self.slow_logits(feat, priv), self.bins)

    @torch.no_grad()
    def update_slow(self, tau: float = 0.02) -> None:
        """slow <- (1 - tau) slow + tau net, parameter by parameter (and buffers copied)."""
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"update_slow tau must be in [0, 1], got {tau}")
        for ps, p in zip(self.slow.parameters(), self.net.parameters()):
            ps.lerp_(p, tau)
        for bs, b in zip(self.slow.buffers(), self.net.buffers()):
            bs.copy_(b)
