"""The online training loop behind `ssm-mbrl train`.

Loop: collect one vector-env step -> when the train ratio says so, one learner update on a
replayed batch -> every eval_every_min export the policy to ONNX and fly it through onnxruntime
in fresh simulator episodes -> every checkpoint_every_min save networks, optimisers, counters and
the replay. Everything lands in the log directory:

    checkpoint.pt, replay-N.npz resume with `ssm-mbrl train --logdir DIR --resume`
    policy.onnx (+ .json)       the latest exported policy; best.onnx (+ .json) the best evaluated (highest success
                                rate, then highest mean return)
    metrics.jsonl               one JSON per log/eval record; tb/ TensorBoard scalars
    curves.png                  learning curves; summary.json the run's outcome

Under torchrun (WORLD_SIZE > 1) every rank collects with its own seed, gradients are averaged
across ranks before each optimiser step, and rank 0 alone evaluates, logs and checkpoints.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ssm_mbrl_ros.core.config import to_dict

from ssm_mbrl_ros.evaluation.agents import OnnxPolicyAgent
from ssm_mbrl_ros.evaluation.rollout import run_episodes
from ssm_mbrl_ros.export.policy_graph import export_policy
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2

from .actor_schedule import ActorAverage, anneal_factor, budget_fraction
from .collector import Collector
from .config import TrainConfig
from .curves import plot_curves
from .imagined_reward import observation_reward
from .learner import Learner
from .run_dir import RunDir
from .sequence_buffer import SequenceBuffer

SOLVED_SUCCESS = 0.95  # the hover target (docs/training.md): >= 95 % of evaluation episodes succeed


def _dist():
    """(rank, world size), initialising torch.distributed from torchrun's environment when present."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("SSM_MBRL_BACKEND") != "gloo" else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


