"""Experience collection: the vector env acting with the world-model filter + actor, into the buffer.

Collection acts in torch with the same filter the exported graph runs (posterior sampled, actor
sampled for exploration); evaluation flies the exported ONNX graph instead (train/evaluate.py).
"""
from __future__ import annotations

import numpy as np
import torch

from .sequence_buffer import SequenceBuffer


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).numpy()


class Collector:
    """Steps a QuadVecEnv, writes rows to a SequenceBuffer and keeps finished-episode statistics."""

    def __init__(self, env, buffer: SequenceBuffer, seed: int = 0, recorder=None, noise_corr_s: float = 0.0):
        """recorder: an optional replay.recorder.EnvRecorder that also writes every episode to an MCAP store.
        noise_corr_s: correlation time (s) of the actor's exploration noise; 0 = independent per step (DreamerV3).
        With a correlation time the pre-tanh noise is an AR(1) process with the actor's std as its stationary std:
        the same action distribution per step, but perturbations held long enough to turn the drone, so replay
        shows what sustained commands do (white noise at 25 Hz averages out within a few steps)."""
        self.env, self.buffer, self.recorder = env, buffer, recorder
        n = env.num_envs
        self.obs, info = env.reset(seed=seed)
        if recorder is not None:
            recorder.begin(info)
        self.priv = info["privileged"]
        self.reward = torch.zeros(n, device=env.device)
        self.is_first = torch.ones(n, dtype=torch.bool, device=env.device)
        self.prev_action = torch.zeros(n, 4, device=env.device)
        self.carry = None
        self.all_ids = np.arange(n)
        self.generator = torch.Generator(device=env.device).manual_seed(seed + 1)
        self.env_steps = 0
        self.episodes: list[dict] = []  # finished episodes since the last drain()
        dt = float(getattr(env, "dt_s", 0.0)) or 1.0
        self.noise_rho = float(np.exp(-dt / noise_corr_s)) if noise_corr_s > 0 else 0.0
        self.noise = None  # (N, A) standard-normal AR(1) state of the exploration noise

    @torch.no_grad()
    def step(self, wm=None, actor=None, expert=None, expert_flies=False, expert_noise: float = 0.0) -> None:
        """One vector-env step.

        Acts with the learned policy (wm + actor), or with uniform random actions when both are None. With an
        expert agent (act -> physical CTBR), every row also stores the expert's action for the visited state
        as a label (DAgger-style: labels on the learner's own state distribution); expert_flies (bool, or a
        (N,) bool mask of envs) executes the expert's action (plus normalised noise) instead of the policy's.
        """
        env, n = self.env, self.env.num_envs
        if wm is not None:  # keep the filter's belief current even while an expert flies
            if self.carry is None:
                self.carry = wm.initial(n)
            obs = self.obs.to(next(wm.parameters()).device, torch.float32)
            self.carry, feat, _, _ = wm.act_step(self.carry, obs, self.prev_action.to(obs.device),
                                                 self.is_first.to(obs.device), actor.latent)
        label = None
        if expert is not None:
            label = env.action_spec.to_normalized(expert.act(self.obs, env)).to(self.obs.dtype)
        if wm is None:
            action = torch.rand(n, 4, device=env.device, generator=self.generator) * 2.0 - 1.0
        else:
            action = self._explore(actor, feat).to(env.device, self.obs.dtype)
        flies = torch.as_tensor(expert_flies, device=env.device).expand(n) if label is not None else None
        if flies is not None and bool(flies.any()):  # the expert flies these envs (all when expert_flies is True)
            noise = expert_noise * torch.randn(label.shape, generator=self.generator, device=env.device)
            action = torch.where(flies[:, None], (label + noise).clamp(-1.0, 1.0), action)
        self.buffer.add(self.all_ids, obs=_np(self.obs), action=_np(action), reward=_np(self.reward),
                        cont=np.ones(n, np.float32), is_first=self.is_first.cpu().numpy(), privileged=_np(self.priv),
                        expert=np.full(n, label is not None),
                        expert_action=_np(label) if label is not None else np.zeros((n, 4), np.float32))
        obs, reward, terminated, truncated, info = env.step(action)
        if self.recorder is not None:  # the physical command the env applied (it clamps to [-1, 1] first), and the
            # expert's label as physical CTBR (stored on /expert_ctbr: behaviour cloning works from the store too)
            self.recorder.step(env.action_spec.to_physical(action), terminated, truncated, info,
                               expert_ctbr=None if label is None else env.action_spec.to_physical(label))
        done = terminated | truncated
        self.env_steps += n
        if bool(done.any()):
            ids = done.nonzero().squeeze(-1)
            ids_np = ids.cpu().numpy()
            self.buffer.add(ids_np, obs=_np(info["final_obs"][ids]), action=np.zeros((len(ids_np), 4), np.float32),
                            reward=_np(reward[ids]), cont=_np((~terminated[ids]).float()),
                            is_first=np.zeros(len(ids_np), bool), privileged=_np(info["final_privileged"][ids]))
            if expert is not None:
                expert.reset(ids)
            for key_vals in zip(*(info[k][ids].tolist() for k in ("episode_return", "episode_length", "success",
                                                                   "pos_rmse_m", "crash"))):
                self.episodes.append(dict(zip(("return", "length", "success", "pos_rmse_m", "crash"), key_vals)))
        self.reward = torch.where(done, torch.zeros_like(reward), reward)
        self.is_first = done
        self.prev_action = action
        self.obs, self.priv = obs, info["privileged"]

    def _explore(self, actor, feat: torch.Tensor) -> torch.Tensor:
        """The actor's exploration sample: tanh(mu + std * noise), noise white or AR(1) in time (noise_corr_s)."""
        if self.noise_rho == 0.0:
            return actor.sample(feat)[0]
        mu, std = actor.dist_params(feat)
        fresh = torch.randn(mu.shape, generator=self.generator, device=mu.device, dtype=mu.dtype) \
            if mu.device == self.generator.device else torch.randn_like(mu)
        if self.noise is None:
            self.noise = fresh
        else:
            rho = self.noise_rho
            first = self.is_first.to(mu.device)[:, None]  # a new episode starts from fresh noise
            self.noise = torch.where(first, fresh, rho * self.noise + (1.0 - rho * rho) ** 0.5 * fresh)
        return torch.tanh(mu + std * self.noise)

    def drain(self) -> list[dict]:
        """Finished episodes since the last call (return, length in steps, success, pos_rmse_m, crash)."""
        out, self.episodes = self.episodes, []
        return out
