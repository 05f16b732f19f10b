"""Collector + trainer nodes over DDS: the trainer picks up chunks written by a collector, trains, exports and
announces snapshots, the collector swaps them in; Ctrl-C stores and saves everything; bad parameters exit 2."""
import json
import time

import pytest
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String

from node_procs import NS, run_bad, start, stop
from ssm_mbrl_ros.bags.replay import Replay
from ssm_mbrl_ros.bags.store import list_partial
from ssm_mbrl_ros.runtime.policy import OnnxPolicy

TINY = "[preset=tiny, device=cpu, threads=1, prefill_steps=300, batch_size=4, seq_len=16, imag_starts=64, " \
       "actor_warmup_updates=2, train_ratio=8, log_every_updates=5, minutes=30]"
LATCHED = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


class Probe(Node):
    """Listens to the training graph."""

    def __init__(self):
        super().__init__("train_probe", namespace=NS)
        self.metrics, self.stats, self.models = {}, {}, []
        self.create_subscription(String, "trainer/metrics", lambda m: self.metrics.update(json.loads(m.data)), 10)
        self.create_subscription(String, "collector/stats", self.on_stats, 10)
        self.create_subscription(String, "policy/model", lambda m: self.models.append(m.data), LATCHED)

    def on_stats(self, m):
        stats = json.loads(m.data)
        self.stats[stats["node"].rsplit("/", 1)[-1]] = stats

    def spin_until(self, cond, timeout_s, procs=()):
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not cond():
            rclpy.spin_once(self, timeout_sec=0.05)
            for p in procs:
                assert p.poll() is None, f"a node exited early: {p.communicate()[0][-3000:]}"
        return cond()


def test_trainer_picks_up_collector_chunks_and_the_collector_flies_its_snapshot(tmp_path):
    store, logdir = tmp_path / "store", tmp_path / "run"
    collector = start("collector_node", {"store": store, "num_envs": 8, "seed": 3, "expert": "geometric",
                                         "task_overrides": "[episode_length_s=0.5]", "episodes_per_chunk": 8,
                                         "stats_every_s": 0.5, "chunk_every_s": 1.0})
    trainer = start("trainer_node", {"store": store, "logdir": logdir, "set": TINY, "export_every_s": 4.0,
                                     "poll_every_s": 0.5, "metrics_every_s": 0.5})
    rclpy.init()
    probe = Probe()
    t0 = time.monotonic()
    try:
        assert probe.spin_until(lambda: probe.metrics.get("updates", 0) > 0, 90, (collector, trainer)), probe.metrics
        assert probe.metrics["env_steps_ingested"] >= 300 and probe.metrics["chunks"] >= 1
        assert probe.spin_until(lambda: probe.models, 60, (collector, trainer)), "no snapshot announced"
        snap = probe.models[-1]
        assert "/snapshots/policy_" in snap and OnnxPolicy(snap).sidecar["task"] == "hover"
        col = lambda: probe.stats.get("collector", {})  # noqa: E731
        assert probe.spin_until(lambda: col().get("swaps", 0) >= 1 and "/snapshots/policy_" in col().get("policy", ""),
                                30, (collector, trainer)), probe.stats
        before = probe.metrics["env_steps_ingested"]  # chunks flown by the snapshot reach the trainer too
        assert probe.spin_until(lambda: probe.metrics["env_steps_ingested"] > before, 30, (collector, trainer))
        print(f"loop closed in {time.monotonic() - t0:.1f} s: {probe.metrics['updates']} updates, "
              f"{probe.metrics['env_steps_ingested']} env steps ingested, collector {col()}")
        # a collector started late gets the latest announcement at once (transient local), then flies it
        late = start("collector_node", {"store": store, "num_envs": 2, "seed": 9, "stats_every_s": 0.5,
                                        "expert": "geometric", "task_overrides": "[episode_length_s=0.5]"},
                     name="collector_late")
        assert probe.spin_until(lambda: "/snapshots/policy_" in probe.stats.get("collector_late", {}).get("policy", ""),
                                60, (collector, trainer, late)), probe.stats
        assert probe.stats["collector_late"]["policy"] in probe.models  # one the trainer announced
        assert probe.spin_until(lambda: any(k.endswith("/collector_late") for k in probe.metrics["collectors"]), 10)
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
        rc_c, out_c = stop(collector)
        rc_t, out_t = stop(trainer)
        if "late" in locals():
            stop(late)
    assert rc_c == 0 and "stored everything" in out_c, out_c[-3000:]
    assert rc_t == 0 and "saved" in out_t, out_t[-3000:]
    assert "Traceback" not in out_c + out_t, (out_c + out_t)[-3000:]
    assert (logdir / "checkpoint.pt").is_file() and (logdir / "policy.onnx").is_file()
    assert list_partial(store) == []  # every chunk completed, including the one written at shutdown
    rp = Replay(store, delete_evicted=False)
    assert rp.report.problems == [] and rp.num_steps > before and rp.arrays()["expert"].mean() > 0.9


@pytest.mark.parametrize("module,params,reason", [
    ("collector_node", {"num_envs": 0}, "collector parameters.num_envs: must be > 0"),
    ("collector_node", {"expert": "dagger"},
     "collector parameters.expert: must be one of ['none', 'geometric', 'geometric_priv']"),
    ("collector_node", {"model": "nosuch"}, "model 'nosuch'"),
    ("trainer_node", {"set": "[batch_size=abc]"}, "train.batch_size: expected an integer, got str 'abc'"),
    ("trainer_node", {"export_every_s": -1.0}, "trainer parameters.export_every_s: must be > 0"),
    ("trainer_node", {"set": "[task=racing]"}, "train.task: training from the episode store"),
])
def test_bad_parameters_exit_2_with_the_reason(tmp_path, module, params, reason):
    r = run_bad(module, {"store": tmp_path / "s", **({"logdir": tmp_path / "l"} if module == "trainer_node" else {}),
                         **params})
    assert r.returncode == 2 and reason in r.stderr, (r.returncode, r.stderr[-2000:])
