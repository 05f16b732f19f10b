"""Packaging: package.xml lists every runtime dependency once, and colcon installs the ROS layout."""
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_package_xml_is_format3_ament_python_with_unique_exec_depends():
    tree = ET.parse(ROOT / "package.xml").getroot()
    assert tree.get("format") == "3"
    assert tree.find("export/build_type").text == "ament_python"
    deps = [e.text for e in tree.findall("exec_depend")]
    assert len(deps) == len(set(deps)), "duplicate exec_depend"
    # every pip runtime requirement has a matching rosdep key
    setup_py = (ROOT / "setup.py").read_text()
    block = re.search(r"INSTALL_REQUIRES = \[(.*?)\]", setup_py, re.S).group(1)
    names = [re.match(r'\s*"([A-Za-z0-9_-]+)', line).group(1).lower()
             for line in block.splitlines() if line.strip().startswith('"')]
    rosdep = {"pyyaml": "python3-yaml", "gymnasium": "python3-gymnasium-pip", "onnxruntime": "python3-onnxruntime-pip",
              "pymavlink": "python3-pymavlink-pip", "rosbags": "python3-rosbags-pip",
              "tensorboard": "python3-tensorboard-pip"}
    for name in names:
        key = rosdep.get(name, f"python3-{name}")
        assert key in deps, f"package.xml lacks <exec_depend>{key}</exec_depend> for {name}"
    assert (ROOT / "resource" / "ssm_mbrl_ros").is_file()
    for folder in ("launch", "config", "models", "test"):
        assert (ROOT / folder).is_dir()


def test_console_script_is_installed_and_answers_help():
    exe = Path(sys.executable).with_name("ssm-mbrl")
    assert exe.is_file(), "pip did not install the ssm-mbrl console script into the venv"
    res = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "evaluate" in res.stdout and "bench" in res.stdout


@pytest.mark.skipif(shutil.which("colcon") is None and not Path(sys.executable).with_name("colcon").exists(),
                    reason="colcon not installed (pip install colcon-common-extensions)")
def test_colcon_build_installs_ros_layout(tmp_path):
    src = tmp_path / "src" / "ssm_mbrl_ros"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "install", "log", "out",
                                                             "__pycache__", "*.egg-info"))
    colcon = shutil.which("colcon") or str(Path(sys.executable).with_name("colcon"))
    res = subprocess.run([colcon, "build", "--packages-select", "ssm_mbrl_ros"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    inst = tmp_path / "install" / "ssm_mbrl_ros"
    assert (inst / "lib" / "ssm_mbrl_ros" / "ssm-mbrl").is_file(), "ros2 run needs scripts in lib/<pkg>"
    assert (inst / "share" / "ament_index" / "resource_index" / "packages" / "ssm_mbrl_ros").is_file()
    assert (inst / "share" / "ssm_mbrl_ros" / "package.xml").is_file()
    vehicles = list((inst / "share" / "ssm_mbrl_ros" / "config" / "vehicles").glob("*.yaml"))
    assert {p.stem for p in vehicles} >= {"agile5", "x500", "crazyflie"}
