"""Collection with the deployable artifact: a vector env flown by the exported ONNX policy, episodes to the store.

The decoupled data path (docs/bags.md): collectors act with the exported
recurrent policy through the torch-free runtime (runtime/policy.py, batch N = one row per simulated drone), write finished
episodes as rosbag2 MCAP chunks into an episode store (bags/store.py), and swap in each new
model the trainer announces; the trainer (train/store_trainer.py) samples from the same store.

Acting:
    before any model   the prefill policy: the trainer's initial actor, tanh(atanh(hover) + prefill_noise * eps)
                       (hover thrust, zero rates, Gaussian noise in pre-tanh normalised units), or the expert
    with a model       tanh(atanh(mean) + action_noise * eps) around the ONNX mean action; the executed action
                       is written back as the graph's previous action, so the filter sees what was flown
    expert=geometric   the geometric controller (true state, simulation only) labels every step with its CTBR
                       (stored on /expert_ctbr for the trainer's behaviour-cloning loss), flies every env in
                       the prefill and the first round(expert_mix * N) envs afterwards (+ expert_noise), while
                       the announced model's trainer is still within its bc_updates (read from the sidecar)
A new model is validated (sidecar, checksum, graph, observation layout and action limits of this
env, one finite step) before it is swapped in at the next step boundary; a broken one raises
ConfigError and collection goes on with the old one. Every env's recurrent state restarts at a swap.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ssm_mbrl_ros.core.config import ConfigError, doc, require_positive
from ssm_mbrl_ros.control.experts import EXPERTS
from ssm_mbrl_ros.runtime.models import find_model
from ssm_mbrl_ros.runtime.policy import OnnxPolicy
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2


@dataclass
class CollectorConfig:
    """A collector: simulator, acting policy, exploration, store (also the ROS parameters of the collector node)."""

    store: str = doc("episode store directory (rosbag2 MCAP chunks; shared with other collectors and the trainer)",
                     default="runs/store")
    task: str = doc("task name (hover, circle, figure8, racing, or a *_partial variant)", default="hover")
    vehicle: str = doc("vehicle name (config/vehicles/NAME.yaml) or a YAML path", default="agile5")
    task_overrides: list = doc("task config overrides KEY=VALUE", default_factory=list)
    num_envs: int = doc("simulated drones stepped together (the ONNX batch size)", default=16)
    seed: int = doc("simulator and exploration seed (give parallel collectors different seeds)", default=0)
    model: str = doc("policy to start with: .onnx path (sidecar beside it) or shipped model name; '' = the "
                     "prefill policy until a model is announced", default="")
    action_noise: float = doc("exploration: std of Gaussian noise on the policy's pre-tanh normalised action",
                              default=0.1)
    prefill_noise: float = doc("std of the prefill policy around hover (pre-tanh normalised; the trainer's "
                               "actor_init_std)", default=0.3)
    expert: str = doc("'geometric': label every step with the geometric controller's CTBR (expert-guided "
                      "training) and let it fly the prefill and expert_mix of the envs; 'none'", default="none")
    expert_mix: float = doc("fraction of envs the expert flies once a model is announced (while the model's "
                            "trainer is within its bc_updates)", default=0.5)
    expert_noise: float = doc("std of normalised noise added to the expert's actions (state coverage)", default=0.1)
    episodes_per_chunk: int = doc("finished episodes per MCAP chunk", default=16)
    chunk_every_s: float = doc("write finished episodes at least this often (s), even if fewer", default=30.0)
    max_env_steps: int = doc("stop after this many env steps (0 = run until stopped)", default=0)
    max_steps_per_s: float = doc("cap on env steps per second (0 = as fast as possible); keeps the trainer's train "
                                 "ratio when collection outpaces training", default=0.0)
    compile: bool = doc("compile the physics with torch inductor (faster at large num_envs, ~30 s to start)",
                        default=False)
    threads: int = doc("torch and onnxruntime intra-op threads", default=1)

    def validate(self, source: str = "collector") -> None:
        """Names exist, sizes positive, fractions in [0, 1]."""
        from ssm_mbrl_ros.sim.tasks import list_tasks

        if self.task not in list_tasks():
            raise ConfigError(f"{source}.task: unknown task {self.task!r}; valid: {list_tasks()}")
        if self.expert not in ("none", *EXPERTS):
            raise ConfigError(f"{source}.expert: must be one of {['none', *EXPERTS]}, got {self.expert!r}")
        if not self.store:
            raise ConfigError(f"{source}.store: give the episode store directory")
        require_positive(self, source, "num_envs", "episodes_per_chunk", "chunk_every_s", "threads")
        for name in ("action_noise", "prefill_noise", "expert_noise", "max_env_steps", "max_steps_per_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{source}.{name}: must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.expert_mix <= 1.0:
            raise ConfigError(f"{source}.expert_mix: must be in [0, 1], got {self.expert_mix}")


def expert_phase(sidecar: dict) -> bool:
    """Whether the trainer that exported this model still applies behaviour cloning (True when it does not say)."""
    tc = sidecar.get("training_config") or {}
    train = tc.get("train") or {}
    if "updates" not in tc or "bc_updates" not in train:
        return True
    return train.get("expert", "none") != "none" and int(tc["updates"]) < int(train["bc_updates"])


class OnnxCollector:
    """Steps a vector env with an ONNX policy (or the prefill policy) and records episodes into a store."""

    def __init__(self, cfg: CollectorConfig):
        from ssm_mbrl_ros.bags.recorder import EnvRecorder
        from ssm_mbrl_ros.bags.store import EpisodeStore
        from ssm_mbrl_ros.sim.env import make_env

        cfg.validate()
        self.cfg = cfg
        torch.set_num_threads(cfg.threads)
        self.env = env = make_env(cfg.task, cfg.num_envs, vehicle=cfg.vehicle, seed=cfg.seed,
                                  overrides=list(cfg.task_overrides), compile_physics=cfg.compile)
        n = env.num_envs
        self.rng = np.random.default_rng(cfg.seed + 7)
        hover = env.action_spec.to_normalized(np.array([GRAVITY_MPS2, 0.0, 0.0, 0.0]))
        self._hover_u = np.arctanh(np.clip(hover, -0.99, 0.99)).astype(np.float32)  # pre-tanh hover (4,)
        from ssm_mbrl_ros.control.experts import make_expert

        self.expert = make_expert(cfg.expert, env)
        self._expert_envs = np.arange(n) < round(cfg.expert_mix * n)
        self.recorder = EnvRecorder(EpisodeStore(cfg.store), env, seed=cfg.seed,
                                    episodes_per_chunk=cfg.episodes_per_chunk)
        self.policy: OnnxPolicy | None = None
        self.policy_name = "prefill"
        self.expert_active = True
        self._pending: tuple[OnnxPolicy, str] | None = None  # validated, swapped in at the next step
        self._lock = threading.Lock()
        self.swaps = self.rejected = self.env_steps = self.episodes = 0
        self._returns: deque = deque(maxlen=100)
        self._success: deque = deque(maxlen=100)
        self._rate: deque = deque(maxlen=50)  # (perf_counter, env_steps) samples for steps/s
        self.obs, info = env.reset(seed=cfg.seed)
        self.recorder.begin(info)
        self.recorder.base_info["behaviour_policy"] = self.policy_name
        self._last_flush = time.monotonic()
        self._t_start: float | None = None  # first run_for (the reference of max_steps_per_s)
        self._steps_start = 0
        if cfg.model:
            self.set_policy(*self.load_policy(cfg.model))

    # ---- models ---------------------------------------------------------------------------

    def load_policy(self, model: str) -> tuple[OnnxPolicy, str]:
        """Load and validate a model for this env (any thread); ConfigError with the reason when it cannot fly here."""
        try:
            path = find_model(model)
            pol = OnnxPolicy(path, threads=self.cfg.threads)
        except (OSError, ValueError) as exc:  # missing file, sidecar/checksum/graph mismatch
            raise ConfigError(f"model {model!r}: {exc}") from exc
        env = self.env
        if pol.obs_layout.to_dict() != env.obs_layout.to_dict():
            raise ConfigError(f"model {model!r} reads observation {pol.obs_layout.names()} ({pol.obs_dim} values), "
                              f"task {env.task_name!r} produces {env.obs_layout.names()} ({env.obs_layout.dim})")
        if pol.action_spec.to_dict() != env.action_spec.to_dict():
            raise ConfigError(f"model {model!r} was exported for other action limits ({pol.sidecar.get('vehicle')!r}) "
                              f"than vehicle {env.vehicle.name!r}")
        pol.reset(env.num_envs)
        action, _, _ = pol.step(self.obs.detach().cpu().float().numpy())
        if not np.isfinite(action).all():
            raise ConfigError(f"model {model!r} produced a non-finite action on the current observations")
        pol.reset(env.num_envs)
        return pol, str(path)

    def set_policy(self, policy: OnnxPolicy, name: str) -> None:
        """Swap in a validated policy at the next step boundary (safe to call from another thread)."""
        with self._lock:
            self._pending = (policy, name)

    def try_swap(self, model: str) -> str | None:
        """Load, validate and queue `model` (any thread); returns None, or the reason it was rejected (counted)."""
        try:
            self.set_policy(*self.load_policy(model))
            return None
        except ConfigError as exc:
            self.rejected += 1
            return str(exc)

    # ---- acting ---------------------------------------------------------------------------

    def _explore(self, u_mean: np.ndarray, std: float) -> np.ndarray:
        """tanh(u + std * eps) (N, 4): Gaussian exploration in pre-tanh normalised action units."""
        if std <= 0:
            return np.tanh(u_mean).astype(np.float32)
        return np.tanh(u_mean + std * self.rng.standard_normal(u_mean.shape)).astype(np.float32)

    def step(self) -> None:
        """One vector-env step: act, step, record, handle episode ends."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self.policy, self.policy_name = pending
            self.swaps += 1
            self.expert_active = expert_phase(self.policy.sidecar)
            self.recorder.base_info["behaviour_policy"] = self.policy_name
        env, cfg, n = self.env, self.cfg, self.env.num_envs
        obs_np = self.obs.detach().cpu().float().numpy()
        if self.policy is not None:
            mean, _, _ = self.policy.step(obs_np, copy=False)
            action = self._explore(np.arctanh(np.clip(mean, -0.999, 0.999)), cfg.action_noise)
        else:
            action = self._explore(np.broadcast_to(self._hover_u, (n, 4)), cfg.prefill_noise)
        label_phys = None
        if self.expert is not None:
            label = env.action_spec.to_normalized(self.expert.act(self.obs, env)).detach().cpu().float().numpy()
            label_phys = env.action_spec.to_physical(label)
            flies = np.ones(n, bool) if self.policy is None else (self._expert_envs if self.expert_active else None)
            if flies is not None and flies.any():
                noisy = np.clip(label + cfg.expert_noise * self.rng.standard_normal(label.shape), -1.0, 1.0)
                action = np.where(flies[:, None], noisy, action).astype(np.float32)
        if self.policy is not None:
            self.policy.set_prev_action(action)  # the filter's next step sees the action actually flown
        act_t = torch.from_numpy(action).to(env.device, env.dtype)
        obs, _, term, trunc, info = env.step(act_t)
        self.recorder.step(env.action_spec.to_physical(act_t), term, trunc, info, expert_ctbr=label_phys)
        self.env_steps += n
        done = (term | trunc).cpu().numpy()
        if done.any():
            if self.policy is not None:
                self.policy.reset_where(done)
            if self.expert is not None:
                self.expert.reset(torch.from_numpy(np.flatnonzero(done)).to(env.device))
            self.episodes += int(done.sum())
            self._returns.extend(info["episode_return"][torch.from_numpy(done)].tolist())
            self._success.extend(info["success"][torch.from_numpy(done)].tolist())
        self.obs = obs
        if self.recorder.pending and time.monotonic() - self._last_flush >= cfg.chunk_every_s:
            self.flush()

    def flush(self) -> None:
        """Write the finished episodes waiting for a chunk."""
        self.recorder.flush()
        self._last_flush = time.monotonic()

    def run_for(self, seconds: float) -> int:
        """Step until `seconds` have passed (at least one step unless ahead of max_steps_per_s) or the step budget is
        spent; returns steps taken."""
        t_end, before = time.perf_counter() + seconds, self.env_steps
        if self._t_start is None:
            self._t_start, self._steps_start = time.perf_counter(), self.env_steps
        rate = self.cfg.max_steps_per_s
        while not self.done:
            if rate:
                ahead_s = (self.env_steps - self._steps_start) / rate - (time.perf_counter() - self._t_start)
                if ahead_s > 0:  # over the cap: wait (within this slice) until the next step is allowed
                    time.sleep(min(ahead_s, max(t_end - time.perf_counter(), 0.0)))
                    if time.perf_counter() >= t_end:
                        break
                    continue
            self.step()
            if time.perf_counter() >= t_end:
                break
        self._rate.append((time.perf_counter(), self.env_steps))
        return self.env_steps - before

    @property
    def done(self) -> bool:
        """The step budget (max_env_steps) is spent."""
        return bool(self.cfg.max_env_steps) and self.env_steps >= self.cfg.max_env_steps

    def close(self) -> None:
        """Store the running episodes (as truncated) and everything pending: nothing usable is lost (pieces shorter
        than the dataset's min_steps, which no reader would use, are left out)."""
        from ssm_mbrl_ros.bags.dataset import AlignConfig

        self.recorder.close(min_steps=AlignConfig().min_steps)

    def stats(self) -> dict:
        """Counters for monitoring: env steps, episodes, chunks, steps/s, swaps, policy, recent return/success."""
        rate = None
        if len(self._rate) >= 2 and self._rate[-1][0] > self._rate[0][0]:
            rate = (self._rate[-1][1] - self._rate[0][1]) / (self._rate[-1][0] - self._rate[0][0])
        return {"env_steps": self.env_steps, "episodes": self.episodes, "chunks": len(self.recorder.chunks_written),
                "last_chunk": Path(self.recorder.chunks_written[-1]).name if self.recorder.chunks_written else None,
                "steps_per_s": None if rate is None else round(rate, 1), "policy": self.policy_name,
                "swaps": self.swaps, "rejected_models": self.rejected, "expert_active": bool(
                    self.expert is not None and (self.policy is None or self.expert_active)),
                "mean_return": float(np.mean(self._returns)) if self._returns else None,
                "success_rate": float(np.mean(self._success)) if self._success else None,
                "num_envs": self.env.num_envs, "store": self.cfg.store}
