"""The ONNX collector: prefill, hot swap with validation, expert labels, nothing lost on close."""
import json

import numpy as np
import pytest
import torch

from ssm_mbrl_ros.agent.actor_critic import Actor
from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.export.policy_graph import export_policy
from ssm_mbrl_ros.bags.replay import Replay
from ssm_mbrl_ros.bags.store import list_chunks
from ssm_mbrl_ros.runtime.policy import OnnxPolicy
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.train.onnx_collector import CollectorConfig, OnnxCollector, expert_phase
from ssm_mbrl_ros.world_models.factory import make_world_model
from ssm_mbrl_ros.world_models.config import wm_preset

SHORT = ["episode_length_s=0.3", "control_hz=100"]  # 30-step episodes: the collector mechanics, not the rate


def export_tiny(path, task="hover", seed=0, training_config=None):
    """A small untrained policy for `task` (hover thrust initialised)."""
    torch.manual_seed(seed)
    env = make_env(task, 1)
    wm = make_world_model(wm_preset("tiny"), env.obs_layout.dim, 4, 0)
    hover = env.action_spec.to_normalized(np.array([9.81, 0, 0, 0])).tolist()
    return export_policy(wm, Actor(wm.feat_dim, hidden=16, init_action=hover), path, obs_layout=env.obs_layout,
                         action_spec=env.action_spec, control_hz=100.0, vehicle="agile5", task=task,
                         training_config=training_config or {})


def test_prefill_then_swap_records_every_step_and_labels(tmp_path):
    model = export_tiny(tmp_path / "m.onnx")
    col = OnnxCollector(CollectorConfig(store=str(tmp_path / "store"), num_envs=4, seed=1, task_overrides=SHORT,
                                        expert="geometric", expert_mix=0.5, episodes_per_chunk=4))
    for _ in range(40):
        col.step()
    assert col.stats()["policy"] == "prefill" and col.stats()["expert_active"]
    assert col.try_swap(str(model)) is None
    for _ in range(45):
        col.step()
    s = col.stats()
    assert s["swaps"] == 1 and s["policy"] == str(model) and s["env_steps"] == 4 * 85
    col.close()
    rp = Replay(tmp_path / "store")
    data = rp.arrays()
    # every env step is one row, plus the final state of each stored episode: nothing collected is lost
    n_eps = int(data["is_first"].sum())
    assert len(data["obs"]) == s["env_steps"] + n_eps and rp.report.problems == []
    assert data["expert"].mean() > 0.9  # every acted row carries the geometric controller's label
    assert np.isfinite(data["reward"]).all()
    policies = [json.loads(i)["behaviour_policy"] for i in _infos(tmp_path / "store")]
    assert "prefill" in policies and str(model) in policies


def _infos(root):
    import yaml

    out = []
    for c in list_chunks(root):
        meta = yaml.safe_load((c / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        out += [json.dumps(i) for i in json.loads(meta["custom_data"]["ssm_mbrl_ros.episodes"])]
    return out


def test_prefill_acts_around_hover_like_the_trainers_initial_actor(tmp_path):
    col = OnnxCollector(CollectorConfig(store=str(tmp_path), num_envs=64, prefill_noise=0.3, task_overrides=SHORT))
    for _ in range(5):
        col.step()
    hover = col.env.action_spec.to_normalized(np.array([9.81, 0, 0, 0]))
    last = col.env.last_action.numpy()  # the normalised action flown on the last step
    assert abs(np.median(last[:, 0]) - hover[0]) < 0.1 and 0.1 < last[:, 1].std() < 0.5


def test_broken_or_foreign_models_are_rejected_and_collection_goes_on(tmp_path):
    good = export_tiny(tmp_path / "good.onnx")
    partial = export_tiny(tmp_path / "partial.onnx", task="hover_partial")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(good.read_bytes()[:1000])
    bad.with_suffix(".json").write_text(good.with_suffix(".json").read_text())
    col = OnnxCollector(CollectorConfig(store=str(tmp_path / "s"), num_envs=2, model=str(good), task_overrides=SHORT))
    assert "checksum" in col.try_swap(str(bad))
    assert "observation" in col.try_swap(str(partial))
    assert "nosuch" in col.try_swap("nosuch")
    col.step()
    assert col.stats()["rejected_models"] == 3 and col.stats()["policy"] == str(good) and col.env_steps == 2
    with pytest.raises(ConfigError, match="model 'nosuch'"):
        OnnxCollector(CollectorConfig(store=str(tmp_path / "s"), model="nosuch"))
    with pytest.raises(ConfigError, match="collector.expert_mix"):
        CollectorConfig(expert_mix=2.0).validate()


def test_the_filter_sees_the_action_actually_flown(tmp_path):
    pol = OnnxPolicy(export_tiny(tmp_path / "m.onnx"))
    pol.reset(3)
    pol.step(np.zeros((3, pol.obs_dim), np.float32))
    flown = np.full((3, 4), 0.25, np.float32)
    assert pol.set_prev_action(flown)
    np.testing.assert_array_equal(pol.state[:, -4:], flown)


def test_expert_phase_follows_the_trainers_bc_budget():
    assert expert_phase({})  # unknown: keep the expert flying
    tc = {"train": {"expert": "geometric", "bc_updates": 100}}
    assert expert_phase({"training_config": {**tc, "updates": 99}})
    assert not expert_phase({"training_config": {**tc, "updates": 100}})


def test_step_rate_cap(tmp_path):
    import time

    col = OnnxCollector(CollectorConfig(store=str(tmp_path), num_envs=4, max_steps_per_s=200.0, task_overrides=SHORT))
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 1.0:
        col.run_for(0.05)
    assert 150 <= col.env_steps <= 260, col.env_steps  # 200 steps/s (4 per vector step), not as fast as possible
