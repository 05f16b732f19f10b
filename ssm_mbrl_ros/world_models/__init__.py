"""World models: S5 state-space world model and the DreamerV3 RSSM baseline behind one interface."""
from .base import WorldModel, make_world_model, world_model_from_arch
from .config import WorldModelConfig, wm_preset
from .rssm import RSSMWorldModel
from .s5wm import S5WorldModel

__all__ = ["WorldModel", "WorldModelConfig", "wm_preset", "make_world_model", "world_model_from_arch",
           "S5WorldModel", "RSSMWorldModel"]
