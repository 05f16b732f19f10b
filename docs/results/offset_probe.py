"""Offset probe: does a run's world model know how to close the offset its policy holds?

Usage: python docs/results/offset_probe.py LOGDIR [--json out.json] [--iters 150]
Flies the run's actor (posterior mean, as exported) for 160 steps from within 5 cm of the setpoint with the nominal
vehicle in still air (16 drones), then from the state at step 150 imagines 30 steps (prior mode) twice: with the
actor's own actions, and with open-loop action offsets optimised by gradient ascent on the imagined discounted reward
(the training drones' reward, the task function on decoded observations). Prints the real distance to the setpoint,
the decoded distance along both imagined paths, and both imagined returns. If the optimised path closes the gap and
the actor's path also closes it in imagination while the real drone does not move, the model (not the actor's
precision) holds the offset: imagination drifts towards the setpoint on its own.
"""
import argparse

import torch

from hold_probe import emit, fly, load_run
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.sim.tasks import training_overrides
from ssm_mbrl_ros.train.imagined_reward import decoded_observation, observation_reward

HORIZON, START_STEP = 30, 150


def imagine(learner, start: dict, prev: torch.Tensor, delta: torch.Tensor, reward_fn, sl, discount: float):
    """Imagined discounted return (N,) and decoded position error (N, H, 3) with actions actor + delta (N, H, 4)."""
    wm, actor = learner.wm, learner.actor
    c, f = start, wm.feat(start)
    rewards, pos_err = [], []
    with wm.rollout_context():
        for t in range(delta.shape[1]):
            a = (actor.mean_action(f) + delta[:, t]).clamp(-1.0, 1.0)
            c, f = wm.img_step(c, a, sample=False)
            obs = decoded_observation(wm, f)
            r = reward_fn(obs[:, None], prev[:, None], a[:, None], wm.heads.cont(f)[:, None])[:, 0]
            rewards.append(r)
            pos_err.append(obs[:, sl["pos_err"]])
            prev = a
    disc = discount ** torch.arange(delta.shape[1], dtype=delta.dtype)
    return (torch.stack(rewards, 1) * disc).sum(1), torch.stack(pos_err, 1)


def main() -> None:
    """Print (and optionally write) the offset probe of one run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logdir", help="a run directory with checkpoint.pt")
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--iters", type=int, default=150, help="gradient-ascent steps on the action offsets")
    a = ap.parse_args()
    still = ["randomization.enabled=false", "randomization.wind.enabled=false"]
    _, cfg, env, learner, _ = load_run(a.logdir, 16, still)
    collect = training_overrides(cfg.task) if cfg.collect_overrides is None else list(cfg.collect_overrides)
    train_env = make_env(cfg.task, 1, seed=5, vehicle=cfg.vehicle, overrides=list(cfg.task_overrides) + collect)
    reward_fn = observation_reward(train_env, "task")
    for p in learner.parameters():
        p.requires_grad_(False)
    sl = env.obs_layout.slices()
    flight = fly(learner, env, START_STEP + 10)
    real = flight["pos_err"].norm(dim=-1).mean(0)
    start, prev = flight["carries"][START_STEP], flight["action"][:, START_STEP - 1]
    delta = torch.zeros(16, HORIZON, 4, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=0.02)
    with torch.no_grad():
        ret0, pe0 = imagine(learner, start, prev, delta, reward_fn, sl, cfg.discount)
    for _ in range(a.iters):
        ret, _ = imagine(learner, start, prev, delta, reward_fn, sl, cfg.discount)
        delta.grad = torch.autograd.grad(-ret.sum(), delta)[0]
        opt.step()
    with torch.no_grad():
        ret1, pe1 = imagine(learner, start, prev, delta, reward_fn, sl, cfg.discount)
    steps = (0, 10, HORIZON - 1)
    out = {"run": str(a.logdir), "real_distance_m": {str(t): float(real[t]) for t in (0, 50, 100, START_STEP)},
           "imagined_distance_m_actor": {str(k + 1): float(pe0[:, k].norm(dim=-1).mean()) for k in steps},
           "imagined_distance_m_optimised": {str(k + 1): float(pe1[:, k].norm(dim=-1).mean()) for k in steps},
           "imagined_return_actor": float(ret0.mean()), "imagined_return_optimised": float(ret1.mean()),
           "max_abs_action_offset": float(delta.detach().abs().max())}
    emit(out, a.json)


if __name__ == "__main__":
    main()
