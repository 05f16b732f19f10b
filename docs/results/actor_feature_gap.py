"""How differently a trained actor acts on the features of imagination and of flight (docs/learning.md section 21).

For the last 320 replayed steps of every drone of a run (its checkpoint and replay), within 0.3 m of the setpoint:
the actor's mean action on the posterior mode feature [h_t, z_t mode] (what the exported policy flies on), on
posterior samples, and on the one-step prior [h_t, prior latent at h_t] built from the previous posterior state and
the recorded action (what every imagined step after the start feeds the actor). Differences in physical units
(collective thrust m/s^2, body rates rad/s), mean and mean absolute.

Usage: python docs/results/actor_feature_gap.py RUN_DIR [RUN_DIR ...]
"""
import sys

import numpy as np
import torch

from ssm_mbrl_ros.agent.actor_critic import Actor
from ssm_mbrl_ros.train.checkpoint import load_checkpoint, world_model_from_payload

SPAN = np.array([4.9, 5.0, 5.0, 2.0])  # hover's policy action: half-spans of thrust (m/s^2) and rates (rad/s)
STEPS, NEAR_M = 320, 0.3


def load_actor(payload) -> Actor:
    """The run's live actor from its checkpoint."""
    a = payload["arch"]["actor"]
    hidden = a["hidden"] or payload["arch"]["world_model"]["hidden"]
    actor = Actor(a["feat_dim"], 4, hidden=hidden, layers=a["layers"], latent=a["latent"])
    actor.load_state_dict({k[6:]: v for k, v in payload["learner"].items() if k.startswith("actor.")})
    return actor.eval()


def gap(run: str) -> None:
    """Print the action differences of one run."""
    payload, replay = load_checkpoint(run)
    wm, actor = world_model_from_payload(payload).eval(), load_actor(payload)
    ptr, n_env = replay["ptr"], len(replay["ptr"])
    rows = lambda k: np.stack([replay[f"data.{k}"][e, ptr[e] - STEPS:ptr[e]] for e in range(n_env)])
    batch = {k: torch.as_tensor(rows(k)) for k in ("obs", "action", "is_first", "reward", "cont")}
    batch["is_first"][:, 0] = True
    near = torch.as_tensor(np.linalg.norm(rows("obs")[..., :3], axis=-1) < NEAR_M)
    torch.manual_seed(0)
    with torch.no_grad():
        mode, _ = wm.observe(batch, sample=False)
        a_mode = actor.mean_action(mode["feat"])
        sampled, _ = wm.observe(batch, sample=True)
        d_post = (actor.mean_action(sampled["feat"]) - a_mode)[near]
        start = wm.start_from({k: v[:, :-1] for k, v in mode.items()})
        with wm.rollout_context():
            _, prior_feat = wm.img_step(start, batch["action"][:, 1:].reshape(-1, 4), sample=False)
        d_prior = (actor.mean_action(prior_feat.reshape(n_env, STEPS - 1, -1)) - a_mode[:, 1:])[near[:, 1:]]
    print(f"{run}: {int(near.sum())} replayed steps within {NEAR_M} m")
    for name, d in (("posterior sample", d_post), ("one-step prior", d_prior)):
        print(f"  a({name}) - a(posterior mode), [thrust m/s^2, roll, pitch, yaw rad/s]: mean "
              f"{(d.mean(0).numpy() * SPAN).round(3)}, mean |.| {(d.abs().mean(0).numpy() * SPAN).round(3)}")


if __name__ == "__main__":
    for arg in sys.argv[1:] or sys.exit(__doc__):
        gap(arg)
