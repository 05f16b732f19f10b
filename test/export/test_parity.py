"""Exported policy graph: torch vs onnxruntime over 500-step closed-loop rollouts (batch 1 and 256)."""
import numpy as np
import pytest
import torch

from ssm_mbrl_ros.agent.actor_critic import Actor
from ssm_mbrl_ros.export.policy_graph import PolicyGraph, export_policy
from ssm_mbrl_ros.runtime.policy import OnnxPolicy
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.world_models.factory import make_world_model
from ssm_mbrl_ros.world_models.config import wm_preset


def build(kind, env, seed=0):
    torch.manual_seed(seed)
    wm = make_world_model(wm_preset("small", kind=kind), env.obs_layout.dim, 4, env.privileged_layout.dim)
    actor = Actor(wm.feat_dim, hidden=64, init_action=[-0.56, 0, 0, 0])
    with torch.no_grad():  # a visibly state-dependent policy (a fresh actor's output layer is ~0)
        actor.net[-1].weight.normal_(0.0, 0.05)
        wm.post_head[-1].weight.mul_(30.0)  # confident posteriors, as after training (fresh ones are ~uniform)
    return wm.eval(), actor.eval()


@pytest.mark.parametrize("kind", ["s5", "rssm"])
@pytest.mark.parametrize("batch", [1, 256])
def test_closed_loop_parity_500_steps(kind, batch, tmp_path):
    """onnxruntime flies the sim for 500 steps; each step torch gets the same obs and the same input state.

    Feeding torch the runtime's state keeps rows comparable step by step. The latent is a mode (argmax):
    where a posterior's top-2 logits are within 1e-4 the two implementations may legitimately pick
    different classes (float rounding), so those rare rows are counted and excluded, never hidden.
    """
    env = make_env("hover", batch, seed=batch)
    wm, actor = build(kind, env)
    path = export_policy(wm, actor, tmp_path / "p.onnx", obs_layout=env.obs_layout, action_spec=env.action_spec,
                         control_hz=100.0, vehicle=env.vehicle.name, task="hover")
    graph = PolicyGraph(wm, actor).eval()
    pol = OnnxPolicy(path)
    pol.reset(batch)
    obs, _ = env.reset(seed=batch)
    first = torch.ones(batch)
    worst_action = worst_state = worst_surprise = 0.0
    ambiguous = resets = 0
    for _ in range(500):
        state_in = torch.from_numpy(pol.state)
        with torch.no_grad():
            a_torch, state, s_torch = graph(obs, state_in, first)
            kept = state_in * (1.0 - first)[:, None]
            _, _, post, _ = wm.filter_step(wm.unpack_carry(kept[:, :graph.carry_size]), obs,
                                           kept[:, graph.carry_size:], first, sample=False)
            top2 = post.topk(2, dim=-1).values
            clear = ((top2[..., 0] - top2[..., 1]).amin(-1) > 1e-4).numpy()  # (B,) every group's mode is clear
        a_ort, _, s_ort = pol.step(obs.numpy())
        a_ort = a_ort.reshape(batch, 4)
        ambiguous += int((~clear).sum())
        if clear.any():
            worst_action = max(worst_action, float(np.abs(a_ort - a_torch.numpy())[clear].max()))
            worst_state = max(worst_state, float(np.abs(pol.state - state.numpy())[clear].max()))
            worst_surprise = max(worst_surprise, float(np.abs(np.reshape(s_ort, -1) - s_torch.numpy())[clear].max()))
        obs, _, term, trunc, _ = env.step(torch.from_numpy(a_ort))  # the ONNX policy flies the simulator
        done = term | trunc
        first = done.float()
        if bool(done.any()):
            resets += int(done.sum())
            pol.reset_where(done.numpy())
    assert worst_action <= 1e-4, f"max |action_torch - action_ort| = {worst_action:.2e}"
    assert worst_state <= 1e-4 and worst_surprise <= 1e-4, (worst_state, worst_surprise)
    assert ambiguous <= 0.01 * 500 * batch, f"{ambiguous} near-tie rows of {500 * batch}"


@pytest.mark.parametrize("latent", ["probs", "prior"])
@pytest.mark.parametrize("kind", ["s5", "rssm"])
def test_soft_feature_actors_export_their_feature(kind, latent, tmp_path):
    """An actor trained on posterior probabilities acts on [h, posterior probs] in ONNX too, one trained on the prior
    on [h, prior probs at h]; the carry keeps the posterior mode."""
    env = make_env("hover", 8, seed=3)
    wm, _ = build(kind, env)
    torch.manual_seed(1)
    actor = Actor(wm.feat_dim, hidden=64, init_action=[-0.56, 0, 0, 0], latent=latent).eval()
    with torch.no_grad():
        actor.net[-1].weight.normal_(0.0, 0.05)
    path = export_policy(wm, actor, tmp_path / "p.onnx", obs_layout=env.obs_layout, action_spec=env.action_spec,
                         control_hz=100.0, vehicle=env.vehicle.name, task="hover")
    pol = OnnxPolicy(path)
    pol.reset(8)
    obs, _ = env.reset(seed=3)
    carry, prev, first = wm.initial(8), torch.zeros(8, 4), torch.ones(8)
    worst = 0.0
    for _ in range(50):
        with torch.no_grad():  # reference written out by hand: filter with the mode, act on the probabilities
            carry, _, post, prior = wm.filter_step(carry, obs, prev, first, sample=False)
            read = post if latent == "probs" else prior
            want = actor.mean_action(torch.cat([carry["h"], read.exp().flatten(-2)], -1))
            mode_only = actor.mean_action(wm.feat(carry))
        a_ort = torch.from_numpy(pol.step(obs.numpy())[0].reshape(8, 4))
        worst = max(worst, float((a_ort - want).abs().max()))
        assert float((a_ort - mode_only).abs().max()) > 1e-3  # the graph did not fall back to the one-hot mode
        prev, first = want, torch.zeros(8)
        obs, *_ = env.step(a_ort)
    assert worst <= 1e-4, worst
    with pytest.raises(ValueError, match="latent"):
        Actor(wm.feat_dim, latent="mean")


def test_export_refuses_mismatched_layout(tmp_path):
    env = make_env("hover", 2)
    wm, actor = build("s5", env)
    bad = make_env("hover_partial", 2).obs_layout
    with pytest.raises(ValueError, match="obs_layout has 19 values but the world model reads 22"):
        export_policy(wm, actor, tmp_path / "x.onnx", obs_layout=bad, action_spec=env.action_spec, control_hz=100.0,
                      vehicle="agile5", task="hover")
