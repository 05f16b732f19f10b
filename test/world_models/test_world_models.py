"""S5WM and RSSM behind one interface: training, scan-vs-step equivalence, carries, privileged masking."""
import math

import pytest
import torch

from ssm_mbrl_ros.core.config import ConfigError, from_dict
from ssm_mbrl_ros.world_models.factory import make_world_model
from ssm_mbrl_ros.world_models.config import WorldModelConfig, wm_preset
from ssm_mbrl_ros.world_models.s5 import S5Stack
from ssm_mbrl_ros.world_models.s5wm import scan_with_states

KINDS = ("s5", "rssm", "s5-gaussian", "rssm-gaussian")  # sequence model [-latent kind]
OBS, ACT, PRIV = 7, 4, 5


def _model(kind, dtype=torch.float32, seed=0, **kw):
    torch.manual_seed(seed)
    seq, _, latent = kind.partition("-")
    cfg = wm_preset("tiny", kind=seq, latent_kind=latent or "categorical", **kw)
    return make_world_model(cfg, OBS, ACT, PRIV).to(dtype)


def _batch(B=3, T=12, dtype=torch.float32, seed=1, firsts=((0, 0), (1, 5), (2, 9))):
    g = torch.Generator().manual_seed(seed)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    for b, t in firsts:
        is_first[b, t] = True
    return {
        "obs": torch.randn(B, T, OBS, generator=g, dtype=dtype) * 3.0,
        "action": torch.rand(B, T, ACT, generator=g, dtype=dtype) * 2 - 1,
        "reward": torch.randn(B, T, generator=g, dtype=dtype),
        "cont": (torch.rand(B, T, generator=g) > 0.1).to(dtype),
        "is_first": is_first,
        "privileged": torch.randn(B, T, PRIV, generator=g, dtype=dtype),
        "priv_mask": torch.ones(B, T, dtype=torch.bool),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_loss_finite_and_decreases_on_fixed_batch(kind):
    model = _model(kind)
    batch = _batch(B=4, T=16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        loss, metrics, _, _ = model.loss(batch)
        assert torch.isfinite(loss) and all(math.isfinite(v) for v in metrics.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert set(metrics) >= {"loss", "obs_loss", "reward_loss", "cont_loss", "priv_loss", "dyn_kl", "rep_kl"}
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:5]) / 5, losses  # measured ~0.55


@pytest.mark.parametrize("kind", KINDS)
def test_observe_equals_repeated_obs_step_with_resets(kind):
    model = _model(kind, torch.float64)
    batch = _batch(dtype=torch.float64)
    B, T = batch["obs"].shape[:2]
    with torch.no_grad():
        states, last = model.observe(batch, sample=False)
        carry, prev_a, feats = model.initial(B), torch.zeros(B, ACT, dtype=torch.float64), []
        for t in range(T):
            carry, feat = model.obs_step(carry, batch["obs"][:, t], prev_a, batch["is_first"][:, t], sample=False)
            feats.append(feat)
            prev_a = batch["action"][:, t]
        # Chunked observe (carry + prev_action across the cut) equals one observe.
        half = {k: v[:, :6] for k, v in batch.items()}
        rest = {k: v[:, 6:] for k, v in batch.items()}
        rest["prev_action"] = batch["action"][:, 5]
        s1, c1 = model.observe(half, sample=False)
        s2, _ = model.observe(rest, c1, sample=False)
    loop = torch.stack(feats, 1)
    assert states["feat"].shape == (B, T, model.feat_dim)
    torch.testing.assert_close(states["feat"], loop, atol=1e-6, rtol=0)
    for k in model.carry_sizes():
        torch.testing.assert_close(last[k], carry[k], atol=1e-6, rtol=0)
        torch.testing.assert_close(states[k][:, 4], model.start_from(states)[k].view(B, T, -1)[:, 4])
    torch.testing.assert_close(torch.cat([s1["feat"], s2["feat"]], 1), states["feat"], atol=1e-6, rtol=0)
    # The reset really matters: without is_first the features after the reset differ.
    no_reset = dict(batch, is_first=torch.zeros_like(batch["is_first"]))
    with torch.no_grad():
        other, _ = model.observe(no_reset, sample=False)
    assert (other["feat"][1, 5:] - states["feat"][1, 5:]).abs().max() > 1e-3
    torch.testing.assert_close(other["feat"][1, :5], states["feat"][1, :5])


def test_scan_with_states_matches_s5stack_and_step_loop():
    torch.manual_seed(0)
    stack = S5Stack(2, 8, 6).double()
    u = torch.randn(2, 9, 8, dtype=torch.float64)
    reset = torch.zeros(2, 9, dtype=torch.bool)
    reset[1, 4] = True
    s0 = torch.randn(2, stack.state_size, dtype=torch.float64)
    y, states = scan_with_states(stack, u, s0, reset)
    y_ref, last_ref = stack(u, s0, reset)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(states[:, -1], last_ref)
    s = s0
    for t in range(9):
        _, s = stack.step(u[:, t], s, reset[:, t])
        torch.testing.assert_close(states[:, t], s, atol=1e-10, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_privileged_loss_only_where_masked(kind):
    model = _model(kind)
    batch = _batch()
    mask = torch.zeros(3, 12, dtype=torch.bool)
    mask[0, 2:5] = True
    mask[2, 7] = True
    priv = batch["privileged"].clone().requires_grad_(True)
    loss, metrics, _, _ = model.loss(dict(batch, privileged=priv, priv_mask=mask))
    loss.backward()
    grad_norm = priv.grad.abs().sum(-1)  # (B, T)
    assert (grad_norm[mask] > 0).all() and (grad_norm[~mask] == 0).all()
    # Without privileged data the head is skipped entirely.
    model.zero_grad(set_to_none=True)
    plain = {k: v for k, v in batch.items() if k not in ("privileged", "priv_mask")}
    loss, metrics, _, _ = model.loss(plain)
    loss.backward()
    assert "priv_loss" not in metrics
    assert all(p.grad is None for p in model.heads.priv_head.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_pack_unpack_round_trip_and_img_step_shapes(kind):
    model = _model(kind)
    batch = _batch()
    with torch.no_grad():
        states, carry = model.observe(batch)
        flat = model.pack_carry(carry)
        assert flat.shape == (3, model.export_state_size) and not flat.is_complex()
        back = model.unpack_carry(flat)
        assert list(back) == list(model.carry_sizes())
        for k in carry:
            assert torch.equal(back[k], carry[k])
        obs, a, first = batch["obs"][:, 0], batch["action"][:, 0], torch.zeros(3, dtype=torch.bool)
        c1, f1 = model.obs_step(carry, obs, a, first, sample=False)
        c2, f2 = model.obs_step(back, obs, a, first, sample=False)
        assert torch.equal(f1, f2)
        start = model.start_from(states)
        assert all(v.shape == (36, n) for (k, v), n in zip(start.items(), model.carry_sizes().values()))
        nxt, feat = model.img_step(start, torch.zeros(36, ACT))
        assert feat.shape == (36, model.feat_dim) and nxt["z"].shape == (36, model.stoch)
        if model.latent.kind == "categorical":
            assert torch.allclose(nxt["z"].view(36, 8, 8).sum(-1), torch.ones(36, 8))  # one-hot per group
        out = model.imagine(start, lambda f: torch.tanh(f[:, :ACT]), horizon=4)
    assert out["feat"].shape == (36, 5, model.feat_dim) and out["action"].shape == (36, 4, ACT)
    assert out["reward"].shape == (36, 4) and out["cont"].shape == (36, 4)
    assert ((out["cont"] > 0) & (out["cont"] < 1)).all()


def test_s5_posterior_ignores_past_but_prior_does_not():
    batch = _batch(dtype=torch.float64, firsts=())
    perturbed = dict(batch, obs=batch["obs"].clone())
    perturbed["obs"][:, 4] += 1.0
    for kind in KINDS:
        model = _model(kind, torch.float64)
        with torch.no_grad():
            a, _ = model.observe(batch, sample=False)
            b, _ = model.observe(perturbed, sample=False)
        post_diff = (a["post_logits"][:, 5] - b["post_logits"][:, 5]).abs().max()
        prior_diff = (a["prior_logits"][:, 5] - b["prior_logits"][:, 5]).abs().max()
        assert prior_diff > 1e-6, kind
        if kind.startswith("s5"):
            assert post_diff == 0 and torch.equal(a["post_logits"][:, :4], b["post_logits"][:, :4])
        else:
            assert post_diff > 1e-6  # the RSSM posterior is conditioned on h_t, hence on the past


def test_reward_head_starts_at_zero_and_config_errors():
    model = _model("s5")
    assert torch.allclose(model.heads.reward(torch.randn(5, model.feat_dim)), torch.zeros(5), atol=1e-5)
    with pytest.raises(ConfigError, match="unknown world-model preset 'huge'.*valid"):
        wm_preset("huge")
    with pytest.raises(ConfigError, match="world_model.kind"):
        from_dict(WorldModelConfig, {"kind": "lstm"}, "world_model")
    with pytest.raises(ConfigError, match="wm.deter: expected an integer"):
        from_dict(WorldModelConfig, {"deter": "big"}, "wm")
    with pytest.raises(ConfigError, match="s5_state"):
        wm_preset("tiny", s5_state=7)
    with pytest.raises(ValueError, match=r"batch\['action'\] must be \(3, 12, 4\)"):
        model.observe(dict(_batch(), action=torch.zeros(3, 12, 3)))


@pytest.mark.parametrize("kind", KINDS)
def test_obs_step_on_packed_carry_exports_to_onnx(kind):
    import io

    import numpy as np
    import onnxruntime as ort

    model = _model(kind).eval()

    class Step(torch.nn.Module):
        """The acting step with the recurrent state as one real input/output (what issue 4 exports)."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, obs, prev_action, is_first, state):
            carry, feat = self.model.obs_step(self.model.unpack_carry(state), obs, prev_action, is_first, sample=False)
            return feat, self.model.pack_carry(carry)

    g = torch.Generator().manual_seed(3)
    args = (torch.randn(2, OBS, generator=g), torch.rand(2, ACT, generator=g), torch.tensor([True, False]),
            torch.randn(2, model.export_state_size, generator=g))
    buf = io.BytesIO()
    torch.onnx.export(Step(), args, buf, dynamo=False, opset_version=17,
                      input_names=["obs", "prev_action", "is_first", "state"], output_names=["feat", "next_state"])
    sess = ort.InferenceSession(buf.getvalue())
    feat, state = sess.run(None, dict(zip(["obs", "prev_action", "is_first", "state"], (a.numpy() for a in args))))
    with torch.no_grad():
        ref_feat, ref_state = Step()(*args)
    np.testing.assert_allclose(feat, ref_feat.numpy(), atol=1e-5)
    np.testing.assert_allclose(state, ref_state.numpy(), atol=1e-5)


def test_fast_onehot_sampler_matches_distribution_and_gradient():
    from ssm_mbrl_ros.world_models.latents import sample_onehot_fast

    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, -1.0, 2.0], [3.0, 0.0, 0.0, -2.0]], dtype=torch.float64)
    probs = torch.softmax(logits, -1)
    draws = sample_onehot_fast(logits.expand(40000, 2, 4))
    assert torch.allclose(draws, draws.round(), atol=1e-12, rtol=0)  # one-hot up to the straight-through rounding
    torch.testing.assert_close(draws.sum(-1), torch.ones(40000, 2, dtype=draws.dtype))
    torch.testing.assert_close(draws.mean(0), probs, atol=0.01, rtol=0)  # std of a frequency <= 0.0025
    x = logits.clone().requires_grad_(True)
    w = torch.randn(2, 4, dtype=torch.float64)
    (sample_onehot_fast(x) * w).sum().backward()
    y = logits.clone().requires_grad_(True)
    (torch.softmax(y, -1) * w).sum().backward()
    torch.testing.assert_close(x.grad, y.grad)


@pytest.mark.parametrize("kind", KINDS)
def test_arch_round_trip_rebuilds_same_model(kind):
    from ssm_mbrl_ros.world_models.factory import world_model_from_arch

    model = _model(kind)
    clone = world_model_from_arch(model.arch())
    assert type(clone) is type(model) and clone.arch() == model.arch()
    clone.load_state_dict(model.state_dict())  # same parameter names and shapes
