"""The steadier late actor: learning-rate anneal over the budget and the Polyak-averaged exported actor."""
import json

import pytest
import torch

from ssm_mbrl_ros.agent.actor_critic import Actor
from ssm_mbrl_ros.cli.main import main
from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.train.actor_schedule import ActorAverage, anneal_factor, budget_fraction
from ssm_mbrl_ros.train.checkpoint import load_checkpoint
from ssm_mbrl_ros.train.config import TrainConfig

from test_trainer import TINY


def test_budget_fraction_takes_the_larger_spent_share():
    assert budget_fraction(300.0, 10, minutes=10, max_env_steps=0) == pytest.approx(0.5)
    assert budget_fraction(60.0, 750, minutes=10, max_env_steps=1000) == pytest.approx(0.75)
    assert budget_fraction(9e9, 0, minutes=1, max_env_steps=0) == 1.0
    assert budget_fraction(100.0, 100, minutes=0, max_env_steps=0) is None


def test_anneal_is_flat_then_linear_to_the_final_factor():
    assert anneal_factor(0.3, start=0.5, final=0.1) == 1.0
    assert anneal_factor(0.75, start=0.5, final=0.1) == pytest.approx(0.55)
    assert anneal_factor(1.0, start=0.5, final=0.1) == pytest.approx(0.1)
    assert anneal_factor(0.9, start=1.0, final=0.1) == 1.0  # off
    assert anneal_factor(None, start=0.0, final=0.1) == 1.0  # no budget


def test_average_follows_the_live_actor_at_its_decay_rate():
    torch.manual_seed(0)
    live = Actor(8, 4, 16, 2)
    avg = ActorAverage(live, decay=0.9)
    start = [p.detach().clone() for p in live.parameters()]
    with torch.no_grad():
        for p in live.parameters():
            p.add_(1.0)
    for _ in range(10):
        avg.update(live)
    for a, s in zip(avg.module.parameters(), start):  # 1 - 0.9^10 of the way to the moved weights
        assert torch.allclose(a, s + (1 - 0.9 ** 10), atol=1e-5)
        assert not a.requires_grad
    with pytest.raises(ValueError):
        ActorAverage(live, decay=1.0)


def test_bad_schedule_values_are_refused():
    with pytest.raises(ConfigError, match="actor_average"):
        TrainConfig(actor_average=1.0).validate()
    with pytest.raises(ConfigError, match="actor_lr_anneal_final"):
        TrainConfig(actor_lr_anneal_final=-0.1).validate()


def test_the_trainer_exports_the_average_and_resumes_it(tmp_path):
    d = tmp_path / "avg"
    args = [*TINY, "--set", "actor_average=0.99", "--set", "actor_lr_anneal_start=0.0",
            "--set", "actor_lr_anneal_final=0.5"]
    assert main(["train", "--logdir", str(d), "--max-env-steps", "600", *args]) == 0
    payload, _ = load_checkpoint(d, "cpu")
    live = {k[len("actor."):]: v for k, v in payload["learner"].items() if k.startswith("actor.")}
    avg = payload["actor_average"]
    assert avg.keys() == live.keys()
    assert any(not torch.equal(avg[k], live[k]) for k in avg)  # the actor learned and the average lags it
    assert payload["optim"]["actor"]["param_groups"][0]["lr"] < 0.6 * 3e-4  # annealed towards 0.5 x at the end
    side = json.loads((d / "policy.json").read_text())
    assert side["training_config"]["train"]["actor_average"] == 0.99
    assert main(["train", "--logdir", str(d), "--resume", "--max-env-steps", "800", "--no-progress"]) == 0
    resumed, _ = load_checkpoint(d, "cpu")
    assert resumed["actor_average"].keys() == avg.keys()
