"""ament_python / pip build script for ssm_mbrl_ros."""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "ssm_mbrl_ros"

# Runtime dependencies; torch must already be installed (the Makefile pins torch==2.13.0 first,
# an unpinned torch pulls several GB of CUDA wheels).
INSTALL_REQUIRES = [
    "torch>=2.3",
    "numpy>=1.24",
    "scipy>=1.10",
    "pyyaml>=6.0",
    "gymnasium>=1.0",
    "matplotlib>=3.7",
    "tqdm>=4.60",
    "onnx>=1.16",
    "onnxruntime>=1.18",
    "pymavlink>=2.4",
    "rosbags>=0.10",
    "tensorboard",
]

# Real rclpy + message packages from PyPI for machines without a ROS 2 install.
# Kept optional so a colcon/apt ROS install is never shadowed.
ROS_EXTRA = [
    "ros-kilted-rclpy",
    "ros-kilted-std-msgs",
    "ros-kilted-geometry-msgs",
    "ros-kilted-nav-msgs",
    "ros-kilted-sensor-msgs",
    "ros-kilted-diagnostic-msgs",
    "ros-kilted-visualization-msgs",
    "ros-kilted-rmw-fastrtps-cpp",
]


def data_files():
    """Install launch/, config/ and models/ (recursively) under share/<package>, plus the ament marker."""
    files = [
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ]
    for top in ("launch", "config", "models"):
        for folder in sorted({top, *(p.rsplit("/", 1)[0] for p in glob(f"{top}/**/*", recursive=True))}):
            matches = [p for p in glob(f"{folder}/*") if os.path.isfile(p) and not p.endswith(".gitkeep")]
            if matches:
                files.append((f"share/{PACKAGE}/{folder}", sorted(matches)))
    return files


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=data_files(),
    include_package_data=True,
    package_data={PACKAGE: []},
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "ros": ROS_EXTRA,
        "dev": ["pytest>=7", "pytest-timeout>=2", "pytest-rerunfailures>=14", "colcon-common-extensions"],
        # an independent MAVLink client library (MAVSDK's native binding) for the fc-sim end-to-end test; `make test`
        # installs it on its own so that a platform without its wheel still installs everything else
        "mavsdk": ["mavsdk>=4,<5"],
    },
    zip_safe=True,
    maintainer="ssm_mbrl_ros developers",
    maintainer_email="ssm-mbrl-ros@example.com",
    description="Model-based RL with S5 state-space world models for PX4 quadrotors on ROS 2.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "ssm-mbrl = ssm_mbrl_ros.cli.main:main",
            "ssm_mbrl_state_bridge = ssm_mbrl_ros.ros.state_bridge_node:main",
            "ssm_mbrl_policy = ssm_mbrl_ros.ros.policy_node:main",
            "ssm_mbrl_trainer = ssm_mbrl_ros.ros.trainer_node:main",
            "ssm_mbrl_collector = ssm_mbrl_ros.ros.collector_node:main",
            "ssm_mbrl_recorder = ssm_mbrl_ros.ros.recorder_node:main",
            "ssm_mbrl_fc_link = ssm_mbrl_ros.ros.fc_link_node:main",
        ],
    },
)
