"""Summaries of a directory of bags: topics, counts, duration, usable episodes, problems."""
from __future__ import annotations

from pathlib import Path

from .bagread import TopicNames, read_bag
from .dataset import AlignConfig, streams_to_episodes
from .report import IngestReport
from .store import TMP_PREFIX


def find_bags(root: str | Path) -> list[Path]:
    """rosbag2 directories (with metadata.yaml) and bare .mcap files under root, sorted; root itself if it is one."""
    root = Path(root)
    if root.is_file() or (root / "metadata.yaml").is_file():
        return [root]
    out = []
    for p in sorted(root.rglob("*")):
        if any(part.startswith(TMP_PREFIX) for part in p.relative_to(root).parts):
            continue
        if p.is_dir() and (p / "metadata.yaml").is_file():
            out.append(p)
        elif p.suffix == ".mcap" and p.is_file() and not (p.parent / "metadata.yaml").is_file():
            out.append(p)
    return out


def stray_files(root: str | Path, bags: list[dict]) -> list[Path]:
    """Files under root that belong to no bag found there (a user expecting them read should hear about them)."""
    root = Path(root)
    if not root.is_dir() or (root / "metadata.yaml").is_file():
        return []
    owners = [Path(b["path"]) for b in bags]
    out = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part.startswith(TMP_PREFIX) or part.startswith(".")
                                  for part in p.relative_to(root).parts):
            continue
        if not any(p == o or o in p.parents for o in owners):
            out.append(p)
    return out


def partial_writes(root: str | Path) -> list[Path]:
    """Temporary chunk directories left by an interrupted store writer."""
    root = Path(root)
    return sorted(p for p in root.rglob(f"{TMP_PREFIX}*") if p.is_dir()) if root.is_dir() else []


def bags_info(root: str | Path, names: TopicNames | None = None, align: AlignConfig | None = None,
              thrust_max_mps2: float | None = None) -> dict:
    """Per-bag summary dicts plus the overall IngestReport (as dict) for a directory of bags."""
    total = IngestReport()
    bags = []
    for path in find_bags(root):
        rep = IngestReport()
        st = read_bag(path, names, rep, thrust_max_mps2)
        eps = streams_to_episodes(st, rep, align) if st is not None else []
        bags.append({"path": str(path), "readable": st is not None,
                     "topics": st.topics if st is not None else {},
                     "duration_s": st.duration_s if st is not None else 0.0,
                     "episodes": len(eps), "steps": sum(len(e["t_ns"]) for e in eps),
                     "tasks": sorted({str(e["info"].get("task")) for e in eps if e["info"].get("task")}),
                     "problems": [str(p) for p in rep.problems]})
        total.merge(rep)
    for p in partial_writes(root):
        total.add(p, "partial_chunk", "incomplete chunk from an interrupted writer; ignored")
    for p in stray_files(root, bags):
        total.add(p, "not_a_bag", "neither a rosbag2 directory nor an .mcap file; ignored")
    return {"root": str(root), "bags": bags, "report": total.to_dict(), "summary": total.summary()}


def format_bags_info(info: dict) -> str:
    """Human-readable text of bags_info()."""
    lines = []
    for b in info["bags"]:
        lines.append(f"{b['path']}: {'ok' if b['readable'] else 'UNREADABLE'}, {b['duration_s']:.2f} s, "
                     f"{b['episodes']} usable episode(s), {b['steps']} step(s)"
                     + (f", task {', '.join(b['tasks'])}" if b["tasks"] else ""))
        for t, ti in sorted(b["topics"].items()):
            lines.append(f"    {t:<24} {ti['type']:<40} {ti['count']:>8} msgs")
        for p in b["problems"]:
            lines.append(f"    problem: {p}")
    lines.append(info["summary"])
    return "\n".join(lines)
