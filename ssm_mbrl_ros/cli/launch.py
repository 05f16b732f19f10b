"""`ssm-mbrl launch GRAPH`: start a node graph without `ros2 launch` (pip-only ROS install), same definition."""
from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the launch subcommand."""
    p = sub.add_parser(
        "launch", help="start a ROS 2 node graph (fly_sim) without ros2 launch",
        description=("Start every node of GRAPH (ssm_mbrl_ros/ros/graph.py, the definition the launch files use) "
                     "as a child process with the graph's parameter file, wait, and stop them all cleanly on "
                     "Ctrl-C or when one exits (its exit code is returned). DDS discovery stays on this machine "
                     "(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) unless the environment already sets it. Needs "
                     "rclpy: a ROS 2 install or `make venv-ros`."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("graph", help="graph name: fly_sim")
    p.add_argument("--params-file", default=None, help="ROS 2 parameter file (default: config/ros/<graph>.yaml)")
    p.add_argument("--namespace", default="", help="namespace for the graph's topics")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE",
                   help="override one node parameter, e.g. --set policy.model=models/hover.onnx (repeatable)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = until Ctrl-C)")
    p.set_defaults(run=run)
    return p


def node_commands(graph, params_file: str, namespace: str, overrides: list[str]) -> list[list[str]]:
    """The child command line of every node (python -m module --ros-args ...)."""
    import sys

    from ssm_mbrl_ros.core.config import ConfigError

    per_node: dict[str, list[str]] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or node not in {s.name for s in graph.nodes}:
            raise ConfigError(f"--set {item!r}: expected NODE.PARAM=VALUE with NODE in "
                              f"{[s.name for s in graph.nodes]}")
        per_node.setdefault(node, []).extend(["-p", f"{param}:={value}"])
    cmds = []
    for spec in graph.nodes:
        cmd = [sys.executable, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}",
               "--params-file", params_file]
        if namespace:
            cmd += ["-r", f"__ns:={namespace if namespace.startswith('/') else '/' + namespace}"]
        cmds.append(cmd + per_node.get(spec.name, []))
    return cmds


def run(args) -> int:
    """Start, supervise and stop the graph's processes."""
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    from ssm_mbrl_ros.core.config import ConfigError
    from ssm_mbrl_ros.ros.graph import config_dir, get_graph

    graph = get_graph(args.graph)
    params = args.params_file or str(config_dir() / "ros" / graph.params)
    if not Path(params).is_file():
        raise ConfigError(f"--params-file: {params} does not exist")
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    procs = []
    for spec, cmd in zip(graph.nodes, node_commands(graph, params, args.namespace, args.overrides)):
        procs.append((spec.name, subprocess.Popen(cmd, env=env)))
        print(f"started {spec.name} (pid {procs[-1][1].pid})")
    code, start = 0, time.monotonic()
    try:
        while True:
            done = [(n, p.returncode) for n, p in procs if p.poll() is not None]
            if done:
                name, code = done[0]
                print(f"{name} exited with {code}; stopping the graph")
                break
            if args.duration and time.monotonic() - start >= args.duration:
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        code = 130
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10.0
        for _, p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return code
