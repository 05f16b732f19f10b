"""World-model benchmark: S5WM vs RSSM update time (forward + backward + Adam) at equal sizes, same run.

Also times imagination (horizon steps of the prior from all B*T posterior states, actions from a
tiny linear actor, no gradient); forward + backward of `observe` alone (the part S5 parallelises;
the rest of an update, decoder and heads, costs the same for both); and the memory of one
update: CUDA max_memory_allocated growth on a GPU, otherwise the activation memory autograd
saves for backward (see _Memory).
"""
from __future__ import annotations

import platform
import time
from dataclasses import asdict, replace

import torch
from torch import nn

from ssm_mbrl_ros.world_models.base import WorldModel
from ssm_mbrl_ros.world_models.factory import make_world_model
from ssm_mbrl_ros.world_models.config import WorldModelConfig, wm_preset

HOVER_OBS_DIM = 22  # hover task: position error 3, velocity 3, rotation 9, rates 3, last action 4
PRIV_DIM = 25  # state 17, parameter scales 5, wind 3


def _synthetic_batch(B: int, T: int, obs_dim: int, priv_dim: int, device, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    is_first = torch.rand(B, T, generator=g) < 1.0 / 200  # ~one episode start per 2 s at 100 Hz
    is_first[:, 0] = True
    batch = {
        "obs": torch.randn(B, T, obs_dim, generator=g), "action": torch.rand(B, T, 4, generator=g) * 2 - 1,
        "reward": torch.randn(B, T, generator=g), "cont": torch.ones(B, T), "is_first": is_first,
        "privileged": torch.randn(B, T, priv_dim, generator=g), "priv_mask": torch.ones(B, T, dtype=torch.bool),
    }
    return {k: v.to(device) for k, v in batch.items()}


class _Memory:
    """Memory of one update (MiB): CUDA peak allocation growth, or on CPU the bytes autograd saves for backward.

    The CPU allocator keeps no peak statistics (and RSS never shrinks between cases), so on CPU
    the activation memory held for backward (distinct storages) is the comparable quantity.
    """

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def measure(self, fn) -> float:
        """Run fn once and return its memory in MiB."""
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fn()
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - base) / 2**20
        seen: dict[int, int] = {}

        def pack(t):
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        return sum(seen.values()) / 2**20


def _time_interleaved(fns: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Fastest of `repeats` timed calls per function, in ms, after one warm-up each.

    The functions alternate (A, B, A, B, ...) so both see the same load on a shared machine; the
    minimum is robust to other processes.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(repeats + 1):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            if i:
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: min(v) for k, v in times.items()}


