"""Learner: one update moves every network; the actor step never changes the world model or critic."""
import numpy as np
import pytest
import torch

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.train.config import TrainConfig, world_model_config
from ssm_mbrl_ros.train.learner import Learner, frozen
from learner_helpers import replay_batch as batch


@pytest.mark.parametrize("wm,grad", [("s5", "dynamics"), ("rssm", "reinforce"), ("s5", "reinforce")])
def test_update_changes_all_networks(wm, grad):
    torch.manual_seed(0)
    cfg = TrainConfig(wm=wm, actor_grad=grad, imag_starts=32, horizon=5, critic_privileged=True, actor_warmup_updates=0)
    learner = Learner(cfg, 22, 25)
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    metrics = learner.update(batch())
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    for prefix in ("wm.encoder", "wm.heads.priv_head", "actor.net", "critic.net", "critic.slow"):
        changed = [not torch.equal(before[k], v) for k, v in learner.state_dict().items() if k.startswith(prefix)]
        assert changed and any(changed), f"{prefix} did not change"
    assert learner.updates == 1


def test_actor_step_leaves_world_model_untouched():
    torch.manual_seed(0)
    cfg = TrainConfig(wm_lr=1e-30, imag_starts=16, horizon=4, actor_warmup_updates=0)  # wm step is a no-op; the actor's must not move it
    learner = Learner(cfg, 22, 25)
    before = {k: v.clone() for k, v in learner.wm.state_dict().items()}
    learner.update(batch())
    worst = max((v - before[k]).abs().max().item() for k, v in learner.wm.state_dict().items())
    assert worst < 1e-12
    with frozen(learner.wm):
        assert not any(p.requires_grad for p in learner.wm.parameters())
    assert all(p.requires_grad for p in learner.wm.parameters())


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="unknown task 'hoover'.*hover"):
        TrainConfig(task="hoover").validate()
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        TrainConfig(preset="huge").validate()
    with pytest.raises(ConfigError, match="unknown world model 'gru'.*s5"):
        TrainConfig(wm="gru").validate()
    with pytest.raises(ConfigError, match="world_model: unknown keys \\['detr'\\]"):
        world_model_config(TrainConfig(world_model={"detr": 3}))


def expert_batch(B=4, T=16):
    """A replay batch whose every row carries an expert label."""
    b = batch(B=B, T=T)
    rng = np.random.default_rng(1)
    b["expert"] = np.ones((B, T), bool)
    b["expert_action"] = rng.uniform(-0.5, 0.5, (B, T, 4)).astype(np.float32)
    return b


@pytest.mark.parametrize("latent_kind", ["categorical", "gaussian"])
def test_mode_states_hold_the_posterior_mode(latent_kind):
    torch.manual_seed(0)
    learner = Learner(TrainConfig(actor_latent="mode", world_model={"latent_kind": latent_kind}), 22, 25)
    _, _, states, _ = learner.wm.loss(learner.batch_to_torch(batch()))
    mode = learner.mode_states(states)
    g, k = learner.wm.groups, learner.wm.classes
    if latent_kind == "categorical":  # the most likely class of each variable, one-hot
        want = torch.nn.functional.one_hot(states["post_logits"].argmax(-1), k).flatten(-2).float()
        assert mode["z"].shape[-1] == g * k
    else:  # the mean of each Gaussian variable
        want = states["post_logits"][..., 0]
        assert mode["z"].shape[-1] == g
    assert torch.equal(mode["z"], want)
    assert torch.equal(mode["feat"], torch.cat([states["h"], want], -1))
    with pytest.raises(ConfigError, match="actor_latent"):
        TrainConfig(actor_latent="mean").validate()


