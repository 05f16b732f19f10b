"""One summary object for everything skipped or repaired while reading bags and chunks."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One problem found in a bag: where (bag, topic), what kind, and what was done about it."""

    bag: str
    kind: str  # e.g. corrupt_chunk, truncated, missing_topic, out_of_order, duplicate_stamp, clock_jump, gap
    detail: str
    topic: str = ""
    count: int = 1

    def __str__(self) -> str:
        where = f"{self.bag}" + (f" {self.topic}" if self.topic else "")
        n = f" x{self.count}" if self.count != 1 else ""
        return f"{where}: {self.kind}{n}: {self.detail}"


@dataclass
class IngestReport:
    """Problems found while reading bags, plus what was used; `summary()` renders one text."""

    problems: list[Problem] = field(default_factory=list)
    bags_read: int = 0
    bags_skipped: int = 0
    episodes: int = 0
    steps: int = 0

    def add(self, bag, kind: str, detail: str, topic: str = "", count: int = 1) -> None:
        """Record one problem (count > 1 for a repeated one, e.g. 12 duplicate stamps)."""
        self.problems.append(Problem(str(bag), kind, detail, topic, int(count)))

    def merge(self, other: "IngestReport") -> None:
        """Fold another report into this one."""
        self.problems.extend(other.problems)
        self.bags_read += other.bags_read
        self.bags_skipped += other.bags_skipped
        self.episodes += other.episodes
        self.steps += other.steps

    def kinds(self) -> Counter:
        """Problem kind -> total count."""
        c: Counter = Counter()
        for p in self.problems:
            c[p.kind] += p.count
        return c

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"bags_read": self.bags_read, "bags_skipped": self.bags_skipped, "episodes": self.episodes,
                "steps": self.steps, "problem_counts": dict(self.kinds()),
                "problems": [vars(p).copy() for p in self.problems]}

    def summary(self) -> str:
        """Human-readable multi-line summary."""
        head = (f"{self.bags_read} bag(s) read, {self.bags_skipped} skipped, {self.episodes} episode(s), "
                f"{self.steps} step(s), {sum(self.kinds().values())} problem(s)")
        return "\n".join([head] + [f"  - {p}" for p in self.problems])
