"""`ssm-mbrl train` end to end on a tiny budget: files, ONNX export + evaluate, resume, bad input, DDP."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from ssm_mbrl_ros.cli.main import main
from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.train.checkpoint import load_checkpoint, load_torch_file, replay_path
from ssm_mbrl_ros.runtime.policy import OnnxPolicy

TINY = ["--task", "hover", "--wm", "s5", "--preset", "tiny", "--num-envs", "8", "--device", "cpu", "--minutes", "0",
        "--no-progress", "--set", "prefill_steps=200", "--set", "batch_size=4", "--set", "seq_len=16",
        "--set", "imag_starts=64", "--set", "eval_episodes=4", "--set", "task_overrides=[episode_length_s=0.5]",
        "--set", "log_every_updates=5", "--set", "actor_warmup_updates=3", "--set", "actor_gate_r2=0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("train") / "run"
    assert main(["train", "--logdir", str(d), "--max-env-steps", "600", "--set", "record_store=true", *TINY]) == 0
    return d


def test_run_writes_checkpoint_policy_curves_and_logs(run_dir):
    assert replay_path(run_dir).is_file()
    for name in ("checkpoint.pt", "policy.onnx", "policy.json", "best.onnx", "curves.png",
                 "metrics.jsonl", "summary.json", "config.json"):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "tb").iterdir()), "no TensorBoard event file"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 600 and summary["updates"] > 0
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in rows} == {"train", "eval"}
    side = json.loads((run_dir / "policy.json").read_text())
    assert side["task"] == "hover" and side["training_config"]["train"]["wm"] == "s5"
    assert side["training_config"]["arch"]["world_model"]["deter"] == 32
    # the drones trained on hover's curriculum and shaping; the exported task is the task as evaluated
    assert side["training_config"]["collect_overrides"] == ["near_start_fraction=0.5", "reward.pos_weight=2",
                                                        "reward.rate_weight=0.01", "reward.precision_weight=2"]
    assert side["task_config"]["near_start_fraction"] == 0.0 and side["task_config"]["reward"]["pos_weight"] == 1.0
    from ssm_mbrl_ros.bags.replay import Replay

    store = Replay(run_dir / "store")  # the collected episodes, as rosbag2 MCAP chunks
    assert store.chunk_names and store.num_steps >= 8 * 50, store.report.summary()
    pol = OnnxPolicy(run_dir / "policy.onnx")
    action, ctbr, surprise = pol.step(np.zeros(pol.obs_dim, np.float32))
    assert action.shape == (4,) and np.all(np.abs(action) <= 1) and np.isfinite(surprise)


def test_evaluate_scores_the_exported_policy(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--policy", str(run_dir / "policy.onnx"), "--episodes", "3", "--no-progress",
                 "--set", "episode_length_s=1.0", "--json", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["task"] == "hover" and m["episodes"] == 3 and m["controller"].startswith("policy:")
    assert m["mean_surprise_nats"] >= 0.0
    assert (tmp_path / "eval.png").is_file()
    # a policy for another observation layout is refused with the reason
    assert main(["evaluate", "--policy", str(run_dir / "policy.onnx"), "--task", "hover_partial",
                 "--episodes", "2", "--no-progress"]) == 2
    assert "observation layout" in capsys.readouterr().err


def test_resume_continues_counters_and_replay(run_dir, tmp_path):
    import shutil

    d = tmp_path / "resumed"
    shutil.copytree(run_dir, d)
    before = json.loads((d / "summary.json").read_text())
    with np.load(replay_path(d)) as z:
        ptr_before = z["ptr"].copy()
    assert main(["train", "--logdir", str(d), "--resume", "--max-env-steps", "800", "--no-progress"]) == 0
    after = json.loads((d / "summary.json").read_text())
    assert after["env_steps"] == 800 and after["updates"] > before["updates"]
    assert len(list(d.glob("replay-*.npz"))) == 1  # older generations are removed
    with np.load(replay_path(d)) as z:
        assert (z["ptr"] > ptr_before).all() and (z["ptr"] >= ptr_before + 200 // 8).all()


def test_resume_accepts_a_checkpoint_older_than_an_option_left_at_its_default(run_dir, tmp_path, capsys):
    """A checkpoint written before `priv_standardize` and `actor_latent` existed resumes while they stay at their
    defaults; setting one says what differs."""
    import shutil

    import torch

    d = tmp_path / "old"
    shutil.copytree(run_dir, d)
    payload = torch.load(d / "checkpoint.pt", weights_only=True)
    del payload["arch"]["world_model"]["priv_standardize"], payload["arch"]["actor"]["latent"]
    del payload["config"]["actor_latent"]
    torch.save(payload, d / "checkpoint.pt")
    assert main(["train", "--logdir", str(d), "--resume", "--set", "world_model.priv_standardize=true",
                 "--max-env-steps", "800", "--no-progress"]) == 2
    assert "arch.world_model.priv_standardize: absent in checkpoint, True now" in capsys.readouterr().err
    assert main(["train", "--logdir", str(d), "--resume", "--max-env-steps", "800", "--no-progress"]) == 0
    assert json.loads((d / "summary.json").read_text())["env_steps"] == 800


def test_actor_waits_for_the_action_response_gate(tmp_path):
    d = tmp_path / "gated"
    assert main(["train", "--logdir", str(d), "--max-env-steps", "400", *TINY, "--set", "actor_gate_r2=0.999",
                 "--set", "probe_every_updates=50"]) == 0
    rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    probes = [r for r in rows if r["kind"] == "probe"]
    assert probes and all(r["actor_started"] is None for r in probes)
    assert all(np.isfinite(r["r2_omega"]) and r["r2_omega"] < 0.999 for r in probes)
    # the actor was held back: no actor-critic metrics in any train record
    assert not any("actor_loss" in r for r in rows if r["kind"] == "train")


def test_short_prefill_waits_for_one_full_window(tmp_path):
    """seq_len 64 with prefill 16 env steps: collection goes on until every drone holds a 64-step window."""
    d = tmp_path / "run"
    args = [a if a != "seq_len=16" else "seq_len=64" for a in TINY]
    args = [a if a != "prefill_steps=200" else "prefill_steps=16" for a in args]
    assert main(["train", "--logdir", str(d), "--max-env-steps", "640", *args]) == 0
    rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "train" for r in rows)
    assert json.loads((d / "summary.json").read_text())["updates"] > 0


def test_bad_input_fails_with_the_reason(run_dir, tmp_path, capsys):
    assert main(["train", "--logdir", str(tmp_path / "x"), "--task", "hoover", "--max-env-steps", "10"]) == 2
    assert "unknown task 'hoover'" in capsys.readouterr().err
    assert main(["train", "--logdir", str(tmp_path / "x"), "--set", "batch_size=abc", "--max-env-steps", "10"]) == 2
    assert "batch_size" in capsys.readouterr().err
    assert main(["train", "--logdir", str(tmp_path / "x"), "--wm", "lstm", "--max-env-steps", "10"]) == 2
    assert "valid: ['s5', 'rssm']" in capsys.readouterr().err
    # resuming with another architecture says what differs
    assert main(["train", "--logdir", str(run_dir), "--resume", "--preset", "small", "--max-env-steps", "10",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "incompatible" in err and "config.preset: 'tiny' in checkpoint, 'small' now" in err
    # an existing run is never overwritten without --resume
    assert main(["train", "--logdir", str(run_dir), "--max-env-steps", "10"]) == 2
    assert "--resume" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_gloo_keep_identical_weights(tmp_path):
    d = tmp_path / "ddp"
    env = {**os.environ, "SSM_MBRL_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "ssm_mbrl_ros.cli", "train", "--logdir", str(d),
           "--max-env-steps", "400", "--set", "threads=1", "--set", "world_model.priv_standardize=true", *TINY]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_in_sync"] is True
    assert summary["updates"] > 0


def test_a_kill_between_the_replay_and_the_checkpoint_resumes_consistently(run_dir, tmp_path):
    """Simulate a kill after the new replay file was renamed but before the checkpoint was: the old checkpoint
    still pairs with its own replay; temporary files of the killed save are removed by the next one."""
    import shutil

    import torch

    d = tmp_path / "killed"
    shutil.copytree(run_dir, d)
    payload = torch.load(d / "checkpoint.pt", weights_only=True)
    good = replay_path(d)
    gen = payload["generation"]
    with np.load(good) as z:
        ahead = {k: z[k] for k in z.files}
    ahead["generation"] = np.int64(gen + 1)
    ahead["ptr"] = ahead["ptr"] + 1000  # one save ahead of the counters
    np.savez(d / f"replay-{gen + 1:06d}.npz", **ahead)
    (d / ".checkpoint.pt.12345.tmp").write_bytes(b"half a checkpoint")
    loaded, replay = load_checkpoint(d)
    assert loaded["generation"] == gen and replay is not None
    with np.load(good) as z:
        np.testing.assert_array_equal(replay["ptr"], z["ptr"])
    assert main(["train", "--logdir", str(d), "--resume", "--max-env-steps", "800", "--no-progress"]) == 0
    names = sorted(p.name for p in d.iterdir())
    assert not any(n.endswith(".tmp") for n in names) and len([n for n in names if n.startswith("replay-")]) == 1
    # a replay of another generation under the checkpoint's name is detected, not trained on
    payload = torch.load(d / "checkpoint.pt", weights_only=True)
    with np.load(replay_path(d)) as z:
        other = {k: z[k] for k in z.files}
    other["generation"] = np.int64(payload["generation"] - 1)
    np.savez(replay_path(d), **other)
    with pytest.raises(ConfigError, match="generation"):
        load_checkpoint(d)


class _Exploit:
    """Unpickling this would run a shell command (what a full, unrestricted unpickle of a hostile file does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_checkpoint_is_refused_without_running_code(tmp_path, capsys):
    import pickle

    import torch

    marker = tmp_path / "pwned"
    d = tmp_path / "evil"
    d.mkdir()
    torch.save({"config": {}, "x": _Exploit(marker)}, d / "checkpoint.pt")  # a zip checkpoint with a hostile pickle
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(_Exploit(marker)))  # a bare pickle
    assert main(["train", "--logdir", str(d), "--resume", "--no-progress", "--max-env-steps", "10"]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not a readable checkpoint"):
        load_torch_file(tmp_path / "evil.pt")
    assert not marker.exists()


def test_train_offline_init_with_junk_is_a_clean_error(tmp_path):
    from ssm_mbrl_ros.train.offline import build_world_model
    from ssm_mbrl_ros.world_models.config import wm_preset

    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(300))
    with pytest.raises(ConfigError, match="--init: .*junk.pt is not a readable checkpoint"):
        build_world_model(wm_preset("tiny"), str(junk), 22, 0, "cpu")
    import torch

    torch.save({"something": torch.zeros(3)}, tmp_path / "other.pt")  # a torch file, but no world model
    with pytest.raises(ConfigError, match="holds no world model"):
        build_world_model(wm_preset("tiny"), str(tmp_path / "other.pt"), 22, 0, "cpu")


