"""The package's layering, read from the source (every import, also those inside functions): nothing below the
command line imports it, the module-level import graph has no cycles, and the few one-way rules hold (the
companion link never depends on the stand-in flight controller, the world models never on the trainer, the
core on nothing above it)."""
import ast
from pathlib import Path

import ssm_mbrl_ros

ROOT = Path(ssm_mbrl_ros.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, module_level_only: bool) -> set[str]:
    """ssm_mbrl_ros modules imported by the file (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}  # `from pkg import module`
    return {m for m in out if m.startswith("ssm_mbrl_ros")}


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    return {m: {i for i in _imports(p, module_level_only) if i in files and i != m} for m, p in files.items()}


def test_nothing_below_the_cli_imports_it():
    offenders = {m: sorted(i for i in deps if i.startswith("ssm_mbrl_ros.cli"))
                 for m, deps in _graph(False).items() if not m.startswith("ssm_mbrl_ros.cli")}
    assert not {m: d for m, d in offenders.items() if d}


def test_module_level_imports_have_no_cycles():
    graph = _graph(True)
    # a package's __init__ importing its own modules is not a cycle of the design; drop those edges
    graph = {m: {d for d in deps if not (d.startswith(m + ".") and Path(str(ROOT.parent / m.replace(".", "/"))).is_dir())}
             for m, deps in graph.items()}
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_world_model_interface_does_not_import_its_implementations():
    deps = _graph(False)["ssm_mbrl_ros.world_models.base"]
    assert not {d for d in deps if d.endswith((".s5wm", ".rssm"))}


def test_one_way_rules():
    graph = _graph(False)
    rules = [  # (importer prefix, forbidden prefix, why)
        ("ssm_mbrl_ros.link", "ssm_mbrl_ros.fcsim", "the companion link must work against any PX4"),
        ("ssm_mbrl_ros.world_models", "ssm_mbrl_ros.train", "networks do not know the trainer"),
        ("ssm_mbrl_ros.core", "ssm_mbrl_ros.", "core is the bottom layer"),
        ("ssm_mbrl_ros.runtime", "ssm_mbrl_ros.train", "the onboard runtime needs no trainer"),
        ("ssm_mbrl_ros.ros", "ssm_mbrl_ros.link.rehearsal", "nodes do not depend on the CLI rehearsal"),
    ]
    broken = []
    for importer, forbidden, why in rules:
        for m, deps in graph.items():
            if m.startswith(importer):
                bad = [d for d in deps if d.startswith(forbidden) and not d.startswith("ssm_mbrl_ros.core")]
                if bad:
                    broken.append((m, bad, why))
    assert not broken, broken
