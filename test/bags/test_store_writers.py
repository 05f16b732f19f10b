"""Several writers on one store never collide on a chunk number; expert labels round-trip through a chunk."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from replay_helpers import SPEC, make_episode

from ssm_mbrl_ros.bags.dataset import bags_to_dataset
from ssm_mbrl_ros.bags.replay import Replay
from ssm_mbrl_ros.bags.store import EpisodeStore, list_chunks, list_partial

HERE = Path(__file__).parent


def test_two_processes_write_one_store_without_collisions(tmp_path):
    root, count = tmp_path / "store", 40
    procs = [subprocess.Popen([sys.executable, str(HERE / "two_writers_proc.py"), str(root), str(count), str(tag)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in (1, 2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]  # the old scan-then-rename collided here (rename onto a full dir)
    chunks = list_chunks(root)
    assert len(chunks) == 2 * count and list_partial(root) == []
    assert [p.name for p in chunks] == [f"chunk_{i:06d}" for i in range(2 * count)]  # dense, unique numbers
    written = set()
    for c in chunks:
        meta = yaml.safe_load((c / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        (info,) = json.loads(meta["custom_data"]["ssm_mbrl_ros.episodes"])
        assert info["chunk"] == int(c.name.split("_")[1])  # each chunk knows its own number
        written.add((info["writer"], info["k"]))
    assert written == {(w, k) for w in (1, 2) for k in range(count)}  # every episode of both writers, once
    assert Replay(root).num_steps == 2 * count * 20


def test_a_number_taken_while_reserving_is_skipped(tmp_path):
    class Stale(EpisodeStore):
        """Sees the store as it was before another writer finished chunk 0 (the race between scan and mkdir)."""

        calls = 0

        def _next_id(self):
            Stale.calls += 1
            return 0 if Stale.calls == 1 else super()._next_id()

    EpisodeStore(tmp_path).write_chunk([make_episode(20, seed=0)])
    assert Stale(tmp_path).write_chunk([make_episode(20, seed=1)]).name == "chunk_000001"
    (tmp_path / ".tmp_chunk_000002").mkdir()  # reserved by a live (or dead) writer: never reused
    assert EpisodeStore(tmp_path).write_chunk([make_episode(20, seed=2)]).name == "chunk_000003"


def test_expert_labels_round_trip_through_a_chunk(tmp_path):
    ep = make_episode(30, seed=4)
    labels = np.concatenate([np.random.default_rng(0).uniform(5, 15, (30, 1)),
                             np.random.default_rng(1).uniform(-2, 2, (30, 3))], 1)
    labels[-1] = np.nan  # the final state has no label
    ep.expert_ctbr = labels
    chunk = EpisodeStore(tmp_path).write_chunk([ep, make_episode(20, seed=5)])
    data, _, report = bags_to_dataset([chunk])
    assert report.problems == [] and data["expert"].tolist() == [True] * 29 + [False] * 21
    np.testing.assert_allclose(data["expert_action"][:29], SPEC.to_normalized(labels[:29]), atol=1e-6)
    assert (data["expert_action"][29:] == 0).all()
