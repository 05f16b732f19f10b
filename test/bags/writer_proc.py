"""Subprocess for the kill -9 test: writes chunks of the given size forever into a store."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from replay_helpers import make_episode  # noqa: E402

from ssm_mbrl_ros.bags.store import EpisodeStore  # noqa: E402

store, steps = EpisodeStore(sys.argv[1]), int(sys.argv[2])
seed = 0
while True:
    store.write_chunk([make_episode(steps, seed=seed, privileged=False)], start_ns=10**9 * (1 + 100 * seed))
    print(f"chunk {seed}", flush=True)
    seed += 1
