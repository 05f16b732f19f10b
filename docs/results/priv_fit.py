"""How much of the episode's disturbance a trained world model carries: R^2 of its privileged-state prediction.

Usage: python docs/results/priv_fit.py LOGDIR [--window 64]
Reads LOGDIR/checkpoint.pt and LOGDIR/replay.npz (a hover run with the privileged head), cuts
each drone's most recent replay rows into windows that start from a zero state (as training
does), and prints, per vehicle-parameter scale and wind component, the fraction of its
variance (symlog) that the privileged head explains over the second half of the windows.
Replay rows are training data, so this is an upper bound on what the model infers.
"""
import argparse

import torch

from ssm_mbrl_ros.sim.env import PRIVILEGED_LAYOUT
from ssm_mbrl_ros.sim.randomization import PARAM_NAMES
from ssm_mbrl_ros.train.checkpoint import load_checkpoint, world_model_from_payload
from ssm_mbrl_ros.world_models.distributions import symlog

# (name, index into the privileged vector) for the vehicle scales and the wind, from the env's layout
_SLICES = PRIVILEGED_LAYOUT.slices()
FEATURES = [(name, _SLICES["param_scales"].start + i) for i, name in enumerate(PARAM_NAMES)] + [
    (f"wind_{axis}", _SLICES["wind"].start + i) for i, axis in enumerate("xyz")]


def main() -> None:
    """Print R^2 per privileged feature."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("logdir", help="training log directory with checkpoint.pt and replay.npz")
    p.add_argument("--window", type=int, default=64, help="steps per window (the training seq_len)")
    args = p.parse_args()
    payload, replay = load_checkpoint(args.logdir)
    wm = world_model_from_payload(payload)
    wm.eval()
    T, end = args.window, int(replay["ptr"].min())
    n = end // T * T
    keys = ("obs", "action", "reward", "cont", "is_first", "privileged")
    batch = {k: torch.as_tensor(replay["data." + k][:, end - n:end]) for k in keys}
    batch = {k: v.reshape(-1, T, *v.shape[2:]) for k, v in batch.items()}
    batch["is_first"] = batch["is_first"].bool()
    with torch.no_grad():
        states, _ = wm.observe(batch, sample=False)
        pred = wm.heads.priv_head(states["feat"])
        norm = getattr(wm.heads, "priv_norm", None)
        if norm is not None:
            pred = pred * norm.std().float() + norm.mean.float()
        target = symlog(batch["privileged"].float())
    late = slice(T // 2, None)
    scores = []
    for name, d in FEATURES:
        t, q = target[:, late, d], pred[:, late, d]
        scores.append(f"{name} {1.0 - float((t - q).square().mean() / t.var()):.2f}")
    print(f"{args.logdir}: R^2 over steps {T // 2}-{T - 1} of {batch['obs'].shape[0]} windows: " + ", ".join(scores))


if __name__ == "__main__":
    main()
