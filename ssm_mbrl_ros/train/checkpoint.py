"""Checkpoints: networks + optimisers + counters + the resolved config and architecture, and the replay.

Files in the log directory, each written to a temporary name and renamed (a crash mid-write
never corrupts the previous checkpoint):
    checkpoint.pt   torch: config, arch, learner state, optimiser state, counters, RNG states
    replay.npz      the sequence buffer (resume continues with the same experience)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ssm_mbrl_ros.core.config import ConfigError

CHECKPOINT, REPLAY = "checkpoint.pt", "replay.npz"
# fields that may change between an interrupted run and its resume (budgets, logging, device)
RESUMABLE = {"minutes", "max_env_steps", "eval_every_min", "eval_episodes", "checkpoint_every_min",
             "target_success", "log_every_updates", "threads", "device"}


def save_checkpoint(logdir: Path, payload: dict, replay_state: dict | None) -> Path:
    """Atomically write checkpoint.pt (and replay.npz when given); returns the checkpoint path."""
    logdir.mkdir(parents=True, exist_ok=True)
    if replay_state is not None:
        tmp = logdir / f".{REPLAY}.{os.getpid()}.tmp.npz"
        np.savez(tmp, **replay_state)
        tmp.replace(logdir / REPLAY)
    tmp = logdir / f".{CHECKPOINT}.{os.getpid()}.tmp"
    torch.save(payload, tmp)
    tmp.replace(logdir / CHECKPOINT)
    return logdir / CHECKPOINT


def learner_payload(cfg, learner, **extra) -> dict:
    """The checkpoint payload every trainer writes: resolved config, architecture, networks, optimisers, plus extra."""
    from ssm_mbrl_ros.core.config import to_dict

    return {"config": to_dict(cfg), "arch": learner.arch(), "learner": learner.state_dict(),
            "optim": learner.optim_state(), **extra}


def restore_learner(logdir: Path, cfg, learner, device="cpu") -> tuple[dict, dict | None]:
    """Load logdir's checkpoint into learner after checking it is compatible with cfg; (payload, replay or None)."""
    from ssm_mbrl_ros.core.config import field_defaults, to_dict
    from ssm_mbrl_ros.world_models.config import WorldModelConfig

    payload, replay = load_checkpoint(logdir, device)
    wm_defaults = field_defaults(WorldModelConfig)
    check_compatible(payload["config"], payload["arch"], to_dict(cfg), learner.arch(),
                     cfg_defaults={**field_defaults(type(cfg)), "world_model": wm_defaults},
                     arch_defaults={**learner.arch_defaults(), "world_model": wm_defaults})
    learner.load_state_dict(payload["learner"])
    learner.load_optim_state(payload["optim"])
    return payload, replay


def world_model_from_payload(payload: dict):
    """The world model of a loaded checkpoint payload (`ssm-mbrl train`'s checkpoint.pt or train-offline's
    world_model.pt), rebuilt from its arch with its weights."""
    from ssm_mbrl_ros.world_models.base import world_model_from_arch

    wm = world_model_from_arch(payload["arch"])
    if "world_model_state" in payload:  # world_model.pt from train-offline
        wm.load_state_dict(payload["world_model_state"])
    else:  # checkpoint.pt from `ssm-mbrl train`: the learner's wm.* entries
        wm.load_state_dict({k[3:]: v for k, v in payload["learner"].items() if k.startswith("wm.")})
    return wm


def load_checkpoint(logdir: Path, device="cpu") -> tuple[dict, dict | None]:
    """(payload, replay state or None) from a log directory; ConfigError when there is none."""
    path = Path(logdir) / CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"--resume: no {CHECKPOINT} in {logdir}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise ConfigError(f"--resume: {path} is not a readable checkpoint: {e}") from e
    replay = None
    if (Path(logdir) / REPLAY).is_file():
        with np.load(Path(logdir) / REPLAY) as z:
            replay = {k: z[k] for k in z.files}
    return payload, replay


def _diff(a, b, prefix="", defaults=None) -> list[str]:
    """Human-readable differences between two nested dicts/values (checkpoint a, now b).

    A key the checkpoint lacks is no difference when its value now equals defaults[key]: an option added after the
    checkpoint was written, left at the default that keeps the old behaviour.
    """
    defaults = defaults if isinstance(defaults, dict) else {}
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                if k in defaults and b[k] == defaults[k]:
                    continue
                out.append(f"{prefix}{k}: absent in checkpoint, {b[k]!r} now")
            elif k not in b:
                out.append(f"{prefix}{k}: {a[k]!r} in checkpoint, absent now")
            else:
                out += _diff(a[k], b[k], f"{prefix}{k}.", defaults.get(k))
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} in checkpoint, {b!r} now"]


def check_compatible(saved_cfg: dict, saved_arch: dict, cfg: dict, arch: dict, cfg_defaults: dict | None = None,
                     arch_defaults: dict | None = None) -> None:
    """Raise ConfigError listing every config/architecture difference that prevents resuming (keys the checkpoint
    lacks are fine when they are at their defaults)."""
    cfg_diff = [d for d in _diff({k: v for k, v in saved_cfg.items() if k not in RESUMABLE},
                                 {k: v for k, v in cfg.items() if k not in RESUMABLE}, "config.", cfg_defaults)]
    arch_diff = _diff(saved_arch, arch, "arch.", arch_defaults)
    if cfg_diff or arch_diff:
        raise ConfigError("cannot resume: the checkpoint is incompatible with this run:\n  "
                          + "\n  ".join(cfg_diff + arch_diff))
