"""Config dataclasses <- YAML files <- dotted overrides, with errors that name the file and field.

Every config in the stack is a dataclass whose fields carry their own help text
(`field(metadata={"help": ...})`). `from_dict` builds one from plain data, checking each value's
type; `load_yaml_config` reads a YAML file into one; `apply_overrides` applies `a.b=value`
strings (values parsed as YAML) to a plain dict before it is checked.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or value is missing, malformed, of the wrong type or physically impossible."""


def doc(help_text: str, range: tuple | None = None, **kwargs) -> Any:  # noqa: A002 - the ROS descriptor's word
    """A dataclass field with a help string (shown by --help and in error messages) and optionally the closed range
    (low, high) its number must lie in (checked by from_dict; ROS nodes also declare it in the parameter descriptor)."""
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata["help"] = help_text
    if range is not None:
        low, high = range
        if not low <= high:
            raise ValueError(f"doc range must be (low, high) with low <= high, got {range!r}")
        metadata["range"] = (low, high)
    return dataclasses.field(metadata=metadata, **kwargs)


def field_range(f: dataclasses.Field) -> tuple | None:
    """The (low, high) range a field's number must lie in, or None."""
    return f.metadata.get("range")


def field_help(cls) -> dict[str, str]:
    """Map field name -> help text for a config dataclass."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def field_defaults(cls) -> dict[str, Any]:
    """Map field name -> default value of a config dataclass (factories called; fields without a default left out)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping from a file; a missing, unreadable or non-mapping file raises ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_value(value, tp, where: str):
    """Return value converted to type tp, or raise ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        if isinstance(value, float) and not math.isfinite(value):  # an untyped list item ([x, y, nan]) too
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item_tp = args[0] if args else Any
        items = [_check_value(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {type(value).__name__} {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {type(value).__name__} {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type[T], data: Mapping, source: str = "config") -> T:
    """Build dataclass `cls` from a mapping, checking names and types; errors name `source`.field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {unknown}; valid fields: {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        where = f"{source}.{name}" if source else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: required field is missing ({f.metadata.get('help', '')})")
            continue
        kwargs[name] = _check_value(data[name], hints[name], where)
        bounds = field_range(f)
        value = kwargs[name]
        if (bounds is not None and isinstance(value, (int, float)) and not isinstance(value, bool)
                and not bounds[0] <= value <= bounds[1]):
            raise ConfigError(f"{where}: {value!r} is outside the allowed range [{bounds[0]}, {bounds[1]}] "
                              f"({f.metadata.get('help', '')})")
    try:
        obj = cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(source)
    return obj


def to_dict(obj) -> dict:
    """Plain (YAML/JSON-serialisable) dict of a config dataclass; tuples become lists."""

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(obj)


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to a nested dict, returning a new dict."""
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. sim.num_envs=64")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {exc}") from exc
    return out


def load_yaml_config(cls: type[T], path: str | Path, overrides=(), section: str | None = None) -> T:
    """Load dataclass `cls` from a YAML file (optionally one top-level section), then overrides."""
    data = load_yaml(path)
    if section is not None:
        if section not in data:
            raise ConfigError(f"{path}: missing top-level section {section!r}")
        data = data[section]
    data = apply_overrides(data, list(overrides))
    return from_dict(cls, data, str(path))


def require_positive(obj, source: str, *names: str) -> None:
    """Raise ConfigError '<source>.<name>: must be > 0' unless each (dotted) field is finite and > 0."""
    import math

    for name in names:
        value = obj
        for part in name.split("."):
            value = getattr(value, part)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{source}.{name}: must be > 0, got {value}")


def finite_float(text: str) -> float:
    """argparse type: a finite number (nan and inf are refused with the value in the message)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def config_search_dirs(subfolder: str) -> list[Path]:
    """Folders searched for shipped config files config/SUBFOLDER/*.yaml: the source tree, then the ament/pip share
    directories (share/ssm_mbrl_ros/config/SUBFOLDER)."""
    import sys

    here = Path(__file__).resolve()
    dirs = [here.parents[2] / "config" / subfolder]
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix]):
        dirs.append(Path(prefix) / "share" / "ssm_mbrl_ros" / "config" / subfolder)
    if len(here.parents) > 5:  # a colcon install: <prefix>/lib/pythonX/site-packages/ssm_mbrl_ros -> <prefix>/share
        dirs.append(here.parents[5] / "share" / "ssm_mbrl_ros" / "config" / subfolder)
    return [d for i, d in enumerate(dirs) if d not in dirs[:i]]


def shipped_config_names(subfolder: str) -> list[str]:
    """Names (file stems) of the config/SUBFOLDER/*.yaml files found in the search folders."""
    return sorted({p.stem for d in config_search_dirs(subfolder) if d.is_dir() for p in d.glob("*.yaml")})


def resolve_shipped_config(subfolder: str, name_or_path: str | Path, what: str, plural: str) -> Path:
    """A YAML path (must exist), or config/SUBFOLDER/<name>.yaml from the search folders; errors name `what` and the
    shipped `plural` found."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise ConfigError(f"{candidate}: {what} file not found")
        return candidate
    dirs = config_search_dirs(subfolder)
    for d in dirs:
        if (d / f"{name_or_path}.yaml").is_file():
            return d / f"{name_or_path}.yaml"
    raise ConfigError(f"{what} {str(name_or_path)!r}: not found; known {plural}: {shipped_config_names(subfolder)} "
                      f"(searched {[str(d) for d in dirs]})")
