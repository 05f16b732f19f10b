"""S5WM: a world model whose sequence model is a stack of S5 layers, trained with one parallel scan.

The posterior depends on the current observation only, q(z_t | o_t), so every posterior latent
of a (B, T) batch is computed at once; the S5 stack then runs over the inputs [z_{t-1}, a_{t-1}]
in one parallel scan (episode resets at is_first) to give h_t, the prior p(z_t | h_t) and the
feature [h_t, z_t]. Acting and imagination use the real-only one-step recurrence (S5Stack.step).
"""
from __future__ import annotations

import torch

from .base import WorldModel, check_batch
from .config import WorldModelConfig
from .heads import mlp
from .s5 import S5Stack, hold_discretization


def scan_with_states(stack: S5Stack, u: torch.Tensor, state: torch.Tensor,
                     reset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """S5Stack.forward keeping every step's state: u (B, T, H) -> (y (B, T, H), states (B, T, L*P))."""
    return stack(u, state, reset, return_states=True)


class S5WorldModel(WorldModel):
    """S5 world model: posterior from o_t only, S5 stack over [z_{t-1}, a_{t-1}], prior from h_t."""

    def __init__(self, cfg: WorldModelConfig, obs_dim: int, action_dim: int = 4, priv_dim: int = 0):
        super().__init__(cfg, obs_dim, action_dim, priv_dim)
        self.post_head = mlp(self.embed_dim, self.latent_raw, cfg.hidden, cfg.head_layers)
        self.in_proj = mlp(self.stoch + action_dim, None, cfg.deter, 1)
        self.seq = S5Stack(cfg.s5_layers, cfg.deter, cfg.s5_state, blocks=cfg.s5_blocks)
        self.prior_head = mlp(cfg.deter, self.latent_raw, cfg.hidden, cfg.head_layers)

    def carry_sizes(self) -> dict[str, int]:
        """S5 state of all layers, deterministic output h, latent z."""
        return {"ssm": self.seq.state_size, "h": self.cfg.deter, "z": self.stoch}

    def observe(self, batch: dict, carry: dict | None = None, sample: bool = True) -> tuple[dict, dict]:
        """All posteriors at once, then one parallel scan over T (see WorldModel.observe)."""
        bsz, T = check_batch(batch, self.obs_dim, self.action_dim)
        carry = self.initial(bsz) if carry is None else carry
        post = self.latent_dist(self.post_head(self.embed(batch["obs"])))  # (B, T, G, K)
        z = self.latent_sample(post, sample)  # (B, T, G*K)
        z_prev, a_prev = self.prev_inputs(batch, z, carry)
        x = self.in_proj(torch.cat([z_prev, a_prev], dim=-1))  # (B, T, deter)
        h, ssm = scan_with_states(self.seq, x, carry["ssm"], batch["is_first"])
        prior = self.latent_dist(self.prior_head(h))
        states = {"feat": torch.cat([h, z], dim=-1), "post_logits": post, "prior_logits": prior,
                  "ssm": ssm, "h": h, "z": z}
        return states, {k: states[k][:, -1] for k in self.carry_sizes()}

    def filter_step(self, carry: dict, obs: torch.Tensor, prev_action: torch.Tensor, is_first: torch.Tensor,
                    sample: bool = True) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One acting step -> (carry, feat (B, F), posterior logits (B, G, K), prior logits (B, G, K))."""
        assert obs.dim() == 2 and obs.shape[-1] == self.obs_dim, f"obs must be (B, {self.obs_dim}), got {tuple(obs.shape)}"
        keep = (1.0 - is_first.to(obs.dtype)).unsqueeze(-1)
        x = self.in_proj(torch.cat([carry["z"] * keep, prev_action * keep], dim=-1))
        h, ssm = self.seq.step(x, carry["ssm"], is_first)
        prior = self.latent_dist(self.prior_head(h))
        post = self.latent_dist(self.post_head(self.embed(obs)))
        z = self.latent_sample(post, sample)
        carry = {"ssm": ssm, "h": h, "z": z}
        return carry, self.feat(carry), post, prior

    def rollout_context(self):
        """Discretize every S5 layer once for the whole rollout (s5.hold_discretization)."""
        return hold_discretization(self.seq)

    def img_step(self, carry: dict, action: torch.Tensor, sample: bool = True) -> tuple[dict, torch.Tensor]:
        """One imagined step from the prior (see WorldModel.img_step)."""
        x = self.in_proj(torch.cat([carry["z"], action], dim=-1))
        h, ssm = self.seq.step(x, carry["ssm"])
        z = self.latent_sample(self.latent_dist(self.prior_head(h)), sample)
        carry = {"ssm": ssm, "h": h, "z": z}
        return carry, self.feat(carry)
