"""ROS 2 parameter files read with the rules rcl applies (no rclpy needed), so `ssm-mbrl launch` gives every node
exactly what `ros2 launch` / `--params-file` would.

A file maps node names to `ros__parameters` blocks:

    /**:                      # every node
      ros__parameters: {use_sim_time: false}
    /drone1/policy:           # the node `policy` in namespace /drone1
      ros__parameters: {model: hover}
    drone2:                   # namespaces may also nest as keys
      policy:
        ros__parameters:
          gains: {p: 1.0}     # nested keys become dotted names: gains.p

Node names match as fully qualified names token by token; `*` matches one token and `**` any number (also none);
a name without a leading slash is absolute too (rcl's reading). When several entries match a node, they apply in
file order, later ones overriding earlier ones.
"""
from __future__ import annotations

from pathlib import Path

from ssm_mbrl_ros.core.config import ConfigError

PARAMS_KEY = "ros__parameters"


def _flatten(block: dict, prefix: str = "") -> dict:
    """Nested parameter mappings -> {dotted.name: value}."""
    out = {}
    for key, value in block.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def entries(data: dict, where: str = "parameter file", prefix: str = "") -> list[tuple[list[str], dict]]:
    """Every (node-name pattern as tokens, flat parameters) of a parsed file, in file order."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of node names, got {type(data).__name__}")
    out = []
    for key, value in data.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {prefix}/{key}: expected `ros__parameters:` or nested node names")
        name = f"{prefix}/{str(key).strip('/')}"
        if PARAMS_KEY in value:
            params = value[PARAMS_KEY] or {}
            if not isinstance(params, dict):
                raise ConfigError(f"{where}: {name}.{PARAMS_KEY}: expected a mapping")
            out.append(([t for t in name.split("/") if t], _flatten(params)))
        nested = {k: v for k, v in value.items() if k != PARAMS_KEY}
        if nested:
            out += entries(nested, where, name)
    return out


def _matches(pattern: list[str], name: list[str]) -> bool:
    """Token-wise match with `*` (one token) and `**` (zero or more tokens)."""
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(rest, name[i:]) for i in range(len(name) + 1))
    return bool(name) and (head == "*" or head == name[0]) and _matches(rest, name[1:])


def fully_qualified(name: str, namespace: str = "") -> str:
    """'/ns/name' of a node name in a namespace ('' = the root)."""
    ns = "/".join(t for t in namespace.split("/") if t)
    return f"/{ns}/{name}" if ns else f"/{name}"


def node_parameters(data, fqn: str, where: str = "parameter file") -> tuple[dict, int]:
    """(parameters the node fqn gets, how many entries matched it); data is the parsed file or its entries()."""
    tokens = [t for t in fqn.split("/") if t]
    params, hits = {}, 0
    for pattern, block in (entries(data, where) if isinstance(data, dict) else data):
        if _matches(pattern, tokens):
            params.update(block)
            hits += 1
    return params, hits


def load(path: str | Path) -> list[tuple[list[str], dict]]:
    """A parameter file's entries() (parsed once; node_parameters takes them), ConfigError naming a bad file."""
    import yaml

    with open(path) as f:
        data = yaml.safe_load(f) or {}
    return entries(data, str(path))