def test_compile_physics_resolves_by_budget_and_reaches_the_collection_env(tmp_path):
    from ssm_mbrl_ros.sim.dynamics import CompiledSubstep, physics_substep
    from ssm_mbrl_ros.train.config import TrainConfig
    from ssm_mbrl_ros.train.trainer import Trainer

    assert TrainConfig(minutes=10).physics_compiled()  # the 10-minute default pays its compilation back
    assert not TrainConfig(minutes=0.5).physics_compiled()  # a short run would spend more compiling than stepping
    assert TrainConfig(minutes=0, max_env_steps=50_000).physics_compiled()
    assert not TrainConfig(minutes=10, compile_physics="off").physics_compiled()
    assert TrainConfig(minutes=0.5, compile_physics="on").physics_compiled()
    with pytest.raises(ConfigError, match="compile_physics"):
        TrainConfig(compile_physics="yes").validate()
    cfg = TrainConfig(task="hover", wm="s5", preset="tiny", num_envs=4, device="cpu", minutes=0.1,
                      compile_physics="on")
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    assert isinstance(trainer.env.sim._substep_fn, CompiledSubstep)
    cfg_off = TrainConfig(task="hover", wm="s5", preset="tiny", num_envs=4, device="cpu", minutes=0.1)
    assert Trainer(cfg_off, tmp_path / "run_off", progress=False).env.sim._substep_fn is physics_substep


def test_the_gate_asks_for_half_the_r2_after_actor_gate_max_updates(tmp_path):
    from ssm_mbrl_ros.train.config import TrainConfig
    from ssm_mbrl_ros.train.trainer import Trainer

    base = dict(task="hover", wm="s5", preset="tiny", num_envs=4, device="cpu", minutes=0.1, actor_gate_r2=0.7)
    trainer = Trainer(TrainConfig(**base, actor_gate_max_updates=300), tmp_path / "a", progress=False)
    trainer.learner.updates = 299
    assert trainer.gate_r2() == pytest.approx(0.7)
    trainer.learner.updates = 300
    assert trainer.gate_r2() == pytest.approx(0.35)
    never = Trainer(TrainConfig(**base, actor_gate_max_updates=0), tmp_path / "b", progress=False)
    never.learner.updates = 10**6
    assert never.gate_r2() == pytest.approx(0.7)  # 0: the threshold never relaxes
    with pytest.raises(ConfigError, match="actor_gate_max_updates"):
        TrainConfig(actor_gate_max_updates=-1).validate()
