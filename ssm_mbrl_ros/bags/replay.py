"""Sequence replay on an episode store: an in-memory cache of decoded chunks, (B, T) sampling.

`Replay(root)` reads every complete chunk already in the store (resume), `refresh()` picks up
chunks that appeared since (written by collectors while training), and `capacity_steps` evicts
whole chunks oldest first, deleting their directories (or only forgetting them, with
`delete_evicted=False`, when the store is a dataset to keep). `steps_loaded` counts every step
ever loaded (the env steps a trainer has ingested). Sampling draws B windows of T
consecutive steps uniformly over the cached steps; windows may cross episode boundaries, which
`is_first` marks (the world model resets its state there), as in DreamerV3.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .bagread import read_bag
from .dataset import KEYS, AlignConfig, concat_episodes, streams_to_episodes
from .report import IngestReport
from .store import list_chunks, list_partial


class Replay:
    """Replay over the chunks of an episode store directory."""

    def __init__(self, root: str | Path, capacity_steps: int = 1_000_000, seed: int = 0,
                 align: AlignConfig | None = None, delete_evicted: bool = True):
        self.root = Path(root)
        self.delete_evicted = bool(delete_evicted)
        self.steps_loaded = 0  # steps of every chunk loaded so far (evicted ones included)
        self.loaded: dict[str, int] = {}  # every chunk loaded so far (evicted ones included) -> its steps
        self.capacity_steps = int(capacity_steps)
        self.align = align or AlignConfig()
        self.rng = np.random.default_rng(seed)
        self.report = IngestReport()
        self._chunks: dict[str, dict] = {}  # chunk dir name -> training arrays, insertion = age order
        self._bad: set[str] = set()
        self._evicted: set[str] = set()  # forgotten chunks still on disk (delete_evicted=False)
        self._flat: dict | None = None
        self.refresh()

    def refresh(self) -> int:
        """Load chunks not seen yet, evict beyond capacity; returns the number of new chunks loaded."""
        new = 0
        for path in list_chunks(self.root):
            if path.name in self._chunks or path.name in self._bad or path.name in self._evicted:
                continue
            rep = IngestReport()
            st = read_bag(path, report=rep)
            eps = streams_to_episodes(st, rep, self.align) if st is not None else []
            self.report.merge(rep)
            if st is None or not eps:
                self._bad.add(path.name)  # reported once, left on disk for inspection
                continue
            self._chunks[path.name] = concat_episodes(eps, self.align.privileged_dim)
            self.steps_loaded += len(self._chunks[path.name]["is_first"])
            self.loaded[path.name] = len(self._chunks[path.name]["is_first"])
            new += 1
        for p in list_partial(self.root):
            key = "partial:" + p.name
            if key not in self._bad:
                self._bad.add(key)
                self.report.add(p, "partial_chunk", "incomplete chunk from an interrupted writer; ignored")
        if new:
            self._flat = None
        self._evict()
        return new

    def _evict(self) -> None:
        names = list(self._chunks)
        while len(names) > 1 and self.num_steps > self.capacity_steps:
            old = names.pop(0)
            del self._chunks[old]
            if self.delete_evicted:
                shutil.rmtree(self.root / old, ignore_errors=True)
            else:
                self._evicted.add(old)
            self._flat = None

    @property
    def num_steps(self) -> int:
        """Steps held in the cache."""
        return sum(len(c["is_first"]) for c in self._chunks.values())

    @property
    def chunk_names(self) -> list[str]:
        """Cached chunk directory names, oldest first."""
        return list(self._chunks)

    def arrays(self) -> dict:
        """All cached steps as one training dict (built lazily after a change)."""
        if self._flat is None:
            parts = list(self._chunks.values())
            self._flat = concat_episodes([]) if not parts else {k: np.concatenate([c[k] for c in parts]) for k in KEYS}
        return self._flat

    def sample(self, batch: int, length: int) -> dict:
        """(B, T) windows: dict of arrays shaped (batch, length, ...)."""
        flat = self.arrays()
        n = len(flat["is_first"])
        if n < length:
            raise ValueError(f"replay holds {n} steps, fewer than the sequence length {length}")
        start = self.rng.integers(0, n - length + 1, size=batch)
        idx = start[:, None] + np.arange(length)[None, :]  # (B, T)
        out = {k: v[idx] for k, v in flat.items()}
        out["is_first"][:, 0] = True  # a window starts a new context for the world model
        return out
