"""Training from the episode store: ingest, train ratio, snapshots a collector accepts, resume, refusals."""
import json

import pytest

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.runtime.policy import OnnxPolicy
from ssm_mbrl_ros.train.onnx_collector import CollectorConfig, OnnxCollector, expert_phase
from ssm_mbrl_ros.train.store_trainer import StoreTrainer, StoreTrainerConfig

TINY = ["preset=tiny", "device=cpu", "threads=1", "prefill_steps=200", "batch_size=4", "seq_len=16", "imag_starts=64",
        "actor_warmup_updates=2", "train_ratio=16", "expert=geometric", "bc_updates=1000", "log_every_updates=5"]


def collect(store, steps, seed=0, model=""):
    col = OnnxCollector(CollectorConfig(store=str(store), num_envs=8, seed=seed, model=model, expert="geometric",
                                        task_overrides=["episode_length_s=0.5"], episodes_per_chunk=8))
    while col.env_steps < steps:
        col.step()
    col.close()
    return col


def test_trainer_ingests_chunks_updates_at_the_ratio_and_exports_what_a_collector_flies(tmp_path):
    store = tmp_path / "store"
    collect(store, 400)
    snaps = []
    tr = StoreTrainer(StoreTrainerConfig(store=str(store), logdir=str(tmp_path / "run"), set=TINY,
                                         export_every_s=1e6, poll_every_s=0.01), on_snapshot=snaps.append, log=print)
    ingested = tr.env_steps
    assert ingested >= 400 and tr.ready
    while tr.work(5.0):
        pass
    per_update = 4 * 16 / 16
    assert tr.learner.updates == int(ingested // per_update)  # the train ratio, exactly: no more, no less
    m = tr.metrics()
    assert m["env_steps_ingested"] == ingested and m["losses"]["bc_loss"] > 0 and m["losses"]["expert_rows"] > 0.8
    path = tr.export_snapshot()
    assert snaps == [path] and path.name == "policy_00001.onnx" and (tmp_path / "run" / "policy.onnx").is_file()
    side = OnnxPolicy(path).sidecar
    assert side["training_config"]["updates"] == tr.learner.updates and expert_phase(side)
    # a collector flies the snapshot; its chunks are picked up by the next poll
    col = collect(store, 160, seed=1, model=str(path))
    assert col.stats()["policy"] == str(path)
    tr._next_poll = 0.0
    tr.work(0.5)
    assert tr.env_steps > ingested and tr.learner.updates > int(ingested // per_update)
    tr.close()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in rows} == {"train", "snapshot"}
    # resume: counters and chunks carry over, nothing is ingested twice
    again = StoreTrainer(StoreTrainerConfig(store=str(store), logdir=str(tmp_path / "run"), set=TINY), log=print)
    assert again.learner.updates == tr.learner.updates and again.env_steps == tr.env_steps
    assert again.snapshots == tr.snapshots
    with pytest.raises(ConfigError, match="trainer.resume"):
        StoreTrainer(StoreTrainerConfig(store=str(store), logdir=str(tmp_path / "run"), set=TINY, resume=False))


def test_budget_and_refusals(tmp_path):
    collect(tmp_path / "store", 240)
    tr = StoreTrainer(StoreTrainerConfig(store=str(tmp_path / "store"), logdir=str(tmp_path / "r"),
                                         set=TINY + ["max_env_steps=100", "minutes=0"]), log=print)
    while not tr.done:
        tr.work(5.0)
    assert tr.learner.updates == int(tr.env_steps // 4)  # the steps already stored are trained on, then done
    with pytest.raises(ConfigError, match="train.task: .*'figure8'"):
        StoreTrainer(StoreTrainerConfig(store=str(tmp_path / "store"), logdir=str(tmp_path / "x"),
                                        set=["task=figure8"]))
    with pytest.raises(ConfigError, match="train.batch_size: expected an integer"):
        StoreTrainer(StoreTrainerConfig(store=str(tmp_path / "store"), logdir=str(tmp_path / "x"),
                                        set=["batch_size=abc"]))


def test_the_trainers_own_store_carries_its_expert_labels(tmp_path):
    """`ssm-mbrl train --set record_store=true --set expert=geometric`: the labels the learner saw are in the store."""
    import numpy as np

    from ssm_mbrl_ros.control.experts import GeometricAgent
    from ssm_mbrl_ros.bags.recorder import EnvRecorder
    from ssm_mbrl_ros.bags.replay import Replay
    from ssm_mbrl_ros.bags.store import EpisodeStore
    from ssm_mbrl_ros.sim.env import make_env
    from ssm_mbrl_ros.train.collector import Collector
    from ssm_mbrl_ros.train.config import TrainConfig
    from ssm_mbrl_ros.train.learner import Learner
    from ssm_mbrl_ros.train.sequence_buffer import SequenceBuffer

    env = make_env("hover", 4, seed=0, overrides=["episode_length_s=0.2", "control_hz=100"])
    buf = SequenceBuffer(4, env.obs_layout.dim, 4, env.privileged_layout.dim, 4000)
    rec = EnvRecorder(EpisodeStore(tmp_path), env, episodes_per_chunk=4)
    col = Collector(env, buf, seed=0, recorder=rec)
    learner = Learner(TrainConfig(preset="tiny"), env.obs_layout.dim, env.privileged_layout.dim)
    expert = GeometricAgent(env)
    for _ in range(35):  # one 20-step episode per env, then 15 steps of the next (stored by close())
        col.step(learner.wm, learner.actor, expert=expert, expert_flies=True, expert_noise=0.1)
    rec.close()
    data = Replay(tmp_path).arrays()
    assert data["expert"].sum() == 4 * 35  # every acted step is labelled; final states are not
    np.testing.assert_allclose(data["expert_action"][:20], buf.data["expert_action"][0, :20], atol=1e-5)
    np.testing.assert_allclose(data["action"][:20], buf.data["action"][0, :20], atol=1e-5)
