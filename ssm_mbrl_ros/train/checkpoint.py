"""Checkpoints: networks + optimisers + counters + the resolved config and architecture, and the replay.

Files in the log directory, written as one consistent pair:
    replay-NNNNNN.npz   the sequence buffer of checkpoint generation NNNNNN (resume continues with the same
                        experience); it also stores its generation
    checkpoint.pt       torch: config, arch, learner state, optimiser state, counters, RNG states, the generation
                        and the name of its replay file

Each file goes to a temporary name, is flushed to disk (fsync) and renamed; the checkpoint's rename is the commit
point and comes last. A kill at any moment leaves the previous checkpoint with its own replay file, or the new pair;
never a checkpoint with another generation's replay (resume checks). Older replay files and temporary files left by
a killed save are removed after the commit, and on the next save.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from ssm_mbrl_ros.core.config import ConfigError

CHECKPOINT, LEGACY_REPLAY = "checkpoint.pt", "replay.npz"
_REPLAY_RE = re.compile(r"replay-(\d{6,})\.npz")
_TEMP_RE = re.compile(r"\.(checkpoint\.pt|replay-\d+\.npz)\.\d+\.tmp(\.npz)?")
# fields that may change between an interrupted run and its resume (budgets, logging, device)
RESUMABLE = {"minutes", "max_env_steps", "eval_every_min", "eval_episodes", "checkpoint_every_min",
             "target_success", "log_every_updates", "threads", "device", "compile_physics"}


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _generation(logdir: Path) -> int:
    """The newest generation on disk (checkpoint or replay file), 0 when none."""
    gens = [int(m.group(1)) for p in logdir.iterdir() if (m := _REPLAY_RE.fullmatch(p.name))]
    return max(gens, default=0)


def remove_stale_files(logdir: Path, keep_replay: str | None) -> None:
    """Delete temporary files of interrupted saves and every replay file but keep_replay."""
    for p in logdir.iterdir():
        if _TEMP_RE.fullmatch(p.name) or (_REPLAY_RE.fullmatch(p.name) and p.name != keep_replay):
            p.unlink(missing_ok=True)


def save_checkpoint(logdir: Path, payload: dict, replay_state: dict | None) -> Path:
    """Write checkpoint.pt (and its replay file when given) as one consistent pair; returns the checkpoint path."""
    logdir.mkdir(parents=True, exist_ok=True)
    gen = _generation(logdir) + 1
    payload = {**payload, "generation": gen, "replay_file": None}
    if replay_state is not None:
        name = f"replay-{gen:06d}.npz"
        tmp = logdir / f".{name}.{os.getpid()}.tmp.npz"
        np.savez(tmp, generation=np.int64(gen), **replay_state)
        _fsync_file(tmp)
        tmp.replace(logdir / name)
        payload["replay_file"] = name
    tmp = logdir / f".{CHECKPOINT}.{os.getpid()}.tmp"
    torch.save(payload, tmp)
    _fsync_file(tmp)
    tmp.replace(logdir / CHECKPOINT)  # the commit point
    _fsync_dir(logdir)
    remove_stale_files(logdir, payload["replay_file"])
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
    from ssm_mbrl_ros.world_models.factory import world_model_from_arch

    wm = world_model_from_arch(payload["arch"])
    if "world_model_state" in payload:  # world_model.pt from train-offline
        wm.load_state_dict(payload["world_model_state"])
    else:  # checkpoint.pt from `ssm-mbrl train`: the learner's wm.* entries
        wm.load_state_dict({k[3:]: v for k, v in payload["learner"].items() if k.startswith("wm.")})
    return wm


def load_checkpoint(logdir: Path, device="cpu") -> tuple[dict, dict | None]:
    """(payload, replay state or None) from a log directory; ConfigError when there is none, when it is not a
    checkpoint (it is loaded with weights_only=True: a file cannot run code) or when its replay file is missing or
    of another generation."""
    logdir = Path(logdir)
    path = logdir / CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"--resume: no {CHECKPOINT} in {logdir}")
    payload = load_torch_file(path, device, "--resume")
    if not isinstance(payload, dict) or "config" not in payload:
        raise ConfigError(f"--resume: {path} is not a training checkpoint")
    name = payload.get("replay_file", LEGACY_REPLAY if "generation" not in payload else None)
    if name is None or not (logdir / name).is_file():
        if "generation" in payload and name is not None:
            raise ConfigError(f"--resume: {path} names replay file {name}, which is missing")
        return payload, None
    with np.load(logdir / name) as z:
        replay = {k: z[k] for k in z.files if k != "generation"}
        gen = int(z["generation"]) if "generation" in z.files else None
    if gen != payload.get("generation"):
        raise ConfigError(f"--resume: {logdir / name} is generation {gen}, the checkpoint {payload.get('generation')}")
    return payload, replay


def load_torch_file(path, device="cpu", what: str = "checkpoint"):
    """torch.load with weights_only=True (tensors, numbers, strings and containers only: a pickle that would run
    code is refused without running); ConfigError naming the file when it is not such a file."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - a truncated, foreign or malicious file
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{what}: {path} is not a readable checkpoint ({first})") from None


def replay_path(logdir: Path) -> Path | None:
    """The replay file the current checkpoint of logdir pairs with (None when it has none)."""
    payload = load_torch_file(Path(logdir) / CHECKPOINT)
    name = payload.get("replay_file", LEGACY_REPLAY if "generation" not in payload else None)
    return None if name is None else Path(logdir) / name


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
