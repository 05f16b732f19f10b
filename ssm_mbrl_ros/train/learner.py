"""The learner: world model, actor and critic with their optimisers and one training update.

update(batch) = world-model step on a replayed (B, T) batch, then actor-critic in imagination
from a random subset of the batch's posterior states (horizon H, lambda-returns, percentile
return normalisation, slow critic). Actor gradients come from backpropagating the normalised
returns through the learned dynamics (`actor_grad=dynamics`, the default for continuous CTBR
actions: one update carries far more signal than a score-function estimate) or from REINFORCE
(`actor_grad=reinforce`, DreamerV3's choice). Gradients can be averaged across torch.distributed
ranks (`sync`) before every optimiser step, which is what DDP does, without wrapping each
world-model method call in a DDP forward.
"""
from __future__ import annotations

import contextlib
import time

import torch
from torch import nn

from ..agent.actor_critic import Actor, Critic
from ..agent.losses import ReturnNormalizer, actor_loss, critic_loss, imagination_weights, lambda_returns
from ..core.config import field_defaults
from ..world_models.base import scalar_metrics
from ..world_models.factory import make_world_model
from ..world_models.heads import RunningStandardizer
from .config import COMPILE_MODES, TrainConfig, world_model_config
from .imagined_reward import decoded_observation


def compiled(fn, mode: str):
    """fn under torch.compile with static shapes in `mode` (reduce-overhead adds CUDA graphs on a GPU); 'off': fn."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {COMPILE_MODES}, got {mode!r}")
    return fn if mode == "off" else torch.compile(fn, mode=mode, dynamic=False)


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """Temporarily stop parameter gradients of modules (gradients still flow through them)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def average_gradients(params: list[torch.Tensor]) -> None:
    """All-reduce and average .grad of params across torch.distributed ranks (one flat buffer)."""
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p)
        offset += n


def _all_reduce_sum(x: torch.Tensor) -> None:
    """Sum x in place across torch.distributed ranks."""
    import torch.distributed as dist

    dist.all_reduce(x)


