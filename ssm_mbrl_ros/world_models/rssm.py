"""RSSM baseline (DreamerV3): a LayerNorm GRU over [z_{t-1}, a_{t-1}], posterior q(z_t | h_t, o_t).

Same encoder, latents, heads, losses and carry API as S5WM; the difference is that the posterior
needs the deterministic state h_t, so `observe` has to step through time one step at a time.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import WorldModel, check_batch
from .config import WorldModelConfig
from .heads import mlp


class LayerNormGRUCell(nn.Module):
    """DreamerV3 GRU: one normed linear map gives reset, candidate and update; update biased by -1."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size + hidden_size, 3 * hidden_size, bias=False)
        self.norm = nn.LayerNorm(3 * hidden_size)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """x (B, I), h (B, H) -> new h (B, H)."""
        reset, cand, update = self.norm(self.linear(torch.cat([x, h], dim=-1))).chunk(3, dim=-1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)  # starts biased towards keeping h
        return update * cand + (1.0 - update) * h


class RSSMWorldModel(WorldModel):
    """DreamerV3 RSSM with the shared interface; observe is a Python loop over time."""

    def __init__(self, cfg: WorldModelConfig, obs_dim: int, action_dim: int = 4, priv_dim: int = 0):
        super().__init__(cfg, obs_dim, action_dim, priv_dim)
        self.img_in = mlp(self.stoch + action_dim, None, cfg.hidden, 1)
        self.gru = LayerNormGRUCell(cfg.hidden, cfg.deter)
        self.post_head = mlp(cfg.deter + self.embed_dim, self.latent_raw, cfg.hidden, cfg.head_layers)
        self.prior_head = mlp(cfg.deter, self.latent_raw, cfg.hidden, cfg.head_layers)

    def carry_sizes(self) -> dict[str, int]:
        """GRU state h and latent z."""
        return {"h": self.cfg.deter, "z": self.stoch}

    def _core(self, h: torch.Tensor, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])."""
        return self.gru(self.img_in(torch.cat([z, action], dim=-1)), h)

    def _post(self, h: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        """Posterior logits (B, G, K) from h_t and the observation embedding."""
        return self.latent_dist(self.post_head(torch.cat([h, embed], dim=-1)))

    def observe(self, batch: dict, carry: dict | None = None, sample: bool = True) -> tuple[dict, dict]:
        """Step the GRU and posterior through T; the prior is evaluated on all h_t at once."""
        bsz, T = check_batch(batch, self.obs_dim, self.action_dim)
        carry = self.initial(bsz) if carry is None else carry
        embed = self.embed(batch["obs"])  # (B, T, E)
        keep = (~batch["is_first"].bool()).to(embed.dtype).unsqueeze(-1)  # (B, T, 1)
        action = batch["action"]
        a_prev = batch.get("prev_action", torch.zeros_like(action[:, 0]))
        h, z = carry["h"], carry["z"]
        hs, zs, posts = [], [], []
        for t in range(T):
            k = keep[:, t]
            h = self._core(h * k, z * k, a_prev * k)
            post = self._post(h, embed[:, t])
            z = self.latent_sample(post, sample)
            a_prev = action[:, t]
            hs.append(h)
            zs.append(z)
            posts.append(post)
        h_all, z_all = torch.stack(hs, 1), torch.stack(zs, 1)  # (B, T, deter), (B, T, G*K)
        prior = self.latent_dist(self.prior_head(h_all))
        states = {"feat": torch.cat([h_all, z_all], dim=-1), "post_logits": torch.stack(posts, 1),
                  "prior_logits": prior, "h": h_all, "z": z_all}
        return states, {"h": h, "z": z}

    def filter_step(self, carry: dict, obs: torch.Tensor, prev_action: torch.Tensor, is_first: torch.Tensor,
                    sample: bool = True) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One acting step -> (carry, feat (B, F), posterior logits (B, G, K), prior logits (B, G, K))."""
        assert obs.dim() == 2 and obs.shape[-1] == self.obs_dim, f"obs must be (B, {self.obs_dim}), got {tuple(obs.shape)}"
        k = (1.0 - is_first.to(obs.dtype)).unsqueeze(-1)
        h = self._core(carry["h"] * k, carry["z"] * k, prev_action * k)
        prior = self.latent_dist(self.prior_head(h))
        post = self._post(h, self.embed(obs))
        z = self.latent_sample(post, sample)
        carry = {"h": h, "z": z}
        return carry, self.feat(carry), post, prior

    def img_step(self, carry: dict, action: torch.Tensor, sample: bool = True) -> tuple[dict, torch.Tensor]:
        """One imagined step from the prior (see WorldModel.img_step)."""
        h = self._core(carry["h"], carry["z"], action)
        z = self.latent_sample(self.latent_dist(self.prior_head(h)), sample)
        carry = {"h": h, "z": z}
        return carry, self.feat(carry)
