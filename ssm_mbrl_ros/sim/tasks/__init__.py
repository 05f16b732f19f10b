"""Task registry: names -> (task class, config class, YAML preset); `_partial` selects partial observation.

Task configs load from config/tasks/<family>.yaml, found in the source tree (config/ next to the
package) or in an installed share dir (<prefix>/share/ssm_mbrl_ros/config/tasks), then dotted
overrides are applied (e.g. "speed_mps=4.0", "randomization.enabled=false").
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from ...core.config import ConfigError, apply_overrides, from_dict, load_yaml
from .base import Task, TaskConfig
from .hover import HoverConfig, HoverTask
from .racing import RacingConfig, RacingTask
from .tracking import TrackingConfig, TrackingTask

PACKAGE = "ssm_mbrl_ros"
PARTIAL_SUFFIX = "_partial"

# family name -> (task class, config class, preset file stem)
FAMILIES = {
    "hover": (HoverTask, HoverConfig, "hover"),
    "circle": (TrackingTask, TrackingConfig, "circle"),
    "figure8": (TrackingTask, TrackingConfig, "figure8"),
    "racing": (RacingTask, RacingConfig, "racing"),
}


def list_tasks() -> list[str]:
    """All valid task names: each family and its `_partial` variant."""
    return [name for fam in FAMILIES for name in (fam, fam + PARTIAL_SUFFIX)]


def split_task_name(name: str) -> tuple[str, bool]:
    """(family, partial) of a task name; unknown names raise ConfigError listing the valid ones."""
    partial = name.endswith(PARTIAL_SUFFIX)
    family = name[: -len(PARTIAL_SUFFIX)] if partial else name
    if family not in FAMILIES:
        raise ConfigError(f"unknown task {name!r}; valid tasks: {list_tasks()}")
    return family, partial


def task_config_dirs() -> list[Path]:
    """Folders searched for task presets: the source tree, then installed share dirs."""
    dirs = [Path(__file__).resolve().parents[3] / "config" / "tasks"]
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix]):
        dirs.append(Path(prefix) / "share" / PACKAGE / "config" / "tasks")
    parents = Path(__file__).resolve().parents
    if len(parents) > 6:  # colcon: <prefix>/lib/pythonX/site-packages/ssm_mbrl_ros/sim/tasks
        dirs.append(parents[6] / "share" / PACKAGE / "config" / "tasks")
    return list(dict.fromkeys(dirs))


def task_config_path(family: str) -> Path | None:
    """The preset YAML of a task family, or None when none is installed."""
    for d in task_config_dirs():
        path = d / f"{FAMILIES[family][2]}.yaml"
        if path.is_file():
            return path
    return None


def load_task_config(name: str, overrides=(), path: str | Path | None = None) -> TaskConfig:
    """Task config of `name` from its preset (or `path`), with `_partial` and dotted overrides applied."""
    family, partial = split_task_name(name)
    cfg_cls = FAMILIES[family][1]
    path = Path(path) if path is not None else task_config_path(family)
    data, source = ({}, f"{family} defaults") if path is None else (load_yaml(path), str(path))
    if partial:
        data = dict(data, observation="partial")
    if family in ("circle", "figure8"):
        data.setdefault("trajectory", family)
    data = apply_overrides(data, list(overrides))
    cfg = from_dict(cfg_cls, data, source)
    if family in ("circle", "figure8") and cfg.trajectory != family:
        raise ConfigError(f"{source}.trajectory: task {name!r} needs trajectory {family!r}, got {cfg.trajectory!r}")
    return cfg


def make_task(name: str, num_envs: int, *, device="cpu", dtype=torch.float32, overrides=(),
              config: TaskConfig | None = None) -> Task:
    """Build task `name` for num_envs envs (config from its preset + overrides unless given)."""
    family, _ = split_task_name(name)
    cfg = config if config is not None else load_task_config(name, overrides)
    return FAMILIES[family][0](cfg, num_envs, device=device, dtype=dtype)


def training_overrides(name: str) -> list[str]:
    """The overrides a trainer applies to its own drones of task `name` by default (Task.training_overrides)."""
    family, _ = split_task_name(name)
    return list(FAMILIES[family][0].training_overrides)


__all__ = ["FAMILIES", "Task", "TaskConfig", "list_tasks", "load_task_config", "make_task", "split_task_name",
           "task_config_path", "training_overrides"]
