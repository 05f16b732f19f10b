"""DreamerV3 distribution pieces against analytic values and torch.distributions."""
import math

import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from ssm_mbrl_ros.world_models.distributions import (categorical_entropy, categorical_kl, mode_onehot, sample_onehot, symexp, symlog,
                                                     twohot_bins, twohot_encode, twohot_loss, twohot_mean,
                                                     unimix_logits)
from ssm_mbrl_ros.world_models.latents import CategoricalLatent, GaussianLatent, kl_balance

F64 = torch.float64


def test_symlog_symexp_values_and_inverse():
    x = torch.tensor([-1e6, -3.0, -0.5, 0.0, 0.5, 3.0, 1e6], dtype=F64)
    assert torch.allclose(symlog(x), torch.sign(x) * torch.log(1 + x.abs()))
    assert symlog(torch.tensor(math.e - 1, dtype=F64)).item() == pytest.approx(1.0)
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-12)
    y = torch.linspace(-20, 20, 101, dtype=F64)
    assert torch.allclose(symlog(symexp(y)), y, atol=1e-12)


def test_bins_are_symexp_spaced_and_symmetric():
    bins = twohot_bins(dtype=F64)
    assert bins.shape == (255,) and bins[127] == 0
    assert torch.allclose(bins, -bins.flip(0))
    assert torch.allclose(symlog(bins), torch.linspace(-20, 20, 255, dtype=F64))


def test_twohot_encode_decode_round_trip():
    bins = twohot_bins(dtype=F64)
    x = torch.tensor([[-1234.5, -1.0, -0.01, 0.0], [0.3, 2.0, 77.0, 5e7]], dtype=F64)
    enc = twohot_encode(x, bins)
    assert enc.shape == (2, 4, 255)
    assert torch.allclose(enc.sum(-1), torch.ones_like(x))
    assert ((enc > 0).sum(-1) <= 2).all()
    nz = [torch.nonzero(row).flatten() for row in enc.reshape(-1, 255)]
    assert all(len(i) == 1 or i[1] - i[0] == 1 for i in nz)  # neighbouring bins
    assert torch.allclose((enc * bins).sum(-1), x, rtol=1e-10, atol=1e-12)
    # Decoding the logits of that encoding gives the value back.
    logits = enc.clamp_min(1e-300).log()
    assert torch.allclose(twohot_mean(logits, bins), x, rtol=1e-8, atol=1e-10)
    # Out-of-range targets clip to the end bins.
    far = twohot_encode(torch.tensor([-1e12, 1e12], dtype=F64), bins)
    assert far[0, 0] == 1 and far[1, -1] == 1


def test_twohot_mean_uniform_is_zero_in_float32_and_loss_is_cross_entropy():
    bins = twohot_bins()
    assert twohot_mean(torch.zeros(3, 255), bins).abs().max() < 1e-3
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 255, generator=gen, dtype=F64)
    target = torch.randn(5, generator=gen, dtype=F64) * 30
    expected = -(twohot_encode(target, twohot_bins(dtype=F64)) * torch.log_softmax(logits, -1)).sum(-1)
    assert torch.allclose(twohot_loss(logits, target, twohot_bins(dtype=F64)), expected)
    # Training the logits on the loss moves the decoded mean to the target.
    logits = torch.zeros(255, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        twohot_loss(logits, torch.tensor(42.0), bins).backward()
        opt.step()
    assert twohot_mean(logits.detach(), bins).item() == pytest.approx(42.0, rel=0.02)


def test_categorical_kl_and_entropy_match_torch_distributions():
    gen = torch.Generator().manual_seed(1)
    p, q = torch.randn(2, 3, 32, 32, generator=gen, dtype=F64).unbind(0)
    assert torch.allclose(categorical_kl(p, p), torch.zeros(3, dtype=F64), atol=1e-12)
    ref_kl = kl_divergence(Categorical(logits=p), Categorical(logits=q)).sum(-1)
    assert torch.allclose(categorical_kl(p, q), ref_kl)
    assert (categorical_kl(p, q) > 0).all()
    assert torch.allclose(categorical_entropy(p), Categorical(logits=p).entropy().sum(-1))


def test_unimix_floor():
    k, mix = 32, 0.01
    logits = torch.tensor([[1e4] + [-1e4] * (k - 1), [0.0] * k])
    probs = unimix_logits(logits, mix).exp()
    assert torch.allclose(probs.sum(-1), torch.ones(2))
    assert (probs >= mix / k * (1 - 1e-5)).all()
    assert probs[0, 0] == pytest.approx(1 - mix + mix / k, rel=1e-6)
    assert torch.allclose(unimix_logits(logits, 0.0), torch.log_softmax(logits, -1))


def test_straight_through_sample_is_onehot_with_probability_gradients():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 32, 32, generator=gen, requires_grad=True)
    s = sample_onehot(logits, generator=gen)
    assert torch.allclose(s.detach().sum(-1), torch.ones(4, 32))
    assert ((s.detach() - s.detach().round()).abs() < 1e-6).all()
    weights = torch.randn(32, generator=gen)
    (s * weights).sum().backward()
    probs = torch.softmax(logits.detach(), -1)
    expected = probs * (weights - (probs * weights).sum(-1, keepdim=True))  # d/dlogits of sum(probs * w)
    assert logits.grad.abs().sum() > 0 and torch.allclose(logits.grad, expected, atol=1e-6)
    m = mode_onehot(logits)
    assert torch.equal(m.detach().argmax(-1), logits.argmax(-1))


