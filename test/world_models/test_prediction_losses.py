"""The world model's losses on what imagination feeds the heads: the prior-feature heads loss and the K-step
open-loop prediction loss (WorldModelConfig.prior_heads_scale, overshoot_steps)."""
import pytest
import torch

from ssm_mbrl_ros.world_models.config import wm_preset
from ssm_mbrl_ros.world_models.factory import make_world_model

OBS, ACT = 6, 4


def _model(kind, **kw):
    torch.manual_seed(0)
    return make_world_model(wm_preset("tiny", kind=kind, latent_kind="gaussian", **kw), OBS, ACT)


def _batch(B=2, T=10):
    g = torch.Generator().manual_seed(3)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    is_first[1, 5] = True  # a second episode starts at step 5 of row 1
    return {"obs": torch.randn(B, T, OBS, generator=g), "action": torch.rand(B, T, ACT, generator=g) * 2 - 1,
            "reward": torch.randn(B, T, generator=g), "cont": torch.ones(B, T), "is_first": is_first}


def _overshoot(model, batch, states):
    torch.manual_seed(7)  # the same starts and prior samples in every call
    return model.overshoot_loss(batch, states).item()


@pytest.mark.parametrize("kind", ["s5", "rssm"])
def test_open_loop_targets_stop_at_episode_boundaries(kind):
    model = _model(kind, overshoot_steps=3, overshoot_starts=1000)  # every start (b, t <= T-4)
    batch = _batch()
    with torch.no_grad():
        states, _ = model.observe(batch)
        base = _overshoot(model, batch, states)
        # step 5 of row 1 opens a new episode: as a target it belongs to no start (starts 2-4 stop before it, starts
        # from 5 on predict 6, 7, 8), so changing it changes nothing
        moved = {**batch, "obs": batch["obs"].clone(), "reward": batch["reward"].clone()}
        moved["obs"][1, 5] += 10.0
        moved["reward"][1, 5] += 10.0
        assert _overshoot(model, moved, states) == pytest.approx(base, rel=1e-6)
        # step 4 of row 1 is a target of starts 1-3 of the first episode
        moved = {**batch, "obs": batch["obs"].clone()}
        moved["obs"][1, 4] += 10.0
        assert _overshoot(model, moved, states) > base + 0.1
        # after a terminal target the rest of that rollout is not scored: without a terminal, starts 1, 2 and 3 of
        # row 0 score step 4; with a terminal at step 3, only start 3 (the terminal state itself) does
        def effect_of_step4(cont):
            moved = {**batch, "cont": cont, "obs": batch["obs"].clone()}
            moved["obs"][0, 4] += 10.0
            return _overshoot(model, moved, states) - _overshoot(model, {**batch, "cont": cont}, states)
        ended = batch["cont"].clone()
        ended[0, 3] = 0.0
        assert 0.0 < effect_of_step4(ended) < 0.6 * effect_of_step4(batch["cont"])


def test_open_loop_loss_needs_more_steps_than_its_horizon():
    model = _model("s5", overshoot_steps=12)
    batch = _batch(T=10)
    with torch.no_grad():
        states, _ = model.observe(batch)
        assert model.overshoot_loss(batch, states) is None
        loss, logs, _, _ = model.loss_terms(batch)
    assert "overshoot_loss" not in logs and torch.isfinite(loss)


@pytest.mark.parametrize("kind", ["s5", "rssm"])
def test_prediction_losses_are_logged_weighted_and_train_the_sequence_model(kind):
    batch = _batch()
    torch.manual_seed(1)
    plain = _model(kind).loss_terms(batch)[0]
    model = _model(kind, overshoot_steps=3, prior_heads_scale=1.0)
    torch.manual_seed(1)
    loss, logs, _, _ = model.loss_terms(batch)
    assert "overshoot_loss" in logs and logs["overshoot_loss"].item() > 0.0
    assert logs["prior_obs_loss"].item() > 0.0
    assert loss.item() > plain.item() + 0.9 * logs["overshoot_loss"].item()  # both extra terms are added
    loss.backward()
    seq = model.seq if kind == "s5" else model.gru
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in seq.parameters() if p.requires_grad)
