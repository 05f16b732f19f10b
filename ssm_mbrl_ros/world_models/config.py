"""World-model configuration: one dataclass for S5WM and the RSSM baseline, plus size presets.

`kind` picks the sequence model ("s5" or "rssm"); everything else (encoder, latents, heads,
losses) is shared, so `--wm s5|rssm` is the only difference between the two at equal sizes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ssm_mbrl_ros.core.config import ConfigError, doc, require_positive

WORLD_MODEL_KINDS = ("s5", "rssm")


@dataclass
class WorldModelConfig:
    """Architecture and loss weights of the world model (S5WM or RSSM)."""

    kind: Literal["s5", "rssm"] = doc("sequence model: 's5' (parallel scan) or 'rssm' (DreamerV3 GRU)", default="s5")
    latent_kind: Literal["categorical", "gaussian"] = doc(
        "stochastic latent: 'categorical' (G one-hot variables of K classes, DreamerV3) or 'gaussian' (G real "
        "variables with a learned diagonal std: small state changes such as attitude integrating body rates over one "
        "step survive prediction; docs/learning.md section 8)", default="categorical")
    latent_groups: int = doc("number of latent variables (G): categoricals, or Gaussian dimensions", default=32)
    latent_classes: int = doc("classes per categorical latent (K; unused by a Gaussian latent)", default=32)
    latent_min_std: float = doc("lower bound of a Gaussian latent's std (posterior and prior)", default=0.1)
    deter: int = doc("deterministic size: S5 d_model, or the RSSM GRU hidden size", default=512)
    s5_state: int = doc("S5 state size P per layer (even; P/2 complex modes)", default=128)
    s5_layers: int = doc("number of stacked S5 blocks", default=2)
    s5_blocks: int = doc("block-diagonal HiPPO blocks in each S5 layer's initialisation", default=1)
    hidden: int = doc("width of the encoder, decoder, head and latent MLPs", default=512)
    mlp_layers: int = doc("hidden layers of the encoder and decoder MLPs", default=2)
    head_layers: int = doc("hidden layers of the reward, continue, privileged and latent MLPs", default=1)
    latent_feature: Literal["onehot", "probs"] = doc(
        "what the sequence model, the heads and the actor read of each categorical latent: 'onehot' (a straight-through "
        "one-hot sample, DreamerV3) or 'probs' (its probabilities: a continuous code, so small state changes such as "
        "attitude integrating body rates survive one-step prediction instead of rounding to the same class)",
        default="onehot")
    unimix: float = doc("uniform mixture on latent categoricals (DreamerV3: 0.01)", default=0.01)
    free_nats: float = doc("KL free nats, per (summed over latent groups) KL term", default=1.0)
    dyn_scale: float = doc("weight of KL(sg(posterior) || prior), trains the prior", default=0.5)
    rep_scale: float = doc("weight of KL(posterior || sg(prior)), trains the representation", default=0.1)
    obs_scale: float = doc("weight of the symlog-MSE observation reconstruction loss", default=1.0)
    reward_scale: float = doc("weight of the two-hot reward loss", default=1.0)
    cont_scale: float = doc("weight of the continue (1 - terminal) BCE loss", default=1.0)
    priv_scale: float = doc("weight of the symlog-MSE privileged-state loss (where the batch has it); small because "
                            "part of the privileged vector (absolute position, rotor speeds) is barely observable",
                            default=0.1)
    priv_standardize: bool = doc("standardise each privileged feature (running mean and std of its symlog) before "
                                 "the privileged loss, so small-spread features (vehicle parameter scales, wind) "
                                 "weigh as much as large ones (rotor speeds)", default=False)
    prior_heads_scale: float = doc(
        "weight of the observation, reward and continue losses evaluated on the prior feature [h_t, prior latent]: "
        "trains the sequence model and prior to predict the next step in observation space, and the heads to read "
        "the prior's features, as imagination uses them (0 = off, DreamerV3; 1: S5WM learned hover in 67 / 95 / 100 % "
        "of three seeds against 46 / 90 / 98 % without, docs/learning.md section 20)", default=1.0)
    reward_bins: int = doc("two-hot bins of the reward head (symlog grid over [-20, 20])", default=255)
    overshoot_steps: int = doc(
        "multi-step prediction loss: from posterior states of the batch, roll the prior this many steps open loop "
        "with the recorded actions and apply the observation, reward and continue losses to every imagined step "
        "(trains the model the way imagination uses it, so integrated quantities such as attitude compound "
        "right; 0 = off, DreamerV3)", default=0)
    overshoot_scale: float = doc("weight of the multi-step prediction loss", default=1.0)
    overshoot_starts: int = doc("start states per batch for the multi-step prediction loss", default=256)

    def validate(self, source: str = "world_model") -> None:
        """Raise ConfigError naming the field when a value is impossible."""
        if self.kind not in WORLD_MODEL_KINDS:
            raise ConfigError(f"{source}.kind: unknown world model {self.kind!r}; valid: {list(WORLD_MODEL_KINDS)}")
        require_positive(self, source, "latent_groups", "latent_classes", "deter", "s5_state", "s5_layers",
                         "s5_blocks", "hidden", "reward_bins")
        if self.latent_kind not in ("categorical", "gaussian"):
            raise ConfigError(f"{source}.latent_kind: must be 'categorical' or 'gaussian', got {self.latent_kind!r}")
        if not 0.0 < self.latent_min_std < 1.0:
            raise ConfigError(f"{source}.latent_min_std: must be in (0, 1), got {self.latent_min_std}")
        if self.latent_feature not in ("onehot", "probs"):
            raise ConfigError(f"{source}.latent_feature: must be 'onehot' or 'probs', got {self.latent_feature!r}")
        if self.latent_classes < 2:
            raise ConfigError(f"{source}.latent_classes: need at least 2 classes, got {self.latent_classes}")
        if self.s5_state % (2 * self.s5_blocks):
            raise ConfigError(f"{source}.s5_state: must split into s5_blocks={self.s5_blocks} blocks of even "
                              f"size, got {self.s5_state}")
        for name in ("overshoot_steps", "overshoot_starts"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{source}.{name}: must be >= 0, got {getattr(self, name)}")
        if self.reward_bins < 3:
            raise ConfigError(f"{source}.reward_bins: need at least 3 bins, got {self.reward_bins}")
        for name in ("mlp_layers", "head_layers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{source}.{name}: must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.unimix < 1.0:
            raise ConfigError(f"{source}.unimix: must be in [0, 1), got {self.unimix}")
        for name in ("free_nats", "dyn_scale", "rep_scale", "obs_scale", "reward_scale", "cont_scale", "priv_scale",
                     "prior_heads_scale", "overshoot_scale"):
            if not getattr(self, name) >= 0.0:
                raise ConfigError(f"{source}.{name}: must be >= 0, got {getattr(self, name)}")

    @property
    def stoch(self) -> int:
        """Width of the latent z: G * K (flattened one-hot) or G (Gaussian)."""
        return self.latent_groups * (self.latent_classes if self.latent_kind == "categorical" else 1)


# Sizes only; loss weights are the dataclass defaults (DreamerV3's, plus the prior-feature heads loss). "default" is
# the dataclass itself.
WM_PRESETS: dict[str, dict] = {
    "tiny": dict(latent_groups=8, latent_classes=8, deter=32, s5_state=16, s5_layers=1, hidden=32,
                 mlp_layers=1, head_layers=1, reward_bins=31),
    # the trainer's default: small networks and a 32-dimensional Gaussian latent; with the 32 x 32 categorical
    # latent of DreamerV3 imagination rounded attitude away and pure MBRL never learned hover (docs/learning.md
    # sections 2 and 8), and the update was several times slower
    "flight": dict(latent_kind="gaussian", latent_groups=32, latent_classes=32, deter=64, s5_state=32, s5_layers=1,
                   hidden=128, mlp_layers=1, head_layers=1, reward_bins=31),
    "small": dict(latent_groups=16, latent_classes=16, deter=256, s5_state=64, s5_layers=2, hidden=256),
    "default": {},
}


def wm_preset(name: str, **overrides) -> WorldModelConfig:
    """A validated config from a named size preset (tiny, flight, small, default) plus field overrides."""
    if name not in WM_PRESETS:
        raise ConfigError(f"unknown world-model preset {name!r}; valid: {sorted(WM_PRESETS)}")
    cfg = replace(WorldModelConfig(), **{**WM_PRESETS[name], **overrides})
    cfg.validate(f"world_model[{name}]")
    return cfg
