"""Start nodes as `python -m ssm_mbrl_ros.ros.<node> --ros-args -p ...` subprocesses and stop them by their own pid.

Each test runs its nodes in a namespace of its own (NS), so sessions sharing a ROS_DOMAIN_ID never mix topics.
"""
import os
import signal
import subprocess
import sys
import time

NS = f"/test_{os.getpid()}"


def start(module: str, params: dict, name: str | None = None) -> subprocess.Popen:
    """The node in its own process (output captured) in namespace NS; params as ROS parameters."""
    args = [sys.executable, "-m", f"ssm_mbrl_ros.ros.{module}", "--ros-args", "-r", f"__ns:={NS}"]
    if name:
        args += ["-r", f"__node:={name}"]
    for k, v in params.items():
        args += ["-p", f"{k}:={v}"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc: subprocess.Popen, timeout_s: float = 60.0) -> tuple[int, str]:
    """SIGINT (as Ctrl-C), then kill after timeout_s; returns (exit code, output)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return -9, out
    return proc.returncode, out


def run_bad(module: str, params: dict, timeout_s: float = 90.0) -> subprocess.CompletedProcess:
    """Run a node that is expected to refuse its parameters and exit."""
    args = [sys.executable, "-m", f"ssm_mbrl_ros.ros.{module}", "--ros-args"]
    for k, v in params.items():
        args += ["-p", f"{k}:={v}"]
    t0 = time.monotonic()
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    r.wall_s = time.monotonic() - t0
    return r
