"""Actor-critic losses, return normaliser, actor and critic against plain references."""
import numpy as np
import pytest
import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from ssm_mbrl_ros.agent.actor_critic import Actor, Critic
from ssm_mbrl_ros.agent.losses import (ReturnNormalizer, actor_loss, critic_loss, imagination_weights,
                                       lambda_returns)
from ssm_mbrl_ros.world_models.distributions import twohot_mean

F64 = torch.float64


def _ref_lambda(reward, value, cont, gamma, lam):
    """Plain Python loop: R_t = r_{t+1} + g c_{t+1} ((1-lam) v_{t+1} + lam R_{t+1}), R_H = v_H."""
    n, h = reward.shape
    out = np.zeros((n, h))
    for i in range(n):
        nxt = float(value[i, h])
        for t in reversed(range(h)):
            r, c, v = float(reward[i, t]), float(cont[i, t]), float(value[i, t + 1])
            nxt = r + gamma * c * ((1 - lam) * v + lam * nxt)
            out[i, t] = nxt
    return out


def _traj(n=5, h=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    reward = torch.randn(n, h, generator=g, dtype=F64)
    value = torch.randn(n, h + 1, generator=g, dtype=F64) * 3
    cont = torch.ones(n, h, dtype=F64)
    cont[0, 2] = 0.0  # termination mid-horizon
    cont[1, 0] = 0.0  # termination on the first step
    cont[2, h - 1] = 0.0  # at the end
    cont[3, 3] = 0.4  # soft (predicted) continue probability
    return reward, value, cont


@pytest.mark.parametrize("lam", [0.95, 0.5])
def test_lambda_returns_matches_python_loop(lam):
    reward, value, cont = _traj()
    got = lambda_returns(reward, value, cont, 0.97, lam)
    assert got.shape == reward.shape
    np.testing.assert_allclose(got.numpy(), _ref_lambda(reward, value, cont, 0.97, lam), rtol=0, atol=1e-12)
    # a termination cuts everything after it: R_2 of row 0 is just its reward
    assert got[0, 2].item() == pytest.approx(reward[0, 2].item(), abs=1e-12)


def test_lambda_one_is_discounted_monte_carlo_plus_bootstrap():
    reward, value, cont = _traj(seed=1)
    gamma, (n, h) = 0.9, reward.shape
    got = lambda_returns(reward, value, cont, gamma, lam=1.0)
    for i in range(n):
        for t in range(h):
            ret, disc = 0.0, 1.0
            for k in range(t, h):
                ret += disc * reward[i, k].item()
                disc *= gamma * cont[i, k].item()
            ret += disc * value[i, h].item()
            assert got[i, t].item() == pytest.approx(ret, abs=1e-12)


def test_lambda_zero_is_one_step_td():
    reward, value, cont = _traj(seed=2)
    got = lambda_returns(reward, value, cont, 0.99, lam=0.0)
    torch.testing.assert_close(got, reward + 0.99 * cont * value[:, 1:], rtol=0, atol=1e-12)


def test_lambda_returns_shape_errors():
    reward, value, cont = _traj()
    with pytest.raises(ValueError, match="value"):
        lambda_returns(reward, value[:, :-1], cont, 0.99)


def test_imagination_weights_cumulative_product():
    cont = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 0.5, 1.0, 1.0]], dtype=F64)
    w = imagination_weights(cont, 0.9)
    expected = torch.tensor([[1.0, 0.9, 0.0, 0.0], [1.0, 0.45, 0.405, 0.3645]], dtype=F64)
    torch.testing.assert_close(w, expected, rtol=0, atol=1e-12)


def test_return_normalizer_percentiles_and_ema():
    x = torch.arange(1000, dtype=torch.float32).reshape(10, 100) * 0.1  # range 0..99.9
    q5, q95 = np.percentile(x.numpy().astype(np.float64), [5, 95])
    norm = ReturnNormalizer(decay=0.99)
    norm.update(x)
    assert norm.low.item() == pytest.approx(0.01 * q5, rel=1e-5)
    assert norm.high.item() == pytest.approx(0.01 * q95, rel=1e-5)
    assert norm.scale().item() == 1.0  # 0.01 * (q95 - q5) ~ 0.9 < 1 -> floor
    for _ in range(999):
        norm.update(x)
    # EMA converges to the batch percentiles: residual 0.99**1000 ~ 4e-5
    assert norm.low.item() == pytest.approx(q5, rel=1e-3)
    assert norm.high.item() == pytest.approx(q95, rel=1e-3)
    scale = norm.scale().item()
    assert scale == pytest.approx(q95 - q5, rel=1e-3)
    # normalised advantage and state_dict round trip
    adv = norm(x, torch.zeros_like(x), update=False)
    torch.testing.assert_close(adv, x / scale)
    other = ReturnNormalizer()
    other.load_state_dict(norm.state_dict())
    assert other.low.item() == norm.low.item() and other.high.item() == norm.high.item()


