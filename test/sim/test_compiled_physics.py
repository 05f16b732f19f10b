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


def test_a_failing_compiler_falls_back_to_eager_with_a_warning(monkeypatch, caplog):
    """A machine where inductor cannot build (no C++ compiler, an unsupported backend) still simulates, eagerly."""
    from ssm_mbrl_ros.sim import dynamics

    def broken_compile(fn, **kw):
        def run(*args):
            raise RuntimeError("no C++ compiler found")
        return run

    monkeypatch.setattr(dynamics.torch, "compile", broken_compile)
    n = 4
    compiled = make_env("hover", n, seed=1, compile_physics=True)
    eager = make_env("hover", n, seed=1)
    compiled.reset(seed=1)
    eager.reset(seed=1)
    action = torch.full((n, 4), 0.05)
    with caplog.at_level("WARNING"):
        for _ in range(5):
            compiled.step(action)
            eager.step(action)
    assert "no C++ compiler found" in compiled.sim._substep_fn.failed
    assert "compiled physics unavailable" in caplog.text
    assert torch.equal(compiled.sim.state, eager.sim.state)  # the fallback is the eager function itself