def test_sample_frequencies_match_probabilities():
    gen = torch.Generator().manual_seed(3)
    logits = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])).expand(20000, 4)
    freq = sample_onehot(logits, generator=gen).detach().mean(0)
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.015)


def test_kl_balance_weights_and_free_nats():
    gen = torch.Generator().manual_seed(4)
    latent = CategoricalLatent(8, 8, unimix=0.0, feature="onehot")
    post = (3 * torch.randn(6, 8, 8, generator=gen, dtype=F64)).log_softmax(-1).requires_grad_()
    prior = (3 * torch.randn(6, 8, 8, generator=gen, dtype=F64)).log_softmax(-1).requires_grad_()
    loss, dyn, rep = kl_balance(latent, post, prior, dyn_scale=0.5, rep_scale=0.1, free_nats=1.0)
    kl = latent.kl(post, prior)
    torch.testing.assert_close(kl, categorical_kl(post, prior))
    assert (kl > 1.0).all() and torch.allclose(dyn, kl) and torch.allclose(rep, kl)
    assert torch.allclose(loss, 0.6 * kl)
    loss.sum().backward()
    g_post, g_prior = torch.autograd.grad(kl.sum(), [post, prior])
    assert torch.allclose(post.grad, 0.1 * g_post) and torch.allclose(prior.grad, 0.5 * g_prior)
    # Below the free nats both terms are clipped: constant loss, no gradient.
    near = (post.detach() + 0.01 * torch.randn(6, 8, 8, generator=gen, dtype=F64)).log_softmax(-1).requires_grad_()
    post2 = post.detach().clone().requires_grad_()
    loss2, dyn2, _ = kl_balance(latent, post2, near, dyn_scale=0.5, rep_scale=0.1, free_nats=1.0)
    assert (dyn2 < 1.0).all() and torch.allclose(loss2, torch.full_like(loss2, 0.6))
    loss2.sum().backward()
    assert post2.grad.abs().max() == 0 and near.grad.abs().max() == 0


def test_gaussian_latent_kl_entropy_and_sampling_match_torch_distributions():
    gen = torch.Generator().manual_seed(5)
    latent = GaussianLatent(6, min_std=0.1)
    p = latent.dist(torch.randn(4, 12, generator=gen, dtype=F64))
    q = latent.dist(torch.randn(4, 12, generator=gen, dtype=F64))
    assert p.shape == (4, 6, 2) and (p[..., 1] > 0.1).all() and (p[..., 1] < 1.0).all()
    dp = torch.distributions.Normal(p[..., 0], p[..., 1])
    dq = torch.distributions.Normal(q[..., 0], q[..., 1])
    torch.testing.assert_close(latent.kl(p, q), torch.distributions.kl_divergence(dp, dq).sum(-1))
    torch.testing.assert_close(latent.kl(p, p), torch.zeros(4, dtype=F64))
    torch.testing.assert_close(latent.entropy(p), dp.entropy().sum(-1))
    torch.testing.assert_close(latent.sample(p, sample=False), p[..., 0])
    torch.manual_seed(0)
    draws = latent.sample(p.expand(40000, 4, 6, 2))
    torch.testing.assert_close(draws.mean(0), p[..., 0], atol=0.02, rtol=0)
    torch.testing.assert_close(draws.std(0), p[..., 1], atol=0.02, rtol=0)