def test_actor_mean_logp_entropy():
    torch.manual_seed(0)
    actor = Actor(feat_dim=6, action_dim=4, hidden=32, layers=2)
    with torch.no_grad():  # make outputs large so squashing matters
        actor.net[-1].weight.mul_(300.0)
    feat = torch.randn(64, 3, 6) * 5
    mean = actor.mean_action(feat)
    assert mean.shape == (64, 3, 4)
    assert mean.abs().max() <= 1.0 and mean.abs().max() > 0.5
    action, logp, ent = actor.sample(feat, generator=torch.Generator().manual_seed(1))
    assert action.shape == (64, 3, 4) and logp.shape == (64, 3) and ent.shape == (64, 3)
    assert action.abs().max() <= 1.0
    assert torch.isfinite(ent).all() and torch.isfinite(logp).all()
    mu, std = actor.dist_params(feat)
    assert std.min() >= 0.1 - 1e-7 and std.max() <= 1.0 + 1e-7
    # compare away from saturation, in float64, with torch.distributions
    act64 = actor.double()
    feat64 = feat.double() * 0.01
    a, lp, _ = act64.sample(feat64, generator=torch.Generator().manual_seed(2))
    mu, std = act64.dist_params(feat64)
    ref = TransformedDistribution(Normal(mu, std), [TanhTransform(cache_size=1)])
    torch.testing.assert_close(lp, ref.log_prob(a).sum(-1), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(act64.log_prob(feat64, a), lp, rtol=1e-6, atol=1e-6)


def test_actor_entropy_estimate_unbiased():
    actor = Actor(feat_dim=3, action_dim=2, hidden=16, layers=1).double()
    feat = torch.zeros(20000, 3, dtype=F64)
    _, logp, ent = actor.sample(feat, generator=torch.Generator().manual_seed(3))
    # both -logp and the entropy estimate average to the true entropy of the squashed distribution
    assert ent.mean().item() == pytest.approx(-logp.mean().item(), abs=0.02)
    mu, std = actor.dist_params(feat[:1])
    assert ent.mean().item() < Normal(mu, std).entropy().sum().item()  # squashing lowers entropy


def test_actor_loss_reinforce_direction():
    logp = torch.zeros(4, 5, requires_grad=True)
    adv = torch.ones(4, 5)
    adv[0] = -1.0
    loss = actor_loss(logp, torch.zeros(4, 5), adv, torch.ones(4, 5))
    loss.backward()
    assert (logp.grad[1:] < 0).all() and (logp.grad[0] > 0).all()  # descending raises logp where adv > 0
    ent = torch.zeros(4, 5, requires_grad=True)
    actor_loss(torch.zeros(4, 5), ent, adv, torch.ones(4, 5), entropy_coef=0.1).backward()
    assert (ent.grad < 0).all()  # entropy bonus


def test_critic_fits_constant_target():
    torch.manual_seed(0)
    critic = Critic(feat_dim=5, hidden=32, layers=2, bins=255)
    feat = torch.randn(16, 4, 5)
    target = torch.full((16, 4), 7.5)
    weight = torch.ones(16, 4)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = critic_loss(critic.logits(feat), target, critic.slow_logits(feat), critic.bins, weight, slow_reg=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert critic.value(feat).mean().item() == pytest.approx(7.5, abs=0.5)


def test_critic_loss_slow_regulariser_pulls_toward_slow_mean():
    critic = Critic(feat_dim=2, hidden=8, layers=1, bins=31)
    logits = torch.zeros(3, 2, 31, requires_grad=True)
    slow = torch.zeros(3, 2, 31)
    slow[..., 20] = 50.0  # slow critic is confident about bin 20
    loss = critic_loss(logits, torch.zeros(3, 2), slow, critic.bins, torch.ones(3, 2), slow_reg=1.0)
    loss.backward()
    assert logits.grad[..., 20].max() < 0  # raising bin 20 lowers the loss
    base = critic_loss(logits, torch.zeros(3, 2), slow, critic.bins, torch.ones(3, 2), slow_reg=0.0)
    assert loss.item() > base.item()
    assert twohot_mean(slow, critic.bins).allclose(critic.bins[20].expand(3, 2))


def test_slow_critic_moves_by_tau():
    torch.manual_seed(0)
    critic = Critic(feat_dim=4, hidden=8, layers=1, bins=15)
    with torch.no_grad():
        for p in critic.net.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in critic.slow.parameters()]
    critic.update_slow(tau=0.02)
    for b, s, p in zip(before, critic.slow.parameters(), critic.net.parameters()):
        torch.testing.assert_close(s, b + 0.02 * (p - b))
        assert not torch.equal(s, b)
    assert not any(p.requires_grad for p in critic.slow.parameters())


def test_asymmetric_critic_privileged_input():
    critic = Critic(feat_dim=4, priv_dim=3, hidden=8, layers=1, bins=15)
    v = critic.value(torch.randn(2, 5, 4), torch.randn(2, 5, 3))
    assert v.shape == (2, 5)
    with pytest.raises(ValueError, match="priv"):
        critic.value(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="priv_dim=0"):
        Critic(feat_dim=4, hidden=8, layers=1, bins=15).value(torch.randn(2, 4), torch.randn(2, 3))
