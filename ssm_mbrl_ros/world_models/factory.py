"""Build a world model by kind ('s5' -> S5WorldModel, 'rssm' -> RSSMWorldModel), or rebuild one from a checkpoint's
architecture. Kept apart from base.py so that the interface never imports its own implementations."""
from __future__ import annotations

from ssm_mbrl_ros.core.config import from_dict

from .base import WorldModel
from .config import WorldModelConfig
from .rssm import RSSMWorldModel
from .s5wm import S5WorldModel

WORLD_MODEL_CLASSES = {"s5": S5WorldModel, "rssm": RSSMWorldModel}


def world_model_from_arch(arch: dict) -> WorldModel:
    """Rebuild an (untrained) world model from WorldModel.arch()."""
    cfg = from_dict(WorldModelConfig, arch["world_model"], "checkpoint.world_model")
    return make_world_model(cfg, arch["obs_dim"], arch["action_dim"], arch["priv_dim"])


def make_world_model(cfg: WorldModelConfig, obs_dim: int, action_dim: int = 4, priv_dim: int = 0) -> WorldModel:
    """Build the world model named by cfg.kind ('s5' -> S5WorldModel, 'rssm' -> RSSMWorldModel)."""
    cfg.validate()
    cls = WORLD_MODEL_CLASSES[cfg.kind]
    return cls(cfg, obs_dim, action_dim, priv_dim)
