"""The compiled trainer update (TrainConfig.compile, torch.compile with inductor) computes what the eager one does."""
import os
import shutil

import pytest
import torch

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.train.config import TrainConfig
from ssm_mbrl_ros.train.learner import Learner
from learner_helpers import replay_batch as batch


def _learner(compile_mode: str, wm: str) -> Learner:
    torch.manual_seed(0)
    cfg = TrainConfig(wm=wm, preset="tiny", compile=compile_mode, imag_starts=32, horizon=5, actor_warmup_updates=0,
                      actor_gate_r2=0, threads=0)
    learner = Learner(cfg, 22, 25)
    with torch.no_grad():  # off the zero-initialised heads, whose tiny first gradients are rounding-dominated
        g = torch.Generator().manual_seed(1)
        for p in learner.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return learner


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                    reason="torch.compile's CPU backend needs a C++ compiler (g++ or $CXX)")
@pytest.mark.parametrize("wm", ["s5", "rssm"])
def test_compiled_update_matches_eager(wm):
    import torch._inductor.config as inductor_config

    with inductor_config.patch(fallback_random=True):  # the compiled program draws eager's random numbers
        _check_compiled_matches_eager(wm)


def _check_compiled_matches_eager(wm: str) -> None:
    data = batch()
    results = {}
    for mode in ("off", "default"):
        learner = _learner(mode, wm)
        metrics = []
        for step in range(2):  # the second update also exercises the compiled code's reuse (no recompilation)
            torch.manual_seed(100 + step)
            metrics.append(learner.update(data))
        results[mode] = (metrics, {k: v.detach().clone() for k, v in learner.state_dict().items()})
    (eager_m, eager_p), (comp_m, comp_p) = results["off"], results["default"]
    for em, cm in zip(eager_m, comp_m):
        assert em.keys() == cm.keys()
        for k in em:
            assert cm[k] == pytest.approx(em[k], rel=2e-3, abs=2e-4), k
    for k, v in eager_p.items():
        torch.testing.assert_close(comp_p[k], v, rtol=1e-3, atol=1e-4, msg=lambda m, k=k: f"{k}: {m}")


def test_compile_mode_is_checked():
    with pytest.raises(ConfigError, match="compile"):
        TrainConfig(compile="fast").validate()