def _closures(model: WorldModel, batch: dict, horizon: int, device, compile_mode: str = "off") -> tuple:
    """(update, observe, imagine) callables: an Adam world-model step (its loss compiled as the trainer compiles it
    when compile_mode is not 'off'); forward + backward of observe only (encoder, posterior, sequence model, prior:
    the part S5 parallelises); a no-grad rollout."""
    from ssm_mbrl_ros.train.learner import compiled

    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    actor = nn.Linear(model.feat_dim, model.action_dim).to(device)
    loss_terms = compiled(model.loss_terms, compile_mode)

    def update():
        loss, _, _, _ = loss_terms(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def observe():
        states, _ = model.observe(batch)
        (states["feat"].square().mean() + states["prior_logits"].mean()).backward()
        model.zero_grad(set_to_none=True)

    with torch.no_grad():
        start = model.start_from(model.observe(batch)[0])  # (B*T, X) starts

    def imagine():
        with torch.no_grad():
            model.imagine(start, lambda f: torch.tanh(actor(f)), horizon)

    return update, observe, imagine


def _full_update(cfg: WorldModelConfig, kind: str, data: dict, horizon: int, dev, seed: int,
                 compile_mode: str = "off"):
    """A closure running one trainer update (world model + actor-critic in imagination from 512 starts), compiled
    as `ssm-mbrl train --set compile=MODE` compiles it."""
    from ssm_mbrl_ros.core.config import to_dict
    from ssm_mbrl_ros.train.config import TrainConfig
    from ssm_mbrl_ros.train.learner import Learner

    torch.manual_seed(seed)
    wm = {k: v for k, v in to_dict(cfg).items() if k != "kind"}
    tc = TrainConfig(wm=kind, preset="default", world_model=wm, horizon=horizon, imag_starts=512,
                     actor_warmup_updates=0, device=str(dev), compile=compile_mode)
    learner = Learner(tc, data["obs"].shape[-1], data["privileged"].shape[-1], dev)
    batch = {k: v.cpu().numpy() for k, v in data.items() if k in ("obs", "action", "reward", "cont", "is_first",
                                                                  "privileged")}
    return lambda: learner.update(batch), learner


def _update_split(learner, fn, repeats: int) -> dict[str, float]:
    """Median time (ms) of each part of a trainer update (world_model, imagine, actor, critic) over `repeats` calls;
    "actor" includes the backward pass through the imagined rollout when the actor learns from model gradients;
    "optimizer_steps" is the three Adam steps, already counted inside world_model, actor and critic."""
    learner.part_ms = {}
    rows = []
    for _ in range(repeats):
        fn()
        rows.append(dict(learner.part_ms))
    learner.part_ms = None
    return {k: sorted(r[k] for r in rows)[len(rows) // 2] for k in rows[0]}


def _time_compiled(out: dict, cfg: WorldModelConfig, data: dict, horizon: int, dev, seed: int, mode: str,
                   repeats: int, T: int) -> None:
    """Add the compiled world-model update and full trainer update of both models at length T to out."""
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    kinds, t = ("s5", "rssm"), str(T)
    updates, fulls = {}, {}
    for kind in kinds:
        torch.manual_seed(seed)
        model = make_world_model(replace(cfg, kind=kind), data["obs"].shape[-1], 4, data["privileged"].shape[-1])
        updates[kind] = _closures(model.to(dev), data, horizon, dev, mode)[0]
        fulls[kind] = _full_update(cfg, kind, data, horizon, dev, seed, mode)
        for name, fn in (("wm_update", updates[kind]), ("full_update", fulls[kind][0])):
            t0 = time.perf_counter()
            fn()  # compiles
            sync()
            out.setdefault("compile_s", {}).setdefault(name, {}).setdefault(kind, {})[t] = time.perf_counter() - t0
    for kind, ms in _time_interleaved(updates, repeats, dev).items():
        out.setdefault(f"{kind}_compiled_ms", {})[t] = ms
    out.setdefault("speedup_compiled", {})[t] = out["rssm_compiled_ms"][t] / out["s5_compiled_ms"][t]
    for kind, ms in _time_interleaved({k: f for k, (f, _) in fulls.items()}, repeats, dev).items():
        out.setdefault("full_update_compiled_ms", {}).setdefault(kind, {})[t] = ms
    for kind, (fn, learner) in fulls.items():
        out.setdefault("full_update_compiled_split_ms", {}).setdefault(kind, {})[t] = _update_split(learner, fn, repeats)
    out.setdefault("full_update_compiled_speedup", {})[t] = (out["full_update_compiled_ms"]["rssm"][t]
                                                             / out["full_update_compiled_ms"]["s5"][t])


def bench_wm(batch: int = 16, lengths=(64, 256), cfg: WorldModelConfig | None = None, horizon: int = 15,
             repeats: int = 5, device: str = "cpu", obs_dim: int = HOVER_OBS_DIM, priv_dim: int = PRIV_DIM,
             seed: int = 0, compile_mode: str = "off") -> dict:
    """Time one world-model update and imagination for S5WM and RSSM at equal sizes; JSON-ready dict. With
    compile_mode (a TrainConfig.compile mode other than 'off') the world-model update and the full trainer update are
    also timed compiled (keys *_compiled*; compile_s: the first call of each, compilation included)."""
    cfg = cfg or wm_preset("small")
    dev = torch.device(device)
    kinds = ("s5", "rssm")
    out = {"s5_ms": {}, "rssm_ms": {}, "speedup": {}, "imagine_ms": {k: {} for k in kinds},
           "observe_ms": {k: {} for k in kinds}, "observe_speedup": {}, "peak_mem_mb": {k: {} for k in kinds}}
    for T in lengths:
        data = _synthetic_batch(batch, T, obs_dim, priv_dim, dev, seed)
        updates, observes, imagines = {}, {}, {}
        for kind in kinds:
            torch.manual_seed(seed)
            model = make_world_model(replace(cfg, kind=kind), obs_dim, 4, priv_dim).to(dev)
            updates[kind], observes[kind], imagines[kind] = _closures(model, data, horizon, dev)
            out["peak_mem_mb"][kind][str(T)] = _Memory(dev).measure(updates[kind])
        for kind, ms in _time_interleaved(updates, repeats, dev).items():
            out[f"{kind}_ms"][str(T)] = ms
        for name, fns in (("observe_ms", observes), ("imagine_ms", imagines)):
            for kind, ms in _time_interleaved(fns, repeats, dev).items():
                out[name][kind][str(T)] = ms
        fulls = {kind: _full_update(cfg, kind, data, horizon, dev, seed) for kind in kinds}
        for kind, ms in _time_interleaved({k: f for k, (f, _) in fulls.items()}, repeats, dev).items():
            out.setdefault("full_update_ms", {}).setdefault(kind, {})[str(T)] = ms
        for kind, (fn, learner) in fulls.items():
            out.setdefault("full_update_split_ms", {}).setdefault(kind, {})[str(T)] = _update_split(learner, fn, repeats)
        out.setdefault("full_update_speedup", {})[str(T)] = (out["full_update_ms"]["rssm"][str(T)]
                                                             / out["full_update_ms"]["s5"][str(T)])
        if compile_mode != "off":
            _time_compiled(out, cfg, data, horizon, dev, seed, compile_mode, repeats, T)
        out["speedup"][str(T)] = out["rssm_ms"][str(T)] / out["s5_ms"][str(T)]
        out["observe_speedup"][str(T)] = out["observe_ms"]["rssm"][str(T)] / out["observe_ms"]["s5"][str(T)]
        del updates, observes, imagines
    params = {kind: sum(p.numel() for p in make_world_model(replace(cfg, kind=kind), obs_dim, 4, priv_dim).parameters())
              for kind in kinds}
    out.update({
        "batch": batch, "lengths": list(lengths), "horizon": horizon, "imagine_starts": "B*T", "full_update": "trainer update: world model + actor-critic (512 imagination starts)",
        "repeats": repeats, "timing": "fastest of repeats after one warm-up, S5 and RSSM runs interleaved",
        "memory": ("cuda max_memory_allocated growth during one update" if dev.type == "cuda"
                   else "tensors saved for backward in one update (distinct storages)"),
        "config": {k: v for k, v in asdict(cfg).items() if k != "kind"}, "params": params,
        "compile_mode": compile_mode, "obs_dim": obs_dim, "priv_dim": priv_dim, "device": device, "dtype": str(torch.get_default_dtype()),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    })
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(bench_wm(), indent=2))
