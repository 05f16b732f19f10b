"""The torch.compile physics path (used by `bench sim` and large-batch training) matches eager."""
import torch

from ssm_mbrl_ros.sim.env import make_env


def test_compiled_env_matches_eager_env():
    n = 8
    compiled = make_env("figure8", n, seed=3, compile_physics=True)
    eager = make_env("figure8", n, seed=3)
    assert compiled.sim._substep_fn is not eager.sim._substep_fn  # really a different (compiled) callable
    obs_c, _ = compiled.reset(seed=3)
    obs_e, _ = eager.reset(seed=3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        action = torch.rand(n, 4, generator=gen) * 0.4 - 0.2
        action[:, 0] += 0.1
        obs_c, rew_c, term_c, trunc_c, _ = compiled.step(action)
        obs_e, rew_e, term_e, trunc_e, _ = eager.step(action)
    torch.testing.assert_close(compiled.sim.state, eager.sim.state, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(obs_c, obs_e, atol=1e-3, rtol=1e-4)
    assert torch.equal(term_c, term_e)