class Learner(nn.Module):
    """World model + actor + critic + return normaliser, and their Adam optimisers."""

    def __init__(self, cfg: TrainConfig, obs_dim: int, priv_dim: int, device="cpu", sync: bool = False,
                 hover_action: list[float] | None = None, reward_fn=None):
        """hover_action: the normalised action that hovers (the actor starts there if cfg.actor_init_hover);
        reward_fn: the task's reward on imagined observations (train/imagined_reward.py; None = the reward head)."""
        super().__init__()
        self.cfg, self.sync, self.actor_grad, self.reward_fn = cfg, sync, cfg.actor_grad, reward_fn
        wm_cfg = world_model_config(cfg)
        self.priv_dim = priv_dim if cfg.privileged else 0
        self.wm = make_world_model(wm_cfg, obs_dim, 4, self.priv_dim)
        hidden = cfg.ac_hidden or wm_cfg.hidden
        init = hover_action if cfg.actor_init_hover else None
        self.actor = Actor(self.wm.feat_dim, 4, hidden, cfg.ac_layers, init_action=init, init_std=cfg.actor_init_std,
                           latent=cfg.actor_latent)
        self.critic_priv = self.priv_dim if cfg.critic_privileged else 0
        self.critic = Critic(self.wm.feat_dim, self.critic_priv, hidden, cfg.ac_layers, bins=wm_cfg.reward_bins)
        self.retnorm = ReturnNormalizer()
        if sync:
            for m in self.wm.modules():
                if isinstance(m, RunningStandardizer):
                    m.reduce = _all_reduce_sum
        self.to(device)
        self.device = torch.device(device)
        adam = dict(eps=1e-5)
        self.opt_wm = torch.optim.Adam(self.wm.parameters(), lr=cfg.wm_lr, **adam)
        self.opt_actor = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, **adam)
        self.opt_critic = torch.optim.Adam(self.critic.net.parameters(), lr=cfg.critic_lr, **adam)
        # the two parts of an update that run as fixed-shape tensor programs, compiled when cfg.compile says so
        # (None: call the world model's methods themselves)
        compile_on = cfg.compile != "off"
        self._compiled_loss = compiled(self.wm.loss_terms, cfg.compile) if compile_on else None
        self._compiled_imagine = compiled(self.wm.imagine, cfg.compile) if compile_on else None
        self.updates = 0
        self.part_ms: dict[str, float] | None = None  # set to {} to time the parts of each update (benchmarks)

    @contextlib.contextmanager
    def _part(self, name: str):
        """Time a part of the update into part_ms[name] (ms, device-synchronised) when part_ms is a dict."""
        if self.part_ms is None:
            yield
            return
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        yield
        sync()
        self.part_ms[name] = self.part_ms.get(name, 0.0) + (time.perf_counter() - t0) * 1e3

    def weigh_observation(self, obs_layout) -> None:
        """Apply cfg.obs_field_weights (by field name of obs_layout) to the reconstruction loss; ConfigError names
        a bad field."""
        from ..core.config import ConfigError

        try:
            self.wm.heads.set_obs_weight(obs_layout.channel_weights(self.cfg.obs_field_weights))
        except ValueError as exc:
            raise ConfigError(f"obs_field_weights: {exc}") from exc

    def arch(self) -> dict:
        """Everything needed to rebuild the networks (stored in checkpoints and compared on resume)."""
        return {**self.wm.arch(), "actor": {"feat_dim": self.actor.feat_dim, "hidden": self.cfg.ac_hidden,
                                            "layers": self.cfg.ac_layers, "latent": self.actor.latent},
                "critic_priv_dim": self.critic_priv}

    @staticmethod
    def arch_defaults() -> dict:
        """The values arch() entries added over time take by default (a checkpoint without them resumes)."""
        return {"actor": {"latent": field_defaults(TrainConfig)["actor_latent"]}, "critic_priv_dim": 0}

    def _step(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params: list) -> float:
        """Backward, (distributed average), clip, step; returns the pre-clip gradient norm."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.sync:
            average_gradients(params)
        norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        with self._part("optimizer_steps"):  # Adam itself; also counted inside the part that called _step
            opt.step()
        return float(norm)

    def _critic_priv(self, feat: torch.Tensor) -> torch.Tensor | None:
        """The privileged input of an asymmetric critic: the world model's privileged prediction."""
        if not self.critic_priv:
            return None
        with torch.no_grad():
            return self.wm.heads.priv_head(feat)

    def batch_to_torch(self, batch: dict) -> dict:
        """Numpy replay batch -> tensors on the learner's device (privileged dropped when unused; a given priv_mask
        is kept)."""
        out = {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()}
        if self.cfg.expert == "none":
            out.pop("expert", None)
            out.pop("expert_action", None)
        if self.priv_dim:  # a batch from bags says which rows have privileged state (priv_mask); else all do
            if "priv_mask" not in out:
                out["priv_mask"] = torch.ones_like(out["reward"], dtype=torch.bool)
        else:
            out.pop("privileged", None)
            out.pop("priv_mask", None)
        return out

    def update(self, batch_np: dict, train_actor: bool = True) -> dict[str, float]:
        """One world-model + actor-critic update on a (B, T) replay batch; returns scalar metrics.

        train_actor=False trains the world model only (the trainer holds the actor back until imagination answers
        actions the way the simulator does: train/action_response.py)."""
        if self.part_ms is not None:
            self.part_ms.clear()
        with self._part("world_model"):
            metrics, states, batch = self._world_model_step(batch_np)
        return self._behaviour_step(metrics, states, batch, train_actor)

    def _world_model_step(self, batch_np: dict):
        """The world model's loss (plus the representation-shaping imitation term) and optimiser step."""
        cfg = self.cfg
        batch = self.batch_to_torch(batch_np)
        wm_loss, logs, states, _ = (self._compiled_loss or self.wm.loss_terms)(batch)
        metrics = scalar_metrics(logs)
        if cfg.bc_repr_scale > 0:  # through the straight-through sample, or straight into the probabilities
            repr_states = self.probs_states(states) if cfg.actor_latent == "probs" else states
            with frozen(self.actor):
                bc_repr = self._bc_loss(repr_states, batch, detach=False)
            if bc_repr is not None:
                wm_loss = wm_loss + cfg.bc_repr_scale * bc_repr
        metrics["wm_grad_norm"] = self._step(self.opt_wm, wm_loss, list(self.wm.parameters()))
        return metrics, states, batch

    def _behaviour_step(self, metrics: dict, states: dict, batch: dict, train_actor: bool) -> dict[str, float]:
        """Imitation, imagination, actor and critic steps after the world-model step."""
        cfg = self.cfg
        self.updates += 1
        replay_feat = states["feat"].detach()  # what the critic reads of replayed states ([h, z] as in imagination)
        states = self.actor_states(states)
        bc = self._bc_loss(states, batch)
        if bc is not None:
            metrics["bc_loss"] = float(bc.detach())
        if self.updates <= cfg.actor_warmup_updates or not train_actor:
            if bc is not None:  # imitation needs no model: it may start before imagination does
                metrics["actor_grad_norm"] = self._step(self.opt_actor, cfg.bc_scale * bc, list(self.actor.parameters()))
            if self.updates <= cfg.actor_warmup_updates:
                return metrics
            # held back by the action-response gate: the critic already learns the current actor's values, so the
            # actor starts against a trained critic rather than a zero one

        start = self.wm.start_from(states)
        n = start["h"].shape[0]
        pick = torch.randperm(n, device=self.device)[:min(cfg.imag_starts, n)]
        start = {k: v[pick] for k, v in start.items()}
        cont0 = batch["cont"].reshape(-1)[pick].to(start["h"].dtype)

        model_grad = self.actor_grad == "dynamics" and train_actor
        grad_ctx = contextlib.nullcontext() if model_grad else torch.no_grad()
        with self._part("imagine"), frozen(self.wm, self.critic), grad_ctx:
            imagine = self._compiled_imagine or self.wm.imagine
            traj = imagine(start, self._imagine_policy, cfg.horizon, sample=cfg.imagine_sample)
            if self.reward_fn is not None:  # the task's own reward on the imagined observations
                first_prev = self.reward_fn.previous_action(batch["obs"].reshape(-1, batch["obs"].shape[-1])[pick])
                prev = torch.cat([first_prev[:, None].to(traj["action"].dtype), traj["action"][:, :-1]], 1)
                traj["reward"] = self.reward_fn(decoded_observation(self.wm, traj["feat_next"]), prev,
                                                traj["action"], traj["cont"])
            feat = traj["feat"]  # (N, H+1, F)
            value = self.critic.value(feat, self._critic_priv(feat))  # (N, H+1)
            returns = lambda_returns(traj["reward"], value, traj["cont"], cfg.discount, cfg.lam)  # (N, H)
        weight = imagination_weights(torch.cat([cont0[:, None], traj["cont"].detach()], 1), cfg.discount)
        weight = weight[:, :cfg.horizon]
        self.retnorm.update(returns)
        if self.sync:
            self._sync_buffers(self.retnorm)
        scale = self.retnorm.scale()
        act_feat = self._actor_input(traj["feat_prev"])
        if train_actor:
            with self._part("actor"):
                a_loss, ent = self._actor_step(traj, value, returns, weight, scale, act_feat, states, batch, bc,
                                               metrics)
        else:
            a_loss = ent = torch.zeros((), device=self.device)

        feat_sg, returns_sg = traj["feat_prev"].detach(), returns.detach()
        with self._part("critic"):
            priv = self._critic_priv(feat_sg)
            c_loss = critic_loss(self.critic.logits(feat_sg, priv), returns_sg,
                                 self.critic.slow_logits(feat_sg, priv), self.critic.bins, weight)
            if cfg.critic_replay_scale > 0:
                c_loss = c_loss + cfg.critic_replay_scale * self._replay_critic_loss(replay_feat, batch)
            metrics["critic_grad_norm"] = self._step(self.opt_critic, c_loss, list(self.critic.net.parameters()))
            self.critic.update_slow(cfg.slow_critic_tau)
        extra = torch.stack([c_loss.detach(), returns_sg.mean(), value.detach().mean(), traj["reward"].detach().mean(),
                             scale, a_loss.detach(), ent.detach().mean()]).float().tolist()
        names = ("critic_loss", "imag_return", "imag_value", "imag_reward", "return_scale", "actor_loss", "actor_entropy")
        metrics.update(zip(names if train_actor else names[:5], extra))
        return metrics

    def _imagine_policy(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor's sample and entropy at an imagined state (the entropy is kept for the actor's loss, so no second
        actor pass is needed)."""
        action, _, entropy = self.actor.sample(self._actor_input(feat))
        return action, entropy

    def _replay_critic_loss(self, feat: torch.Tensor, batch: dict) -> torch.Tensor:
        """Critic loss on replayed sequences (DreamerV3's replay value loss): lambda-returns of the real rewards along
        each (B, T) window, bootstrapped with the critic, for every step whose successor is in the same episode.
        Real windows are 4x longer than imagination's horizon, so values propagate faster."""
        cfg = self.cfg
        nxt_first = batch["is_first"][:, 1:].to(feat.dtype)  # the successor starts a new episode: no target
        with torch.no_grad():
            priv = self._critic_priv(feat)
            value = self.critic.value(feat, priv)  # (B, T)
            cont = batch["cont"][:, 1:].to(feat.dtype) * (1.0 - nxt_first)
            returns = lambda_returns(batch["reward"][:, 1:].to(feat.dtype), value, cont, cfg.discount, cfg.lam)
        head = feat[:, :-1]
        head_priv = None if priv is None else priv[:, :-1]
        return critic_loss(self.critic.logits(head, head_priv), returns, self.critic.slow_logits(head, head_priv),
                           self.critic.bins, 1.0 - nxt_first)

    def _actor_step(self, traj, value, returns, weight, scale, act_feat, states, batch, bc, metrics):
        """The actor's loss and optimiser step on an imagined trajectory; returns (loss, entropy) for the logs."""
        cfg = self.cfg
        if self.actor_grad == "dynamics":
            ent = traj["entropy"]  # from the rollout: its gradient also reaches earlier actions through the model
            a_loss = -(weight * (returns / scale + cfg.entropy_coef * ent)).mean()
        else:
            adv = (returns - value[:, :-1]) / scale
            logp = self.actor.log_prob(act_feat, traj["action"])
            _, _, ent = self.actor.sample(act_feat)
            a_loss = actor_loss(logp, ent, adv, weight, cfg.entropy_coef)
        if cfg.actor_anchor > 0:  # stay near what was flown: the model is only right where the data is
            flown = self.actor.mean_action(states["feat"].detach())
            anchor = (flown - batch["action"]).square().sum(-1).mean()
            a_loss = a_loss + cfg.actor_anchor * anchor
            metrics["actor_anchor"] = float(anchor.detach())
        if cfg.actor_mean_limit > 0:  # keep the pre-tanh mean off saturation, where tanh passes no gradient back
            mu = self.actor.dist_params(act_feat.detach())[0]
            runaway = (mu.abs() - cfg.actor_mean_limit).clamp(min=0.0).square().sum(-1).mean()
            a_loss = a_loss + runaway
            metrics["actor_runaway"] = float(runaway.detach())
        if bc is not None:
            a_loss = a_loss + cfg.bc_scale * bc
        metrics["actor_grad_norm"] = self._step(self.opt_actor, a_loss, list(self.actor.parameters()))
        return a_loss, ent

    def actor_states(self, states: dict) -> dict:
        """Posterior states with the feature the actor reads (cfg.actor_latent: mode, sample, probs or prior)."""
        if self.cfg.actor_latent == "mode":
            return self.mode_states(states)
        if self.cfg.actor_latent == "probs":
            return self.probs_states(states)
        if self.cfg.actor_latent == "prior":  # the carry holds the posterior mode, as the exported policy's does
            return {**self.mode_states(states), "feat": self.wm.probs_feat(states["h"], states["prior_logits"])}
        return states

    def mode_states(self, states: dict) -> dict:
        """Posterior states with z replaced by the posterior mode (the latent the exported policy acts on)."""
        with torch.no_grad():  # only read detached (behaviour cloning, imagination starts)
            z = self.wm.latent_sample(states["post_logits"], sample=False)
        return {**states, "z": z, "feat": self.wm.feat({"h": states["h"], "z": z})}

    def probs_states(self, states: dict) -> dict:
        """Posterior states whose feat is [h, posterior probabilities] (gradients kept: bc_repr shapes them)."""
        return {**states, "feat": self.wm.probs_feat(states["h"], states["post_logits"])}

    def _actor_input(self, feat: torch.Tensor) -> torch.Tensor:
        """The actor's feature for an imagined [h, z] feat: [h, prior probabilities (or mean) of h] when it reads
        probabilities (an imagined step has no posterior; at the start state the prior stands in for it) or the
        prior."""
        if self.cfg.actor_latent not in ("probs", "prior"):
            return feat
        h = feat[..., :self.wm.cfg.deter]
        return self.wm.probs_feat(h, self.wm.prior_logits(h))

    def _bc_loss(self, states: dict, batch: dict, detach: bool = True) -> torch.Tensor | None:
        """Behaviour cloning toward the expert's label on labelled rows (DAgger-style when the learner flew them):
        squared error of the actor's mean action (None when inactive); detach=False lets it reach the world model."""
        if self.cfg.expert == "none" or self.updates > self.cfg.bc_updates or "expert" not in batch:
            return None
        mask = batch["expert"].to(states["feat"].dtype)  # (B, T)
        if self.sync:  # every rank must take the same branch: decide on the global expert count
            import torch.distributed as dist

            count = mask.sum().detach().clone()
            dist.all_reduce(count)
        else:
            count = mask.sum()
        if float(count) == 0.0:
            return None
        feat = states["feat"].detach() if detach else states["feat"]
        err = (self.actor.mean_action(feat) - batch["expert_action"]).square().sum(-1)  # (B, T)
        return (err * mask).sum() / mask.sum().clamp(min=1.0)

    @staticmethod
    def _sync_buffers(module: nn.Module) -> None:
        """Average a module's buffers across ranks (keeps the return normaliser identical everywhere)."""
        import torch.distributed as dist

        for b in module.buffers():
            dist.all_reduce(b)
            b /= dist.get_world_size()

    def optim_state(self) -> dict:
        """Optimiser states for checkpoints."""
        return {"wm": self.opt_wm.state_dict(), "actor": self.opt_actor.state_dict(),
                "critic": self.opt_critic.state_dict(), "updates": self.updates}

    def load_optim_state(self, state: dict) -> None:
        """Restore optimiser states from optim_state()."""
        self.opt_wm.load_state_dict(state["wm"])
        self.opt_actor.load_state_dict(state["actor"])
        self.opt_critic.load_state_dict(state["critic"])
        self.updates = int(state["updates"])
