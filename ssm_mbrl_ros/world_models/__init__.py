"""World models: S5 state-space world model and the DreamerV3 RSSM baseline behind one interface."""
from .base import WorldModel
from .config import WorldModelConfig, wm_preset
from .rssm import RSSMWorldModel
from .s5wm import S5WorldModel
from .factory import make_world_model, world_model_from_arch

__all__ = ["WorldModel", "WorldModelConfig", "wm_preset", "make_world_model", "world_model_from_arch",
           "S5WorldModel", "RSSMWorldModel"]
