"""Training from the bag-backed episode store: the trainer side of the decoupled data path (docs/bags.md).

Collectors (train/onnx_collector.py, or the recorder on a real drone) write rosbag2 MCAP chunks
into a store directory; this trainer polls it for complete chunks (`.tmp_*` ones are still being
written and are ignored), turns them into training sequences (bags/replay.py over
bags/dataset.py: observations and rewards rebuilt from odometry + commands + the episode's
self-description) and runs the same learner updates as `ssm-mbrl train` (world model, then
actor-critic in imagination; behaviour cloning on stored expert labels with `expert=geometric`)
at `train_ratio` replayed steps per ingested env step. Every export_every_s it exports the
policy to LOGDIR/snapshots/policy_NNNNN.onnx (+ sidecar; the sidecar lands first and the .onnx
is renamed into place last, so a reader never sees half a model) and hands the path to
`on_snapshot` (the ROS node announces it on policy/model). Files in LOGDIR:

    checkpoint.pt          networks, optimisers, counters, resolved config, chunks ingested (resume; the store
                           itself is the replay, re-read on resume)
    snapshots/             exported policies (the newest keep_snapshots), policy.onnx (+ .json) the latest
    metrics.jsonl          one JSON per log record (kind train / snapshot); config.json the resolved config

Budgets come from TrainConfig: `minutes` of wall-clock and `max_env_steps` ingested (0 = none). Its
collection fields (num_envs, expert_mix, expert_noise, record_store) belong to the collectors here, and
there is no built-in evaluation (eval_*): fly a snapshot with `ssm-mbrl evaluate --policy`.
Observations and rewards can be rebuilt from bags for tasks with the hover observation layout
(dataset.obs_layout); other tasks are refused with the reason.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ssm_mbrl_ros.core.config import ConfigError, doc, require_positive, to_dict
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2

from .config import TrainConfig, resolve_train_config
from .run_dir import RunDir


@dataclass
class StoreTrainerConfig:
    """Where to read episodes and write the run, and how often to export (also the trainer node's parameters)."""

    store: str = doc("episode store directory the collectors write (rosbag2 MCAP chunks)", default="runs/store")
    logdir: str = doc("run directory: checkpoint.pt, snapshots/, metrics.jsonl", default="runs/store_train")
    config: str = doc("TrainConfig YAML (as `ssm-mbrl train --config`); '' = defaults", default="")
    set: list = doc("TrainConfig overrides KEY=VALUE (as `ssm-mbrl train --set`), e.g. [preset=tiny]",
                    default_factory=list)
    resume: bool = doc("continue from LOGDIR/checkpoint.pt when there is one (false: refuse an existing run)",
                       default=True)
    export_every_s: float = doc("seconds between exported snapshots (only when there were new updates)",
                                default=60.0)
    poll_every_s: float = doc("seconds between scans of the store for new chunks", default=2.0)
    delete_evicted: bool = doc("delete chunks evicted from replay (beyond replay_capacity) from disk; false keeps "
                               "the store as a dataset", default=False)
    keep_snapshots: int = doc("exported snapshots kept on disk, newest first (0 = all)", default=20)

    def validate(self, source: str = "trainer") -> None:
        """Directories named, periods positive."""
        for name in ("store", "logdir"):
            if not getattr(self, name):
                raise ConfigError(f"{source}.{name}: give a directory")
        require_positive(self, source, "export_every_s", "poll_every_s")
        if self.keep_snapshots < 0:
            raise ConfigError(f"{source}.keep_snapshots: must be >= 0, got {self.keep_snapshots}")


def check_store_task(cfg: TrainConfig, obs_layout) -> None:
    """The bag dataset rebuilds the hover observation and reward only: refuse other tasks with the reason."""
    from ssm_mbrl_ros.bags.dataset import obs_layout as bag_layout

    def key(layout):
        return [(f.name, f.size, f.unit, f.frame) for f in layout.fields]

    if key(obs_layout) != key(bag_layout(True)) or not cfg.task.startswith("hover"):
        raise ConfigError(f"train.task: training from the episode store rebuilds observations and rewards from "
                          f"bags, implemented for the hover observation {bag_layout(True).names()}; task "
                          f"{cfg.task!r} observes {obs_layout.names()} (train it with `ssm-mbrl train`)")


def learner_batch(win: dict) -> dict:
    """Replay windows (bags/dataset.py keys) -> the learner's batch: NaN rewards masked, privileged rows masked."""
    reward = win["reward"]
    return {"obs": win["obs"], "action": win["action"], "reward": np.nan_to_num(reward),
            "reward_mask": np.isfinite(reward), "cont": win["cont"], "is_first": win["is_first"], "privileged": win["privileged"],
            "priv_mask": win["privileged_valid"], "expert": win["expert"], "expert_action": win["expert_action"]}


def _publish_model(src: Path, dst: Path) -> Path:
    """Move an exported model (+ sidecar) into place: sidecar first, .onnx last (each rename atomic)."""
    os.replace(src.with_suffix(".json"), dst.with_suffix(".json"))
    os.replace(src, dst)
    return dst


class StoreTrainer:
    """Learner updates on sequences from an episode store, with periodic ONNX snapshots and checkpoints."""

    def __init__(self, scfg: StoreTrainerConfig, on_snapshot=None, log=print):
        """on_snapshot(path): called with each new snapshot; log(text): progress lines."""
        from ssm_mbrl_ros.core.io import resolve_device
        from ssm_mbrl_ros.bags.dataset import AlignConfig
        from ssm_mbrl_ros.bags.replay import Replay
        from ssm_mbrl_ros.sim.env import make_env

        from .checkpoint import CHECKPOINT
        from .learner import Learner

        scfg.validate()
        self.scfg, self.on_snapshot, self.log_line = scfg, on_snapshot, log
        self.cfg = cfg = resolve_train_config(scfg.config, scfg.set)
        self.logdir = Path(scfg.logdir)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(resolve_device(cfg.device))
        env = make_env(cfg.task, 1, vehicle=cfg.vehicle, overrides=list(cfg.task_overrides))  # layouts, limits, rate
        check_store_task(cfg, env.obs_layout)
        self.obs_layout, self.action_spec = env.obs_layout, env.action_spec
        self.control_hz, self.vehicle = 1.0 / env.dt_s, env.vehicle.name
        priv_dim = env.privileged_layout.dim
        hover = env.action_spec.to_normalized(np.array([GRAVITY_MPS2, 0.0, 0.0, 0.0])).tolist()
        torch.manual_seed(cfg.seed)
        self.learner = Learner(cfg, self.obs_layout.dim, priv_dim, self.device, hover_action=hover)
        self.learner.weigh_observation(self.obs_layout)
        self.per_update = cfg.batch_size * cfg.seq_len / cfg.train_ratio  # env steps ingested per update
        self.updates_env_steps = 0.0
        self.snapshots = 0
        self.snapshot: Path | None = None
        self.run_dir = RunDir(self.logdir)  # config, logs, checkpoints, clock: the same as `ssm-mbrl train`
        ingested_before, seen = 0, set()
        resuming = (self.logdir / CHECKPOINT).is_file()
        if resuming and not scfg.resume:
            raise ConfigError(f"trainer.resume: {self.logdir} already holds a run ({CHECKPOINT}); set resume true "
                              f"to continue it or choose another logdir")
        if resuming:
            ingested_before, seen = self._resume()
        self.replay = Replay(scfg.store, capacity_steps=cfg.replay_capacity, seed=cfg.seed,
                             align=AlignConfig(privileged_dim=priv_dim), delete_evicted=scfg.delete_evicted)
        self._ingested_before = ingested_before - sum(v for k, v in self.replay.loaded.items() if k in seen)
        self._t0 = time.perf_counter()
        self.run_dir.start_clock()
        self._next_poll = self._t0 + scfg.poll_every_s
        self._next_export = self._t0 + scfg.export_every_s
        self._next_ckpt = self._t0 + cfg.checkpoint_every_min * 60.0
        self._exported_at_updates = self.learner.updates
        self._last: dict = {}
        self._rate: list[tuple[float, int]] = [(self._t0, self.learner.updates)]
        (self.logdir / "snapshots").mkdir(exist_ok=True)
        self.run_dir.write_config(self.config_record())
        self.log_line(f"store trainer: {cfg.task}/{cfg.wm} ({cfg.preset}) on {self.device}, store {scfg.store}: "
                      f"{self.replay.num_steps} steps in {len(self.replay.chunk_names)} chunks"
                      + (f", resumed at {self.learner.updates} updates" if resuming else ""))

    # ---- bookkeeping --------------------------------------------------------------------------

    @property
    def env_steps(self) -> int:
        """Env steps ingested from the store (across resumptions)."""
        return self._ingested_before + self.replay.steps_loaded

    @property
    def wall_s(self) -> float:
        """Training wall-clock so far, across resumptions (s)."""
        return self.run_dir.wall_s

    def config_record(self) -> dict:
        """Resolved config + architecture (config.json, checkpoints, the sidecar's training_config)."""
        return {"train": to_dict(self.cfg), "store_trainer": to_dict(self.scfg), "arch": self.learner.arch(),
                "world_size": 1}

    def _resume(self) -> tuple[int, set]:
        c, payload, _ = self.run_dir.resume(self.cfg, self.learner, self.device)
        self.updates_env_steps = float(c["updates_env_steps"])
        self.snapshots = int(c.get("snapshots", 0))
        return int(c["env_steps"]), set(payload.get("chunks_ingested", []))

    def save(self) -> Path:
        """Atomic checkpoint: networks, optimisers, counters, the chunks already ingested."""
        return self.run_dir.save(self.cfg, self.learner, {"env_steps": self.env_steps,
                                                          "updates_env_steps": self.updates_env_steps,
                                                          "snapshots": self.snapshots},
                                 None, kind="store_trainer", chunks_ingested=list(self.replay.loaded))

    def log(self, record: dict) -> None:
        """Append a record (with counters) to metrics.jsonl."""
        self.run_dir.log(record, self.env_steps, self.learner.updates)

    # ---- the loop -----------------------------------------------------------------------------

    def poll(self) -> int:
        """Ingest chunks that appeared in the store; returns how many."""
        new = self.replay.refresh()
        if new:
            self.log_line(f"ingested {new} chunk(s): {self.env_steps} env steps, replay {self.replay.num_steps}")
        return new

    @property
    def ready(self) -> bool:
        """Enough ingested (prefill_steps) and replayed (one sequence) to update."""
        return self.env_steps >= self.cfg.prefill_steps and self.replay.num_steps >= self.cfg.seq_len

    @property
    def done(self) -> bool:
        """The TrainConfig budget is spent: minutes of wall-clock, or max_env_steps ingested and trained on."""
        cfg = self.cfg
        if cfg.minutes and self.wall_s >= cfg.minutes * 60.0:
            return True
        return bool(cfg.max_env_steps) and self.env_steps >= cfg.max_env_steps and not self._owed()

    def _owed(self) -> bool:
        return self.ready and self.env_steps - self.updates_env_steps >= self.per_update

    def update(self) -> dict:
        """One learner update on a replayed batch; returns its metrics."""
        cfg = self.cfg
        self.updates_env_steps += self.per_update
        batch = learner_batch(self.replay.sample(cfg.batch_size, cfg.seq_len))
        self._last = self.learner.update(batch)
        self._last["expert_rows"] = float(batch["expert"].mean())
        if self.learner.updates % cfg.log_every_updates == 0:
            self.log({"kind": "train", **self._last})
        return self._last

    def work(self, seconds: float) -> int:
        """Poll, update while the train ratio allows, export and checkpoint when due, for about `seconds`; returns
        the updates done (0 and an early return when there is nothing to do)."""
        t_end, n = time.perf_counter() + seconds, 0
        while not self.done:
            now = time.perf_counter()
            if now >= self._next_poll:
                self.poll()
                self._next_poll = now + self.scfg.poll_every_s
            if now >= self._next_export:
                self.maybe_export()
                self._next_export = now + self.scfg.export_every_s
            if now >= self._next_ckpt:
                self.save()
                self._next_ckpt = now + self.cfg.checkpoint_every_min * 60.0
            if not self._owed() or time.perf_counter() >= t_end:
                break
            self.update()
            n += 1
        self._rate = (self._rate + [(time.perf_counter(), self.learner.updates)])[-20:]
        return n

    def maybe_export(self) -> Path | None:
        """Export a snapshot when there were updates since the last one; returns its path (or None)."""
        if self.learner.updates == self._exported_at_updates or self.learner.updates == 0:
            return None
        return self.export_snapshot()

    def export_snapshot(self) -> Path:
        """Export the policy to snapshots/policy_NNNNN.onnx (+ sidecar) and LOGDIR/policy.onnx; announce it."""
        from ssm_mbrl_ros.export.policy_graph import export_policy

        self.snapshots += 1
        snap_dir = self.logdir / "snapshots"
        tmp = snap_dir / f".tmp_policy_{os.getpid()}.onnx"
        export_policy(self.learner.wm, self.learner.actor, tmp, obs_layout=self.obs_layout,
                      action_spec=self.action_spec, control_hz=self.control_hz, vehicle=self.vehicle,
                      task=self.cfg.task, training_config={**self.config_record(), "env_steps": self.env_steps,
                                                           "updates": self.learner.updates,
                                                           "wall_s": round(self.wall_s, 1)})
        latest = self.logdir / f".tmp_latest_{os.getpid()}.onnx"
        latest.write_bytes(tmp.read_bytes())
        latest.with_suffix(".json").write_bytes(tmp.with_suffix(".json").read_bytes())
        path = _publish_model(tmp, snap_dir / f"policy_{self.snapshots:05d}.onnx")
        _publish_model(latest, self.logdir / "policy.onnx")
        self._prune(snap_dir)
        self._exported_at_updates = self.learner.updates
        self.snapshot = path
        self.log({"kind": "snapshot", "path": str(path)})
        self.log_line(f"snapshot {path.name}: {self.learner.updates} updates, {self.env_steps} env steps")
        if self.on_snapshot is not None:
            self.on_snapshot(path)
        return path

    def _prune(self, snap_dir: Path) -> None:
        keep = self.scfg.keep_snapshots
        if not keep:
            return
        for old in sorted(snap_dir.glob("policy_*.onnx"))[:-keep]:
            old.with_suffix(".json").unlink(missing_ok=True)
            old.unlink(missing_ok=True)

    def metrics(self) -> dict:
        """Counters, rates and the last update's losses (the node publishes this as JSON)."""
        (t0, u0), (t1, u1) = self._rate[0], self._rate[-1]
        upm = (u1 - u0) / (t1 - t0) * 60.0 if t1 > t0 else None
        ratio = self.learner.updates * self.cfg.batch_size * self.cfg.seq_len / max(self.env_steps, 1)
        losses = {k: v for k, v in self._last.items() if isinstance(v, float) and math.isfinite(v)}
        return {"updates": self.learner.updates, "env_steps_ingested": self.env_steps,
                "replay_steps": self.replay.num_steps, "chunks": len(self.replay.loaded),
                "updates_per_min": None if upm is None else round(upm, 2), "train_ratio_effective": round(ratio, 2),
                "ready": self.ready, "snapshot": str(self.snapshot) if self.snapshot else None,
                "snapshots": self.snapshots, "wall_s": round(self.wall_s, 1), "losses": losses,
                "ingest_problems": len(self.replay.report.problems)}

    def close(self) -> None:
        """Final snapshot (if anything new was learned) and checkpoint: nothing trained is lost."""
        self.maybe_export()
        self.save()
        self.log_line(f"saved {self.logdir}: {self.learner.updates} updates, {self.env_steps} env steps")
