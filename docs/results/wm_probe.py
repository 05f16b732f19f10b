"""World-model-only training with the action-response probe: how fast imagination learns to answer actions.

Usage: python docs/results/wm_probe.py [--set KEY=VALUE ...] [--updates 600] [--every 100] [--out probe.json]
Prefills replay with the trainer's initial (hover-thrust) actor, trains the world model alone (train ratio as in
the config, collection continues with the initial actor), and every --every updates prints the probe's R^2 per
channel group (train/action_response.py): omega (body rates), att (attitude), vel, pos, reward. --set takes
TrainConfig fields as `ssm-mbrl train --set` does, e.g. --set "task_overrides=[control_hz=25]".
"""
import argparse
import json
import time

import numpy as np
import torch

from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2
from ssm_mbrl_ros.train.action_response import probe_action_response
from ssm_mbrl_ros.train.collector import Collector
from ssm_mbrl_ros.train.config import resolve_train_config
from ssm_mbrl_ros.train.learner import Learner
from ssm_mbrl_ros.train.sequence_buffer import SequenceBuffer


def main() -> None:
    """Train the world model alone and print probe records (JSON lines)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], help="TrainConfig override KEY=VALUE (repeatable)")
    ap.add_argument("--updates", type=int, default=600, help="world-model updates")
    ap.add_argument("--every", type=int, default=100, help="updates between probes")
    ap.add_argument("--prefill", type=int, default=8000, help="env steps collected before the first update")
    ap.add_argument("--out", help="also write the records as one JSON list here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = resolve_train_config(None, a.set).validate()
    torch.manual_seed(cfg.seed)

    def make(n, seed):
        return make_env(cfg.task, n, seed=seed, overrides=list(cfg.task_overrides))

    env = make(cfg.num_envs, cfg.seed)
    hover = env.action_spec.to_normalized(np.array([GRAVITY_MPS2, 0.0, 0.0, 0.0])).tolist()
    learner = Learner(cfg, env.obs_layout.dim, env.privileged_layout.dim, "cpu", hover_action=hover)
    buf = SequenceBuffer(cfg.num_envs, env.obs_layout.dim, 4, env.privileged_layout.dim, 10**6, cfg.seed)
    col = Collector(env, buf, seed=cfg.seed, noise_corr_s=cfg.explore_corr_s)
    while col.env_steps < a.prefill:
        col.step(learner.wm, learner.actor)
    per_update, owed, t0, out = cfg.batch_size * cfg.seq_len / cfg.train_ratio, 0.0, time.time(), []
    for u in range(1, a.updates + 1):
        m = learner.update(buf.sample(cfg.batch_size, cfg.seq_len), train_actor=False)
        owed += per_update
        while owed >= cfg.num_envs:
            col.step(learner.wm, learner.actor)
            owed -= cfg.num_envs
        if u % a.every == 0:
            learner.wm.eval()
            r2 = probe_action_response(learner.wm, make, hover)["r2"]
            learner.wm.train()
            rec = {"updates": u, "wall_s": round(time.time() - t0), **{k: round(v, 3) for k, v in r2.items()},
                   "obs_loss": round(m["obs_loss"], 3), "dyn_kl": round(m["dyn_kl"], 2)}
            print(json.dumps(rec), flush=True)
            out.append(rec)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
