"""Simulator rollouts recorded into the store become training data equal to what the env produced."""
import numpy as np
import torch

from ssm_mbrl_ros.control.experts import make_agent
from ssm_mbrl_ros.bags.bag_info import bags_info
from ssm_mbrl_ros.bags.recorder import EnvRecorder
from ssm_mbrl_ros.bags.replay import Replay
from ssm_mbrl_ros.bags.store import EpisodeStore
from ssm_mbrl_ros.sim.env import make_env


def test_recorded_hover_episodes_match_env_obs_and_reward(tmp_path):
    env = make_env("hover", 3, dtype=torch.float64, overrides=["episode_length_s=0.5", "control_hz=100"])
    agent = make_agent("geometric", env)
    store = EpisodeStore(tmp_path)
    rec = EnvRecorder(store, env, seed=3, episodes_per_chunk=3)
    obs, info = env.reset(seed=3)
    rec.begin(info)
    obs_log, rew_log = [obs.numpy()], []
    for _ in range(50):
        ctbr = agent.act(obs, env)
        obs, r, term, trunc, info = env.step_physical(ctbr)
        rec.step(ctbr, term, trunc, info)
        rew_log.append(r.numpy())
        obs_log.append(info["final_obs"].numpy() if "final_obs" in info else obs.numpy())
    rec.flush()
    assert len(rec.chunks_written) == 1
    data = Replay(tmp_path).arrays()
    assert len(data["obs"]) == 3 * 51 and np.flatnonzero(data["is_first"]).tolist() == [0, 51, 102]
    from ssm_mbrl_ros.bags.dataset import obs_layout

    def key(layout):
        return [(f.name, f.size, f.unit, f.frame) for f in layout.fields]

    assert key(obs_layout(True)) == key(env.obs_layout)  # same named layout as the env
    env0 = slice(0, 51)  # episode of env 0 (episodes end together: same length)
    want_obs = np.array([o[0] for o in obs_log])
    np.testing.assert_allclose(data["obs"][env0], want_obs, atol=2e-5)  # the env's own observation, rebuilt from the bag
    np.testing.assert_allclose(data["reward"][env0][1:], np.array(rew_log)[:, 0], atol=2e-5)
    assert (data["cont"] == 1).all()  # truncated, not terminated
    info_all = bags_info(tmp_path)
    assert info_all["bags"][0]["episodes"] == 3 and info_all["report"]["problem_counts"] == {}
