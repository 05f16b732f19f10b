"""Subprocess for the concurrent-writer test: writes COUNT one-episode chunks into a shared store as fast as it can."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from replay_helpers import make_episode  # noqa: E402

from ssm_mbrl_ros.bags.store import EpisodeStore  # noqa: E402

store, count, tag = EpisodeStore(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for k in range(count):
    ep = make_episode(20, seed=1000 * tag + k, privileged=False)
    ep.info["writer"], ep.info["k"] = tag, k
    store.write_chunk([ep])
print("done", flush=True)