def test_probs_actor_reads_posterior_probabilities_and_learns_in_imagination():
    torch.manual_seed(0)
    cfg = TrainConfig(actor_latent="probs", imag_starts=32, horizon=5, actor_warmup_updates=0,
                      world_model={"latent_kind": "categorical"})
    learner = Learner(cfg, 22, 25)
    assert learner.actor.latent == "probs" and learner.arch()["actor"]["latent"] == "probs"
    _, _, states, _ = learner.wm.loss(learner.batch_to_torch(batch()))
    soft = learner.probs_states(states)["feat"]
    probs = states["post_logits"].exp()
    assert torch.equal(soft, torch.cat([states["h"], probs.flatten(-2)], -1))
    assert torch.allclose(probs.sum(-1), torch.ones(()), atol=1e-5)
    assert not torch.equal(soft, states["feat"])  # a soft code, not the one-hot sample
    before = {k: v.clone() for k, v in learner.actor.state_dict().items()}
    metrics = learner.update(batch())
    assert np.isfinite(metrics["actor_loss"]) and np.isfinite(metrics["actor_entropy"])
    assert any(not torch.equal(before[k], v) for k, v in learner.actor.state_dict().items())


@pytest.mark.parametrize("latent_kind", ["categorical", "gaussian"])
def test_prior_actor_reads_the_same_feature_on_replay_in_imagination_and_in_flight(latent_kind):
    """actor_latent=prior: [h_t, the prior's soft latent at h_t] on replayed states, at every imagined step and in the
    acting filter, so the actor flies on the feature it learned on."""
    torch.manual_seed(0)
    cfg = TrainConfig(actor_latent="prior", imag_starts=32, horizon=5, actor_warmup_updates=0,
                      world_model={"latent_kind": latent_kind})
    learner = Learner(cfg, 22, 25)
    wm = learner.wm
    b = learner.batch_to_torch(batch())
    _, _, states, _ = wm.loss(b)
    replay = learner.actor_states(states)
    want = torch.cat([states["h"], wm.latent.soft(states["prior_logits"])], -1)
    assert torch.equal(replay["feat"], want)
    assert torch.equal(replay["z"], learner.mode_states(states)["z"])  # the carry: the posterior mode, as in flight
    assert torch.equal(learner._actor_input(states["feat"]), want)  # imagined [h, z sample] -> the same feature
    with torch.no_grad():  # the acting filter, step by step (on the mode), builds it too
        on_mode = learner._actor_input(wm.observe(b, sample=False)[0]["feat"])
        carry = wm.initial(b["obs"].shape[0])
        for t in range(3):
            prev = b["action"][:, t - 1] if t else torch.zeros_like(b["action"][:, 0])
            carry, feat, _, prior = wm.act_step(carry, b["obs"][:, t], prev, b["is_first"][:, t], "prior")
            torch.testing.assert_close(feat, torch.cat([carry["h"], wm.latent.soft(prior)], -1))
            torch.testing.assert_close(feat, on_mode[:, t], atol=1e-5, rtol=1e-4)
    before = {k: v.clone() for k, v in learner.actor.state_dict().items()}
    metrics = learner.update(batch())
    assert np.isfinite(metrics["actor_loss"])
    assert any(not torch.equal(before[k], v) for k, v in learner.actor.state_dict().items())


@pytest.mark.parametrize("latent", ["mode", "probs"])
@pytest.mark.parametrize("scale", [0.0, 1.0])
def test_bc_repr_scale_decides_whether_imitation_shapes_the_encoder(scale, latent):
    torch.manual_seed(0)
    silent = dict(obs_scale=0.0, reward_scale=0.0, cont_scale=0.0, dyn_scale=0.0, rep_scale=0.0, priv_scale=0.0)
    cfg = TrainConfig(expert="geometric", bc_repr_scale=scale, actor_warmup_updates=10, world_model=silent,
                      actor_latent=latent)
    learner = Learner(cfg, 22, 25)
    before = {k: v.clone() for k, v in learner.wm.encoder.state_dict().items()}
    metrics = learner.update(expert_batch())
    assert metrics["bc_loss"] > 0
    moved = max((v - before[k]).abs().max().item() for k, v in learner.wm.encoder.state_dict().items())
    assert (moved > 0) == (scale > 0), moved


@pytest.mark.parametrize("path", sorted((__import__("pathlib").Path(__file__).parents[2] / "config" / "train").glob("*.yaml")))
def test_shipped_train_configs_resolve(path):
    from ssm_mbrl_ros.train.config import resolve_train_config

    import yaml

    cfg = resolve_train_config(str(path)).validate(str(path))
    for key, value in yaml.safe_load(path.read_text()).items():  # every key of the file reached the config
        assert getattr(cfg, key) == value, key
