"""JSON sidecar written beside every exported policy: `<name>.onnx` -> `<name>.json`.

Holds what a loader must not guess: observation layout (names, units, frames), the CTBR action
spec (m/s^2, rad/s, limits), recurrent state width, control rate (Hz), vehicle, task, the
resolved training config, the SHA-256 of the .onnx, and the exporter's package versions.
numpy/stdlib only (no torch), so the onboard runtime can read it.
"""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

from ssm_mbrl_ros.core.spaces import ActionSpec, ObsLayout

FORMAT_VERSION = 1

# key -> (accepted python types, description used in errors)
REQUIRED = {
    "format_version": ((int,), "integer sidecar format version"),
    "obs_layout": ((dict,), "ObsLayout.to_dict() (dim + fields)"),
    "action_spec": ((dict,), "ActionSpec.to_dict() (CTBR limits)"),
    "state_size": ((int,), "recurrent state width S (int > 0)"),
    "control_hz": ((int, float), "control rate in Hz (> 0)"),
    "vehicle": ((str,), "vehicle name"),
    "task": ((str,), "task name"),
    "training_config": ((dict,), "resolved training config"),
    "onnx_sha256": ((str,), "hex SHA-256 of the .onnx file"),
    "exporter": ((dict,), "package versions of the exporter"),
}


class SidecarError(ValueError):
    """A sidecar is missing, unreadable or has a missing/mistyped key."""


def sidecar_path(onnx_path) -> Path:
    """Path of the sidecar JSON for an .onnx file (same stem, .json suffix)."""
    return Path(onnx_path).with_suffix(".json")


def sha256_file(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def exporter_versions(packages=("torch", "onnx", "onnxruntime", "numpy", "ssm_mbrl_ros")) -> dict:
    """Installed versions of the given packages (read from metadata, nothing imported) + python."""
    out = {"python": platform.python_version()}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def write_sidecar(onnx_path, *, obs_layout, action_spec, state_size: int, control_hz: float, vehicle: str,
                  task: str, training_config: dict | None = None, exporter: dict | None = None,
                  **extra) -> Path:
    """Write `<name>.json` beside onnx_path with the model's SHA-256; returns the sidecar path.

    obs_layout / action_spec may be ObsLayout / ActionSpec objects or their dicts; extra keys
    (e.g. notes, metrics) are stored as given and must be JSON-serialisable.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"cannot write sidecar: ONNX file {onnx_path} does not exist")
    data = {
        "format_version": FORMAT_VERSION,
        "obs_layout": obs_layout.to_dict() if isinstance(obs_layout, ObsLayout) else dict(obs_layout),
        "action_spec": action_spec.to_dict() if isinstance(action_spec, ActionSpec) else dict(action_spec),
        "state_size": int(state_size),
        "control_hz": float(control_hz),
        "vehicle": str(vehicle),
        "task": str(task),
        "training_config": dict(training_config or {}),
        "onnx_sha256": sha256_file(onnx_path),
        "exporter": dict(exporter) if exporter is not None else exporter_versions(),
        "graph": {"inputs": ["obs", "state", "is_first"], "outputs": ["action", "state_out", "surprise"]},
        **extra,
    }
    validate_sidecar(data, where=str(sidecar_path(onnx_path)))
    path = sidecar_path(onnx_path)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


def validate_sidecar(data: dict, where: str = "<sidecar>") -> dict:
    """Check required keys, their types and values; raise SidecarError naming `where` and the key."""
    if not isinstance(data, dict):
        raise SidecarError(f"{where}: top level must be a JSON object, got {type(data).__name__}")
    for key, (types, desc) in REQUIRED.items():
        if key not in data:
            raise SidecarError(f"{where}: missing required key {key!r} ({desc})")
        v = data[key]
        if isinstance(v, bool) or not isinstance(v, types):
            raise SidecarError(f"{where}: key {key!r} must be {desc}, got {type(v).__name__} {v!r:.80}")
    if data["format_version"] != FORMAT_VERSION:
        raise SidecarError(f"{where}: key 'format_version' is {data['format_version']}, this runtime reads "
                           f"{FORMAT_VERSION}")
    if data["state_size"] <= 0:
        raise SidecarError(f"{where}: key 'state_size' must be > 0, got {data['state_size']}")
    if not data["control_hz"] > 0:
        raise SidecarError(f"{where}: key 'control_hz' must be > 0 Hz, got {data['control_hz']}")
    sha = data["onnx_sha256"]
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise SidecarError(f"{where}: key 'onnx_sha256' must be 64 lowercase hex characters, got {sha!r:.80}")
    try:
        layout = ObsLayout.from_dict(data["obs_layout"])
    except Exception as e:  # noqa: BLE001 - re-raised with the file and key named
        raise SidecarError(f"{where}: key 'obs_layout' is not a valid ObsLayout dict: {e}") from e
    if "dim" in data["obs_layout"] and data["obs_layout"]["dim"] != layout.dim:
        raise SidecarError(f"{where}: key 'obs_layout' says dim {data['obs_layout']['dim']} but its fields sum "
                           f"to {layout.dim}")
    if layout.dim <= 0:
        raise SidecarError(f"{where}: key 'obs_layout' has no fields (dim 0)")
    try:
        ActionSpec.from_dict(data["action_spec"])
    except Exception as e:  # noqa: BLE001
        raise SidecarError(f"{where}: key 'action_spec' is not a valid ActionSpec dict: {e}") from e
    return data


def load_sidecar(onnx_path) -> dict:
    """Read and validate the sidecar beside onnx_path; clear SidecarError naming the file and key."""
    path = sidecar_path(onnx_path)
    if not path.is_file():
        raise SidecarError(f"sidecar {path} for model {onnx_path} does not exist (expected <name>.json beside "
                           f"<name>.onnx)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SidecarError(f"sidecar {path}: not readable JSON: {e}") from e
    return validate_sidecar(data, where=str(path))


def obs_layout_of(sidecar: dict) -> ObsLayout:
    """ObsLayout from a validated sidecar dict."""
    return ObsLayout.from_dict(sidecar["obs_layout"])


def action_spec_of(sidecar: dict) -> ActionSpec:
    """ActionSpec (CTBR limits in m/s^2, rad/s) from a validated sidecar dict."""
    return ActionSpec.from_dict(sidecar["action_spec"])


def task_overrides_of(sidecar: dict) -> list[str]:
    """The task definition a policy was trained with, as KEY=VALUE task overrides, so the simulator and `evaluate`
    rebuild the same task: the sidecar's `task_overrides` (older sidecars: training_config.train.task_overrides), its
    control rate and the span of its normalised action (action_spec)."""
    overrides = sidecar.get("task_overrides")
    if overrides is None:
        overrides = sidecar.get("training_config", {}).get("train", {}).get("task_overrides", [])
    pinned = ("control_hz=", "policy_thrust_mps2=", "policy_max_rate_radps=")
    overrides = [str(o) for o in overrides if not str(o).startswith(pinned)]
    spec = sidecar["action_spec"]
    rates = ",".join(f"{float(r):g}" for r in spec["max_rate_radps"])
    return overrides + [f"control_hz={float(sidecar['control_hz']):g}",
                        f"policy_thrust_mps2=[{float(spec['thrust_min_mps2']):g},{float(spec['thrust_max_mps2']):g}]",
                        f"policy_max_rate_radps=[{rates}]"]
