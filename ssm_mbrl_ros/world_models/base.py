"""The world-model interface shared by S5WM and the RSSM baseline (DreamerV3-style explicit carry).

Batch (dict of tensors, batch axis 0, time axis 1):
    obs (B, T, D), action (B, T, A) normalised to [-1, 1], reward (B, T), cont (B, T) (0 at a
    terminal step), is_first (B, T) bool; optional privileged (B, T, P) with priv_mask (B, T) bool
    (all True when absent), optional reward_mask (B, T) bool (reward loss only where True), optional
    prev_action (B, A) = the action before obs[:, 0] (zeros when
    absent; only used when is_first[:, 0] is False).

Time convention:
    action[:, t] is the action taken AFTER observing obs[:, t]; reward[:, t] and cont[:, t] arrive
    WITH obs[:, t] (they are the result of action[:, t-1]). The sequence model therefore consumes
    (z_{t-1}, a_{t-1}) to produce h_t, from which the prior p(z_t | h_t) is predicted. Where
    is_first[:, t] is set, z_{t-1} and a_{t-1} are zeroed and the sequence state is reset.

Carry: a dict of real tensors (B, X) describing the model state after an observation (or an
imagined step): always "h" (deterministic feature) and "z" (flattened one-hot latent, G*K), plus
model-specific entries (S5: "ssm", the stacked S5 state). feat = [h, z]. The acting carry is
packed into one real tensor (B, export_state_size) for ONNX export (`pack_carry`/`unpack_carry`).
"""
from __future__ import annotations

import abc
import contextlib

import torch
from torch import nn

from ssm_mbrl_ros.core.config import to_dict

from .config import WorldModelConfig
from .distributions import symlog
from .heads import Heads, mlp
from .latents import kl_balance, make_latent


def check_batch(batch: dict, obs_dim: int, action_dim: int) -> tuple[int, int]:
    """Validate the batch dict's keys and shapes against the convention above; returns (B, T)."""
    for key in ("obs", "action", "reward", "cont", "is_first"):
        if key not in batch:
            raise ValueError(f"world-model batch is missing {key!r}; has {sorted(batch)}")
    obs = batch["obs"]
    if obs.dim() != 3 or obs.shape[-1] != obs_dim:
        raise ValueError(f"batch['obs'] must be (B, T, {obs_dim}), got {tuple(obs.shape)}")
    bsz, T = obs.shape[:2]
    want = {"action": (bsz, T, action_dim), "reward": (bsz, T), "cont": (bsz, T), "is_first": (bsz, T)}
    if "privileged" in batch:
        want["priv_mask"] = (bsz, T)
    if "prev_action" in batch:
        want["prev_action"] = (bsz, action_dim)
    for key, shape in want.items():
        if key in batch and tuple(batch[key].shape) != shape:
            raise ValueError(f"batch[{key!r}] must be {shape}, got {tuple(batch[key].shape)}")
    if "privileged" in batch and (batch["privileged"].dim() != 3 or batch["privileged"].shape[:2] != (bsz, T)):
        raise ValueError(f"batch['privileged'] must be ({bsz}, {T}, P), got {tuple(batch['privileged'].shape)}")
    return bsz, T


