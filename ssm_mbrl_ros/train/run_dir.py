"""A training run's directory, shared by the simulator trainer (`ssm-mbrl train`) and the store trainer (the ROS
trainer node): config.json, metrics.jsonl (+ TensorBoard scalars), the checkpoint + replay pair, and the training
wall clock across resumptions.

    config.json     the resolved config and architecture (written at start)
    metrics.jsonl   one JSON object per record, with the run's counters (env_steps, updates, wall_s) first
    tb/             TensorBoard scalars of every numeric record field, against env steps (when enabled)
    checkpoint.pt   + replay-N.npz: train/checkpoint.py
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from .checkpoint import learner_payload, restore_learner, save_checkpoint


class RunDir:
    """Bookkeeping of one run in `logdir`; `enabled=False` (a non-zero DDP rank) makes every write a no-op."""

    def __init__(self, logdir, enabled: bool = True, tensorboard: bool = False):
        self.logdir, self.enabled = Path(logdir), enabled
        self.wall_s_before = 0.0
        self._t0: float | None = None
        self.writer = None
        if not enabled:
            return
        self.logdir.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.logdir / "tb"))
            except ImportError:  # tensorboard is an install requirement; a stripped env still trains
                self.writer = None

    # ---- clock ----
    def start_clock(self) -> None:
        """Start (or restart after a resume) the wall clock of this session."""
        self._t0 = time.perf_counter()

    @property
    def wall_s(self) -> float:
        """Training wall-clock so far, across resumptions (s)."""
        return self.wall_s_before + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)

    # ---- files ----
    def write_config(self, record: dict) -> None:
        """config.json: the resolved config and architecture."""
        if self.enabled:
            (self.logdir / "config.json").write_text(json.dumps(record, indent=2) + "\n")

    def log(self, record: dict, env_steps: int, updates: int) -> dict:
        """Append a record (counters first) to metrics.jsonl and its numbers to TensorBoard; returns the record."""
        record = {"env_steps": env_steps, "updates": updates, "wall_s": round(self.wall_s, 3), **record}
        if not self.enabled:
            return record
        with open(self.logdir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self.writer.add_scalar(f"{record.get('kind', 'log')}/{k}", v, env_steps)
        return record

    def save(self, cfg, learner, counters: dict, replay_state: dict | None = None, **extra) -> Path | None:
        """Checkpoint: networks, optimisers, counters (the wall clock added), extra fields, and the replay."""
        if not self.enabled:
            return None
        payload = learner_payload(cfg, learner, counters={**counters, "wall_s": self.wall_s}, **extra)
        return save_checkpoint(self.logdir, payload, replay_state)

    def resume(self, cfg, learner, device) -> tuple[dict, dict, dict | None]:
        """Restore learner from the checkpoint (compatibility checked); (counters, payload, replay or None). The wall
        clock continues from the checkpoint's."""
        payload, replay = restore_learner(self.logdir, cfg, learner, device)
        counters = dict(payload["counters"])
        self.wall_s_before = float(counters.get("wall_s", 0.0))
        return counters, payload, replay

    def close(self) -> None:
        """Flush TensorBoard."""
        if self.writer is not None:
            self.writer.close()
