"""Find shipped models (models/NAME.onnx) whether running from a checkout, a pip install or a colcon install."""
from __future__ import annotations

from pathlib import Path

PACKAGE = "ssm_mbrl_ros"


def model_dirs() -> list[Path]:
    """Where shipped models are looked up by name: the package's own models/ (source checkout or editable install),
    then the ament share directory. Never the working directory: a stray ./models must not shadow a shipped policy
    (give a path to fly a model of your own)."""
    dirs = [Path(__file__).resolve().parents[2] / "models"]
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory(PACKAGE)) / "models")
    except Exception:  # noqa: BLE001 - no ROS install, or the package is not in an ament index
        pass
    out = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def find_model(name_or_path: str) -> Path:
    """A path as given if it exists, else models/NAME.onnx from model_dirs(); FileNotFoundError lists where it looked."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    name = p.name if p.suffix == ".onnx" else f"{p.name}.onnx"
    for d in model_dirs():
        if (d / name).is_file():
            return d / name
    raise FileNotFoundError(f"model {name_or_path!r} not found as a file or in {[str(d) for d in model_dirs()]}")