def scalar_metrics(logs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Scalar tensors -> floats with one device sync."""
    values = torch.stack([v.detach().float() for v in logs.values()]).tolist()
    return dict(zip(logs, values))


class WorldModel(nn.Module, abc.ABC):
    """Abstract world model: encoder, categorical latents, heads, losses and the carry API."""

    def __init__(self, cfg: WorldModelConfig, obs_dim: int, action_dim: int = 4, priv_dim: int = 0):
        super().__init__()
        cfg.validate()
        self.cfg, self.obs_dim, self.action_dim, self.priv_dim = cfg, obs_dim, action_dim, priv_dim
        self.latent = make_latent(cfg)
        self.groups, self.classes = self.latent.groups, self.latent.classes
        self.stoch = self.latent.width  # z width
        self.latent_raw = self.latent.raw_size  # width of the posterior and prior heads' output
        self.feat_dim = cfg.deter + self.stoch
        self.encoder = mlp(obs_dim, None, cfg.hidden, max(1, cfg.mlp_layers))
        self.embed_dim = cfg.hidden
        self.heads = Heads(self.feat_dim, obs_dim, priv_dim, cfg.hidden, cfg.mlp_layers, cfg.head_layers,
                           cfg.reward_bins, priv_standardize=cfg.priv_standardize)

    def arch(self) -> dict:
        """Everything needed to rebuild this model (stored in checkpoints so loaders never guess)."""
        return {"world_model": to_dict(self.cfg), "obs_dim": self.obs_dim, "action_dim": self.action_dim,
                "priv_dim": self.priv_dim}

    # --- carry ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def carry_sizes(self) -> dict[str, int]:
        """Ordered {name: width} of the carry entries (the packing order)."""

    @property
    def export_state_size(self) -> int:
        """Width S of the packed acting carry (B, S)."""
        return sum(self.carry_sizes().values())

    def initial(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Zero carry for a batch (the state before any observation)."""
        p = next(self.parameters())
        return {k: p.new_zeros(batch_size, n) for k, n in self.carry_sizes().items()}

    def pack_carry(self, carry: dict[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate the carry into one real tensor (B, export_state_size)."""
        return torch.cat([carry[k] for k in self.carry_sizes()], dim=-1)

    def unpack_carry(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inverse of pack_carry: (B, export_state_size) -> carry dict."""
        sizes = self.carry_sizes()
        assert flat.shape[-1] == sum(sizes.values()), f"packed carry width {flat.shape[-1]} != {sum(sizes.values())}"
        return dict(zip(sizes, flat.split(list(sizes.values()), dim=-1)))

    def feat(self, carry: dict[str, torch.Tensor]) -> torch.Tensor:
        """Model feature [h, z] (..., F) of a carry or of states."""
        return torch.cat([carry["h"], carry["z"]], dim=-1)

    def probs_feat(self, h: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Soft feature [h, latent probabilities (categorical) or mean (Gaussian)] (..., F) from latent stats
        (..., G, K): finer than a one-hot code."""
        return torch.cat([h, self.latent.soft(logits)], dim=-1)

    def prior_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Prior log-probabilities (..., G, K) predicted from the deterministic state h (..., deter)."""
        return self.latent_dist(self.prior_head(h))

    def start_from(self, states: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Flatten per-step (B, T, X) posterior states into a detached (B*T, X) imagination start carry."""
        return {k: states[k].detach().reshape(-1, states[k].shape[-1]) for k in self.carry_sizes()}

    # --- latents --------------------------------------------------------------------------------

    def latent_dist(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw head output (..., latent_raw) -> latent stats (..., G, K) (latents.py: log-probabilities of a
        categorical, or [mean, std] of a Gaussian)."""
        return self.latent.dist(raw)

    def latent_sample(self, logits: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """z (..., stoch) from latent stats: a straight-through one-hot sample (or mode), the probabilities with
        latent_feature 'probs', or a Gaussian sample (or mean)."""
        return self.latent.sample(logits, sample)

    def latent_kl(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """KL(p || q) (...,) between latent stats, summed over latent variables (the per-step surprise)."""
        return self.latent.kl(p, q)

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """Encoder on symlog observations: (..., D) -> (..., E)."""
        return self.encoder(symlog(obs))

    def prev_inputs(self, batch: dict, z: torch.Tensor, carry: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_{t-1}, a_{t-1}), each (B, T, X), shifted by one step and zeroed where is_first."""
        action = batch["action"]
        a0 = batch.get("prev_action", torch.zeros_like(action[:, 0]))
        z_prev = torch.cat([carry["z"].unsqueeze(1), z[:, :-1]], dim=1)  # (B, T, G*K)
        a_prev = torch.cat([a0.unsqueeze(1), action[:, :-1]], dim=1)  # (B, T, A)
        keep = (~batch["is_first"].bool()).to(z.dtype).unsqueeze(-1)
        return z_prev * keep, a_prev * keep

    # --- the API each model implements ---------------------------------------------------------

    @abc.abstractmethod
    def observe(self, batch: dict, carry: dict | None = None, sample: bool = True) -> tuple[dict, dict]:
        """Posterior states over a (B, T) batch -> (states, last carry).

        states holds feat (B, T, F), post/prior logits (B, T, G, K) and every carry entry per step
        (B, T, X) so that imagination can start from each (b, t).
        """

    @abc.abstractmethod
    def filter_step(self, carry: dict, obs: torch.Tensor, prev_action: torch.Tensor, is_first: torch.Tensor,
                    sample: bool = True) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One posterior step: obs (B, D), prev_action (B, A), is_first (B,) -> (carry, feat (B, F),
        posterior logits (B, G, K), prior logits (B, G, K)); the logits give the per-step surprise."""

    def act_step(self, carry: dict, obs: torch.Tensor, prev_action: torch.Tensor, is_first: torch.Tensor,
                 latent: str = "mode") -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One filter step for acting with the feature an actor of this `latent` reads ('mode', 'sample', 'probs',
        'prior') -> (carry, actor feature (B, F), posterior logits, prior logits). The carry holds the mode unless
        'sample'. 'prior' reads [h_t, the prior's mean or probabilities at h_t]: the feature every imagined step
        has, so the actor flies on what it learned on (h_t holds the observations up to t-1)."""
        carry, feat, post, prior = self.filter_step(carry, obs, prev_action, is_first, sample=latent == "sample")
        if latent == "probs":
            feat = self.probs_feat(carry["h"], post)
        elif latent == "prior":
            feat = self.probs_feat(carry["h"], prior)
        return carry, feat, post, prior

    def obs_step(self, carry: dict, obs: torch.Tensor, prev_action: torch.Tensor, is_first: torch.Tensor,
                 sample: bool = True) -> tuple[dict, torch.Tensor]:
        """One posterior step for acting: obs (B, D), prev_action (B, A), is_first (B,) -> (carry, feat (B, F))."""
        carry, feat, _, _ = self.filter_step(carry, obs, prev_action, is_first, sample)
        return carry, feat

    def rollout_context(self):
        """Context for a run of img_steps with unchanged parameters (S5WM discretizes its layers once)."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def img_step(self, carry: dict, action: torch.Tensor, sample: bool = True) -> tuple[dict, torch.Tensor]:
        """One prior step for imagination: action (B, A) taken in carry's state -> (carry, feat (B, F))."""

    # --- training -------------------------------------------------------------------------------

    def loss(self, batch: dict, carry: dict | None = None):
        """World-model loss on a batch -> (scalar loss, metrics {name: float}, states, last carry).

        The returned carry still holds the graph; detach it before feeding the next chunk.
        """
        loss, logs, states, carry = self.loss_terms(batch, carry)
        return loss, scalar_metrics(logs), states, carry

    def loss_terms(self, batch: dict, carry: dict | None = None):
        """loss() without the host sync: (scalar loss, metrics {name: scalar tensor}, states, last carry); the part
        of a world-model update that `torch.compile` captures (TrainConfig.compile)."""
        states, carry = self.observe(batch, carry, sample=True)
        parts = self.heads.losses(states["feat"], batch)
        kl, dyn, rep = kl_balance(self.latent, states["post_logits"], states["prior_logits"], self.cfg.dyn_scale,
                                       self.cfg.rep_scale, self.cfg.free_nats)
        c = self.cfg
        total = self._heads_total(parts, batch) + kl
        loss = total.mean()
        prior_obs_loss = None
        if c.prior_heads_scale > 0:  # the heads on what imagination feeds them: [h_t, a latent of the prior]
            prior_feat = torch.cat([states["h"], self.latent_sample(states["prior_logits"])], dim=-1)
            ahead = self.heads.losses(prior_feat, {k: v for k, v in batch.items() if k != "privileged"})
            loss = loss + c.prior_heads_scale * self._heads_total(ahead, batch).mean()
            prior_obs_loss = ahead["obs"].mean()
        overshoot = None
        if c.overshoot_steps > 0 and c.overshoot_scale > 0:
            overshoot = self.overshoot_loss(batch, states)
            if overshoot is not None:
                loss = loss + c.overshoot_scale * overshoot
        priv = parts.get("priv")
        if priv is not None:
            mask = batch.get("priv_mask")
            mask = torch.ones_like(priv) if mask is None else mask.to(priv.dtype)
            priv = (priv * mask).sum() / mask.sum().clamp(min=1.0)
            loss = loss + c.priv_scale * priv
        logs = {"loss": loss, "obs_loss": parts["obs"].mean(), "reward_loss": parts["reward"].mean(),
                "cont_loss": parts["cont"].mean(), "dyn_kl": dyn.mean(), "rep_kl": rep.mean(),
                "post_ent": self.latent.entropy(states["post_logits"]).mean(),
                "prior_ent": self.latent.entropy(states["prior_logits"]).mean()}
        if priv is not None:
            logs["priv_loss"] = priv
        if overshoot is not None:
            logs["overshoot_loss"] = overshoot
        if prior_obs_loss is not None:  # the decoder on the prior's latents: what imagination's decoded states miss
            logs["prior_obs_loss"] = prior_obs_loss
        return loss, logs, states, carry

    def _heads_total(self, parts: dict, batch: dict) -> torch.Tensor:
        """Weighted observation + reward + continue losses (B, T); the reward only where batch["reward_mask"] is set
        (bags without a task definition have no reward: learn dynamics only)."""
        c = self.cfg
        reward = parts["reward"]
        if "reward_mask" in batch:
            reward = reward * batch["reward_mask"].to(reward.dtype)
        return c.obs_scale * parts["obs"] + c.reward_scale * reward + c.cont_scale * parts["cont"]

    def overshoot_loss(self, batch: dict, states: dict) -> torch.Tensor | None:
        """Mean loss of K-step open-loop predictions (K = cfg.overshoot_steps): from overshoot_starts random posterior
        states (b, t), the prior rolls K steps with the recorded actions a_t .. a_{t+K-1}; the heads' observation,
        reward and continue losses on each imagined step t+k against the batch, over the steps still inside the
        episode. None when the batch is shorter than K + 1 steps."""
        c = self.cfg
        K, (bsz, T) = c.overshoot_steps, batch["reward"].shape
        if T <= K:
            return None
        n_t = T - K
        dev = batch["reward"].device
        idx = torch.randperm(bsz * n_t, device=dev)[:c.overshoot_starts]
        b, t = idx // n_t, idx % n_t
        carry = {k: states[k][b, t] for k in self.carry_sizes()}
        feats = []
        with self.rollout_context():
            for k in range(K):
                carry, feat = self.img_step(carry, batch["action"][b, t + k])
                feats.append(feat)
        bk, tk = b[:, None], t[:, None] + torch.arange(1, K + 1, device=dev)  # (N, K) indices of the targets
        target = {key: batch[key][bk, tk] for key in ("obs", "reward", "cont")}
        parts = self.heads.losses(torch.stack(feats, 1), target)
        dtype = parts["obs"].dtype
        first = batch["is_first"][bk, tk].to(dtype)
        cont = target["cont"].to(dtype)
        # step k counts while no episode started in between and none ended before it (a terminal target counts)
        alive = torch.cumprod(1.0 - first, 1) * torch.cat([torch.ones_like(cont[:, :1]),
                                                           torch.cumprod(cont[:, :-1], 1)], 1)
        mask = {"reward_mask": batch["reward_mask"][bk, tk]} if "reward_mask" in batch else {}
        total = self._heads_total(parts, mask)
        return (total * alive).sum() / alive.sum().clamp(min=1.0)

    def imagine(self, start: dict, policy, horizon: int, sample: bool = True) -> dict[str, torch.Tensor]:
        """Roll the prior `horizon` steps from start (N, X) with action = policy(feat); a policy that returns
        (action, entropy) also gets its entropies (N,) stacked into traj["entropy"] (N, H).

        Gradients flow as usual; wrap the call in torch.no_grad() for REINFORCE-style actor updates.

        Returns feat (N, H+1, F) (index 0 is the start), its contiguous parts feat_prev (states 0..H-1) and
        feat_next (states 1..H), each (N, H, F), action (N, H, A), reward and cont (N, H) predicted for the imagined
        steps 1..H. (Heads run on the contiguous parts: a Linear on a strided (N, H, F) slice falls back to a batched
        matmul with the weight broadcast N times, and a slice's backward zero-fills the whole tensor; both together
        were ~40 % of a CPU trainer update.)
        """
        carry, feat = start, self.feat(start)
        feats, actions, entropies = [feat], [], []
        with self.rollout_context():
            for _ in range(horizon):
                action = policy(feat)
                if isinstance(action, tuple):
                    action, entropy = action
                    entropies.append(entropy)
                carry, feat = self.img_step(carry, action, sample)
                feats.append(feat)
                actions.append(action)
        feat_next = torch.stack(feats[1:], 1)  # (N, H, F)
        traj = {"feat": torch.stack(feats, 1), "feat_prev": torch.stack(feats[:-1], 1), "feat_next": feat_next,
                "action": torch.stack(actions, 1),
                "reward": self.heads.reward(feat_next), "cont": self.heads.cont(feat_next)}
        if entropies:
            traj["entropy"] = torch.stack(entropies, 1)
        return traj
