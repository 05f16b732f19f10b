"""obs_field_weights: named observation fields weigh more or less in the world model's reconstruction loss."""
import pytest
import torch

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.train.config import TrainConfig
from ssm_mbrl_ros.train.learner import Learner


def test_channel_weights_follow_the_layout():
    layout = make_env("hover", 1).obs_layout
    w = layout.channel_weights({"pos_err": 10, "omega": 0})
    sl = layout.slices()
    assert w[sl["pos_err"]] == [10.0] * 3 and w[sl["omega"]] == [0.0] * 3
    assert sum(1 for x in w if x == 1.0) == layout.dim - 6
    with pytest.raises(ValueError, match="unknown observation field"):
        layout.channel_weights({"position": 2})
    with pytest.raises(ValueError, match=">= 0"):
        layout.channel_weights({"vel": -1})


def test_weighted_reconstruction_loss():
    env = make_env("hover", 1)
    layout = env.obs_layout
    torch.manual_seed(0)
    learner = Learner(TrainConfig(preset="tiny", obs_field_weights={"pos_err": 0}), layout.dim, 25)
    learner.weigh_observation(layout)
    heads, feat = learner.wm.heads, torch.randn(2, 5, learner.wm.feat_dim)
    obs = torch.randn(2, 5, layout.dim)
    batch = {"obs": obs, "reward": torch.zeros(2, 5), "cont": torch.ones(2, 5)}
    moved = obs.clone()
    moved[..., layout.slices()["pos_err"]] += 3.0  # an error on the weight-0 field costs nothing
    base = heads.losses(feat, batch)["obs"]
    torch.testing.assert_close(heads.losses(feat, {**batch, "obs": moved})["obs"], base)
    from ssm_mbrl_ros.world_models.distributions import symlog

    keep = [i for i in range(layout.dim) if i not in range(*layout.slices()["pos_err"].indices(layout.dim))]
    manual = (heads.decoder(feat) - symlog(obs)).square()[..., keep].sum(-1)
    torch.testing.assert_close(base, manual)


def test_unknown_field_is_a_config_error():
    learner = Learner(TrainConfig(preset="tiny", obs_field_weights={"gates": 2}), 22, 25)
    with pytest.raises(ConfigError, match="obs_field_weights: unknown observation field"):
        learner.weigh_observation(make_env("hover", 1).obs_layout)
