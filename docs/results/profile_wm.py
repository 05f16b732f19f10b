"""Where a world-model update's time goes: the sequence core (S5 scan vs RSSM loop) vs the parts both models share.

Times forward + backward of each part of `WorldModel.loss` on the `bench wm` batch (B = 16, `small` preset), using the
models' own modules, timed as `bench wm` times them (interleaved, fastest of the repeats): the shared part (encoder,
prior head, heads, losses on all B x T steps at once) and the sequence core (S5WM: input projection + parallel scan;
RSSM: the T-step loop of input layer + GRU + posterior head). The update speedup S5WM / RSSM cannot exceed
(shared + RSSM core) / shared however fast the scan is.
Use: python docs/results/profile_wm.py [--lengths 64 256] [--repeats 5] [--json PATH]
"""
from __future__ import annotations

import argparse
import json

import torch

from ssm_mbrl_ros.bench.wm import HOVER_OBS_DIM, PRIV_DIM, _synthetic_batch, _time_interleaved
from ssm_mbrl_ros.world_models.factory import make_world_model
from ssm_mbrl_ros.world_models.config import wm_preset


def _parts(kind: str, B: int, T: int):
    """(shared fn, core fn) for one world model: each runs forward + backward of its part."""
    torch.manual_seed(0)
    wm = make_world_model(wm_preset("small", kind=kind), HOVER_OBS_DIM, 4, PRIV_DIM)
    batch = _synthetic_batch(B, T, HOVER_OBS_DIM, PRIV_DIM, "cpu")
    with torch.no_grad():
        states, _ = wm.observe(batch)  # realistic h, z and logits for the shared part's inputs
    h, z = states["h"].detach().requires_grad_(), states["z"].detach()

    def shared():
        post = wm.latent_dist(wm.post_head(wm.embed(batch["obs"]))) if kind == "s5" else states["post_logits"]
        prior = wm.latent_dist(wm.prior_head(h))
        feat = torch.cat([h, z], -1)
        parts = wm.heads.losses(feat, batch)
        loss = sum(v.mean() for v in parts.values()) + (post.softmax(-1) * (post - prior).clamp(-5, 5)).mean()
        loss.backward()

    def core():
        if kind == "s5":
            x = wm.in_proj(torch.cat(wm.prev_inputs(batch, z, wm.initial(B)), -1))
            y, _ = wm.seq(x, wm.initial(B)["ssm"], batch["is_first"], return_states=True)
            y.square().mean().backward()
        else:
            embed = wm.embed(batch["obs"])
            hh, zz, out = wm.initial(B)["h"], wm.initial(B)["z"], []
            for t in range(T):
                hh = wm._core(hh, zz, batch["action"][:, t])
                post = wm._post(hh, embed[:, t])
                zz = wm.latent_sample(post)
                out.append(hh)
            torch.stack(out, 1).square().mean().backward()

    return shared, core


def main() -> None:
    """Print (and optionally write) the per-part times and the speedup ceiling."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 256], help="sequence lengths T")
    ap.add_argument("--batch", type=int, default=16, help="batch size B")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per part (fastest kept, parts interleaved "
                                                           "as in `bench wm`)")
    ap.add_argument("--json", default=None, help="write the result here")
    args = ap.parse_args()
    out = {}
    for T in args.lengths:
        fns = {}
        for kind in ("s5", "rssm"):
            fns[f"{kind}_shared_ms"], fns[f"{kind}_core_ms"] = _parts(kind, args.batch, T)
        row = {k: round(v, 1) for k, v in _time_interleaved(fns, args.repeats, torch.device("cpu")).items()}
        row["speedup_now"] = round((row["rssm_shared_ms"] + row["rssm_core_ms"])
                                   / (row["s5_shared_ms"] + row["s5_core_ms"]), 2)
        row["speedup_ceiling_free_scan"] = round((row["rssm_shared_ms"] + row["rssm_core_ms"]) / row["s5_shared_ms"], 2)
        out[str(T)] = row
        print(f"T={T}: {row}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch": args.batch, "preset": "small", "threads": torch.get_num_threads(), "by_T": out}, f,
                      indent=2)


if __name__ == "__main__":
    main()