class Trainer:
    """One training run (or its resumption) in a log directory."""

    def __init__(self, cfg: TrainConfig, logdir, resume: bool = False, progress: bool = True):
        from ssm_mbrl_ros.core.io import resolve_device
        from ssm_mbrl_ros.sim.env import make_env
        from ssm_mbrl_ros.sim.tasks import load_task_config, training_overrides

        self.cfg = cfg.validate()
        self.logdir = Path(logdir)
        self.rank, self.world = _dist()
        self.main = self.rank == 0
        self.progress = progress and self.main
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(resolve_device(cfg.device))
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        seed = cfg.seed + 1000 * self.rank
        torch.manual_seed(cfg.seed)  # identical initial networks on every rank
        self.collect_overrides = (training_overrides(cfg.task) if cfg.collect_overrides is None
                                  else list(cfg.collect_overrides))
        self.env = make_env(cfg.task, cfg.num_envs, vehicle=cfg.vehicle, device=self.device, seed=seed,
                            overrides=list(cfg.task_overrides) + self.collect_overrides,
                            compile_physics=cfg.physics_compiled())
        # the task as evaluated and exported: without the training-only collect overrides
        self.task_config = (load_task_config(cfg.task, list(cfg.task_overrides)) if self.collect_overrides
                            else self.env.cfg)
        self.obs_layout, self.priv_dim = self.env.obs_layout, self.env.privileged_layout.dim
        hover = self.env.action_spec.to_normalized(np.array([GRAVITY_MPS2, 0.0, 0.0, 0.0])).tolist()
        self.learner = Learner(cfg, self.obs_layout.dim, self.priv_dim, self.device, sync=self.world > 1,
                               hover_action=hover, reward_fn=observation_reward(self.env, cfg.imagined_reward))
        self.learner.weigh_observation(self.obs_layout)
        # what leaves the trainer: the live actor, or its Polyak average (train/actor_schedule.py)
        self.actor_average = ActorAverage(self.learner.actor, cfg.actor_average) if cfg.actor_average else None
        self.buffer = SequenceBuffer(cfg.num_envs, self.obs_layout.dim, 4, self.priv_dim,
                                     max(cfg.replay_capacity // self.world, cfg.seq_len * cfg.num_envs), seed)
        self.env_steps = self.updates_env_steps = 0
        self.run_dir = RunDir(self.logdir, enabled=self.main, tensorboard=True)  # config, logs, checkpoints, clock
        self.evals: list[dict] = []
        self.solved: dict | None = None
        self.hover_action = hover
        # the update at which the action-response gate opened (None: the actor is still held back)
        self.actor_started: int | None = None if cfg.actor_gate_r2 > 0 else 0
        self.best_key = (-1.0, -math.inf)
        if resume:
            self._resume()
        torch.manual_seed(seed)
        recorder = None
        if cfg.record_store:
            from ssm_mbrl_ros.bags.recorder import EnvRecorder
            from ssm_mbrl_ros.bags.store import EpisodeStore

            recorder = EnvRecorder(EpisodeStore(self.logdir / ("store" if self.world == 1 else f"store_rank{self.rank}")),
                                   self.env, seed=seed, episodes_per_chunk=max(16, cfg.num_envs))
        self.collector = Collector(self.env, self.buffer, seed=seed + self.env_steps, recorder=recorder,
                                   noise_corr_s=cfg.explore_corr_s)
        self.collector.env_steps = self.env_steps
        from ssm_mbrl_ros.control.experts import make_expert

        self.expert = make_expert(cfg.expert, self.env)
        # after the prefill, the first expert_mix x num_envs envs keep flying the expert (a DAgger mixture)
        self.expert_envs = torch.arange(cfg.num_envs, device=self.device) < round(cfg.expert_mix * cfg.num_envs)
        self.run_dir.write_config(self.config_record())

    # ---- bookkeeping -------------------------------------------------------------------------

    def config_record(self) -> dict:
        """The resolved config and architecture (config.json, checkpoints, the sidecar's training_config)."""
        return {"train": to_dict(self.cfg), "collect_overrides": self.collect_overrides, "arch": self.learner.arch(),
                "world_size": self.world}

    def _resume(self) -> None:
        c, payload, replay = self.run_dir.resume(self.cfg, self.learner, self.device)
        self.env_steps, self.updates_env_steps = int(c["env_steps"]), float(c["updates_env_steps"])
        self.evals, self.solved = payload.get("evals", []), payload.get("solved")
        self.actor_started = payload.get("actor_started", self.actor_started)
        if self.actor_average is not None:  # a checkpoint without an average starts it from the live actor
            avg = payload.get("actor_average")
            self.actor_average.module.load_state_dict(avg if avg is not None else self.learner.actor.state_dict())
        best = payload.get("best_key", self.best_key)
        # checkpoints before best_by "return" ranked ties by position RMSE: keep their success part only
        self.best_key = tuple(best) if payload.get("best_by") == "return" else (float(best[0]), -math.inf)
        if replay is not None and self.rank == 0:
            self.buffer.load_state_dict(replay)
        if self.main:
            print(f"resumed {self.logdir}: {self.env_steps} env steps, {self.learner.updates} updates, "
                  f"{self.buffer.num_steps} replay steps, {self.run_dir.wall_s_before / 60:.1f} min trained")

    def save(self) -> None:
        """Checkpoint (rank 0): networks, optimisers, counters, evals and the replay."""
        if not self.main:
            return
        self.run_dir.save(self.cfg, self.learner, {"env_steps": self.env_steps,
                                                   "updates_env_steps": self.updates_env_steps},
                          self.buffer.state_dict(), evals=self.evals, solved=self.solved, best_key=list(self.best_key),
                          best_by="return",
                          actor_started=self.actor_started,
                          actor_average=None if self.actor_average is None else self.actor_average.state_dict())

    @property
    def wall_s(self) -> float:
        """Training wall-clock so far, across resumptions (s)."""
        return self.run_dir.wall_s

    def log(self, record: dict) -> None:
        """Append a record to metrics.jsonl and its numbers to TensorBoard (rank 0)."""
        self.run_dir.log(record, self.env_steps, self.learner.updates)

    # ---- evaluation --------------------------------------------------------------------------

    def export(self, path: Path) -> Path:
        """Export the current policy to path (+ sidecar) via export/."""
        actor = self.learner.actor if self.actor_average is None else self.actor_average.module
        return export_policy(self.learner.wm, actor, path, obs_layout=self.obs_layout,
                             action_spec=self.env.action_spec, control_hz=1.0 / self.env.dt_s,
                             vehicle=self.env.vehicle.name, task=self.cfg.task,
                             task_overrides=list(self.cfg.task_overrides), task_config=to_dict(self.task_config),
                             training_config={**self.config_record(), "env_steps": self.env_steps,
                                              "wall_s": round(self.wall_s, 1)})

    def evaluate(self) -> dict:
        """Export to policy.onnx and fly it through onnxruntime in eval_episodes fresh episodes."""
        from ssm_mbrl_ros.sim.env import make_env

        path = self.export(self.logdir / "policy.onnx")
        env = make_env(self.cfg.task, self.cfg.eval_episodes, vehicle=self.cfg.vehicle, device="cpu",
                       seed=10_000 + len(self.evals), overrides=list(self.cfg.task_overrides),
                       compile_physics=self.cfg.physics_compiled())
        result = run_episodes(env, OnnxPolicyAgent(env, path), seed=10_000 + len(self.evals), record=0,
                              progress=False)
        m = result.metrics()
        rec = {k: m[k] for k in ("success_rate", "crash_rate", "tilt_rate", "out_of_bounds_rate",
                                 "nonfinite_action_rate", "terminated_rate", "pos_rmse_m", "final_pos_err_m", "mean_return",
                                 "mean_episode_length_s", "lap_time_s")}
        rec.update(env_steps=self.env_steps, wall_s=round(self.wall_s, 1), updates=self.learner.updates)
        self.evals.append(rec)
        # best = most successful, then highest return (a policy that tilts over at once has a small position RMSE over
        # its short episodes, so RMSE would prefer it; the return is what the agent optimises)
        ret = rec["mean_return"]
        key = (rec["success_rate"] or 0.0, ret if ret is not None and math.isfinite(ret) else -math.inf)
        if key > self.best_key:
            self.best_key = key
            for suffix in (".onnx", ".json"):
                data = (self.logdir / f"policy{suffix}").read_bytes()
                tmp = self.logdir / f".best{suffix}.tmp"
                tmp.write_bytes(data)
                tmp.replace(self.logdir / f"best{suffix}")
        if self.solved is None and (rec["success_rate"] or 0.0) >= SOLVED_SUCCESS:
            self.solved = {"env_steps": self.env_steps, "wall_s": rec["wall_s"], "updates": self.learner.updates}
        self.log({"kind": "eval", **rec})
        plot_curves(self.logdir / "metrics.jsonl", self.logdir / "curves.png",
                    f"{self.cfg.task} / {self.cfg.wm} ({self.cfg.preset})")
        return rec

    def gate_r2(self) -> float:
        """The body-rate R^2 the action-response gate asks for now: actor_gate_r2, halved after
        actor_gate_max_updates updates."""
        late = self.cfg.actor_gate_max_updates and self.learner.updates >= self.cfg.actor_gate_max_updates
        return self.cfg.actor_gate_r2 * (0.5 if late else 1.0)

    def probe(self) -> dict:
        """Action-response probe of the current world model (train/action_response.py); opens the actor gate when
        the body-rate R^2 reaches actor_gate_r2. Logged as kind 'probe'."""
        from ssm_mbrl_ros.sim.env import make_env

        from .action_response import probe_action_response

        cfg = self.cfg

        def make(n, seed):  # episodes long enough for the probe's warm-up and horizon, whatever the run's length
            return make_env(cfg.task, n, vehicle=cfg.vehicle, device=self.device, seed=seed,
                            overrides=list(cfg.task_overrides) + ["episode_length_s=2.0"])

        wm = self.learner.wm
        wm.eval()
        try:
            result = probe_action_response(wm, make, self.hover_action)
        finally:
            wm.train()
        r2 = result["r2"]
        if self.actor_started is None and r2.get("omega", math.nan) >= self.gate_r2():  # NaN never passes
            self.actor_started = self.learner.updates
        self.log({"kind": "probe", **{f"r2_{k}": round(v, 4) for k, v in r2.items()},
                  "actor_started": self.actor_started})
        return result

    # ---- the loop ----------------------------------------------------------------------------

    def _should_stop(self, local_stop: bool) -> bool:
        """Rank 0's decision, shared with every rank (one tiny all-reduce per step under torchrun)."""
        if self.world == 1:
            return local_stop
        import torch.distributed as dist

        flag = torch.tensor([1.0 if (local_stop and self.main) else 0.0], device=self._comm_device())
        dist.all_reduce(flag)
        return bool(flag.item() > 0)

    def _anneal_actor_lr(self) -> None:
        """Set the actor's learning rate for the next update from the budget spent (actor_lr_anneal_*)."""
        cfg = self.cfg
        if cfg.actor_lr_anneal_start >= 1.0:
            return
        frac = budget_fraction(self.wall_s, self.env_steps, cfg.minutes, cfg.max_env_steps)
        lr = cfg.actor_lr * anneal_factor(frac, cfg.actor_lr_anneal_start, cfg.actor_lr_anneal_final)
        if self.world > 1:  # each rank's wall clock differs: every rank takes rank 0's rate, so the actors stay equal
            import torch.distributed as dist

            shared = torch.tensor([lr], dtype=torch.float64, device=self._comm_device())
            dist.broadcast(shared, 0)
            lr = float(shared.item())
        for group in self.learner.opt_actor.param_groups:
            group["lr"] = lr

    def _budget_left(self) -> bool:
        cfg = self.cfg
        if cfg.minutes and self.wall_s >= cfg.minutes * 60.0:
            return False
        if cfg.max_env_steps and self.env_steps >= cfg.max_env_steps:
            return False
        return not (cfg.target_success and self.evals and (self.evals[-1]["success_rate"] or 0) >= cfg.target_success)

    def run(self) -> dict:
        """Train until the budget is spent (or Ctrl-C); returns the summary (also summary.json)."""
        cfg, learner = self.cfg, self.learner
        per_update = cfg.batch_size * cfg.seq_len / cfg.train_ratio  # env steps collected per update
        self.run_dir.start_clock()
        next_eval = self.wall_s + cfg.eval_every_min * 60.0
        next_ckpt = self.wall_s + cfg.checkpoint_every_min * 60.0
        bar = tqdm(total=cfg.max_env_steps or None, initial=self.env_steps, unit="step", disable=not self.progress,
                   desc=f"train {cfg.task}/{cfg.wm}", dynamic_ncols=True)
        last_metrics: dict = {}
        returns: list[float] = []
        interrupted = False
        # updates wait for one full window per drone, whatever prefill_steps says (a short prefill with a long
        # seq_len would otherwise find no window to replay)
        prefill_steps = max(cfg.prefill_steps, cfg.seq_len * cfg.num_envs)
        try:
            while not self._should_stop(not self._budget_left()):
                prefill = self.env_steps < prefill_steps
                label = self.expert if learner.updates < cfg.bc_updates or prefill else None
                self.collector.step(learner.wm, learner.actor, expert=label,
                                    expert_flies=True if prefill else self.expert_envs,
                                    expert_noise=cfg.expert_noise)
                self.env_steps = self.collector.env_steps
                bar.update(cfg.num_envs)
                returns += [e["return"] for e in self.collector.drain()]
                if not prefill:
                    while self.env_steps - self.updates_env_steps >= per_update:
                        self.updates_env_steps += per_update
                        self._anneal_actor_lr()
                        last_metrics = learner.update(self.buffer.sample(cfg.batch_size, cfg.seq_len),
                                                      train_actor=self.actor_started is not None)
                        if self.actor_average is not None:
                            self.actor_average.update(learner.actor)
                        if self.actor_started is None and learner.updates % cfg.probe_every_updates == 0:
                            if self.main:
                                self.probe()
                            self._gate_sync()
                        if learner.updates % cfg.log_every_updates == 0:
                            rec = {"kind": "train", **last_metrics,
                                   "train_return": float(np.mean(returns)) if returns else None}
                            self.log(rec)
                            returns = []
                            bar.set_postfix(wm=f"{last_metrics['loss']:.2f}", upd=learner.updates,
                                            ret=None if rec["train_return"] is None else f"{rec['train_return']:.0f}",
                                            min=f"{self.wall_s / 60:.1f}")
                if self.main and self.wall_s >= next_eval and not prefill:
                    rec = self.evaluate()
                    next_eval = self.wall_s + cfg.eval_every_min * 60.0
                    bar.write(f"[{self.wall_s / 60:5.1f} min, {self.env_steps} steps] eval: success "
                              f"{rec['success_rate']}, rmse {rec['pos_rmse_m']} m, return {rec['mean_return']}")
                if self.main and self.wall_s >= next_ckpt:
                    self.save()
                    next_ckpt = self.wall_s + cfg.checkpoint_every_min * 60.0
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
        return self.finish(interrupted)

    def finish(self, interrupted: bool = False) -> dict:
        """Final evaluation, checkpoint, curves and summary.json (rank 0); returns the summary."""
        if self.collector.recorder is not None:
            self.collector.recorder.flush()
        summary = {"interrupted": interrupted}
        if self.world > 1:
            summary["ranks_in_sync"] = self._ranks_in_sync()
        if self.main:
            if not interrupted and self.learner.updates > 0:
                self.evaluate()  # also redraws curves.png
            else:
                plot_curves(self.logdir / "metrics.jsonl", self.logdir / "curves.png",
                            f"{self.cfg.task} / {self.cfg.wm} ({self.cfg.preset})")
            self.save()
            summary.update(task=self.cfg.task, wm=self.cfg.wm, preset=self.cfg.preset, env_steps=self.env_steps,
                           updates=self.learner.updates, wall_s=round(self.wall_s, 1), world_size=self.world,
                           final_eval=self.evals[-1] if self.evals else None, solved=self.solved,
                           best_eval=max(self.evals, key=lambda r: (r["success_rate"] or 0.0,
                                                                   -(r["pos_rmse_m"] or math.inf)))
                           if self.evals else None)
            (self.logdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            self.run_dir.close()
        if self.world > 1:  # every rank waits for rank 0's evaluation, then the group is torn down cleanly
            import torch.distributed as dist

            dist.barrier()  # (exiting with live gloo threads aborts the process: "terminate called ...")
            dist.destroy_process_group()
        return summary

    def _gate_sync(self) -> None:
        """Share rank 0's gate decision (every rank must train the actor from the same update)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        flag = torch.tensor([-1.0 if self.actor_started is None else float(self.actor_started)],
                            device=self._comm_device())
        dist.broadcast(flag, 0)
        self.actor_started = None if flag.item() < 0 else int(flag.item())

    def _comm_device(self) -> torch.device:
        """Where collective tensors live: CUDA under NCCL, CPU under gloo."""
        import torch.distributed as dist

        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def _ranks_in_sync(self) -> bool:
        """True when every rank ends with bit-identical network parameters and buffers (gradient averaging and the
        normalisers' all-reduces work)."""
        import torch.distributed as dist

        tensors = [*self.learner.parameters(), *self.learner.buffers()]
        flat = torch.cat([t.detach().reshape(-1).double().cpu() for t in tensors])
        mine = torch.tensor([flat.sum().item(), flat.square().sum().item()], dtype=torch.float64,
                            device=self._comm_device())
        gathered = [torch.zeros_like(mine) for _ in range(self.world)]
        dist.all_gather(gathered, mine)
        return all(torch.equal(g, gathered[0]) for g in gathered)
