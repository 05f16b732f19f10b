"""`ssm-mbrl launch GRAPH`: start a node graph without `ros2 launch` (pip-only ROS install), same definition."""
from __future__ import annotations

import argparse

from ssm_mbrl_ros.core.config import finite_float


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the launch subcommand."""
    p = sub.add_parser(
        "launch", help="start a ROS 2 node graph (fly_sim, train_sim, fly_real, replay_train) without ros2 launch",
        description=("Start every node of GRAPH (ssm_mbrl_ros/ros/graph.py, the definition the launch files use) "
                     "as a child process with the graph's parameter file, wait, and stop them all cleanly on "
                     "Ctrl-C or when one exits (its exit code is returned). DDS discovery stays on this machine "
                     "(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) unless the environment already sets it. Needs "
                     "rclpy: a ROS 2 install or `make venv-ros`."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("graph", help="graph name: fly_sim | train_sim | fly_real | replay_train")
    p.add_argument("--arg", dest="arguments", action="append", default=[], metavar="NAME=VALUE",
                   help="launch argument, as NAME:=VALUE would be for ros2 launch (train_sim: collectors=2; "
                        "fly_real: sim_fc=true|false, record=true|false) (repeatable)")
    p.add_argument("--params-file", default=None, help="ROS 2 parameter file (default: config/ros/<graph>.yaml)")
    p.add_argument("--namespace", default="", help="namespace for the graph's topics")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE",
                   help="override one node parameter, e.g. --set policy.model=models/hover.onnx (repeatable)")
    p.add_argument("--duration", type=finite_float, default=0.0, help="stop after this many seconds (0 = until Ctrl-C)")
    p.set_defaults(run=run)
    return p


def parse_overrides(items: list[str], names) -> dict:
    """--set NODE.PARAM=VALUE items -> {node: {param: value}}; values parsed as YAML (as ros2 param files are)."""
    import yaml

    from ssm_mbrl_ros.core.config import ConfigError

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or node not in names:
            raise ConfigError(f"--set {item!r}: expected NODE.PARAM=VALUE with NODE in {sorted(names)}")
        out.setdefault(node, {})[param] = yaml.safe_load(value) if value.strip() else ""
    return out


def parse_arguments(items: list[str]) -> dict:
    """--arg NAME=VALUE (or NAME:=VALUE) items -> {name: value}."""
    from ssm_mbrl_ros.core.config import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.replace(":=", "=", 1).partition("=")
        if not sep or not key:
            raise ConfigError(f"--arg {item!r}: expected NAME=VALUE")
        out[key] = value
    return out


def instance_command(inst, namespace: str, params_dir) -> list[str]:
    """Command line of one process: a ROS node with its own parameter file, or a plain process."""
    import sys
    from pathlib import Path

    import yaml

    if not inst.spec.ros:
        return [sys.executable, "-m", inst.spec.module, *inst.args]
    path = Path(params_dir) / f"{inst.name}.yaml"
    path.write_text(yaml.safe_dump({inst.name: {"ros__parameters": inst.parameters}}, sort_keys=False))
    cmd = [sys.executable, "-m", inst.spec.module, "--ros-args", "-r", f"__node:={inst.name}", "--params-file", str(path)]
    if namespace:
        cmd += ["-r", f"__ns:={namespace if namespace.startswith('/') else '/' + namespace}"]
    return cmd


def run(args) -> int:
    """Start, supervise and stop the graph's processes."""
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    import tempfile

    from ssm_mbrl_ros.core.config import ConfigError
    from ssm_mbrl_ros.ros.graph import default_params_file, get_graph, resolve_graph

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a process manager's stop stops the nodes too
    graph = get_graph(args.graph)
    params = args.params_file or str(default_params_file(graph))
    if not Path(params).is_file():
        raise ConfigError(f"--params-file: {params} does not exist")
    overrides = parse_overrides(args.overrides, {s.name for s in graph.nodes})
    instances = resolve_graph(graph, params, parse_arguments(args.arguments), overrides, namespace=args.namespace)
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    params_dir = tempfile.TemporaryDirectory(prefix=f"ssm_mbrl_{graph.name}_")
    procs = []
    for inst in instances:
        if inst.spec.external:  # RViz and other packages' nodes need a ROS 2 install: `ros2 launch` starts them
            import shutil

            if shutil.which(inst.spec.executable) is None:
                print(f"{inst.name}: not started ({inst.spec.executable} is not installed; use ros2 launch on a "
                      f"machine with {inst.spec.package})", flush=True)
                continue
            procs.append((inst.name, subprocess.Popen([inst.spec.executable, *inst.args], env=env)))
            print(f"started {inst.name} (pid {procs[-1][1].pid})", flush=True)
            continue
        procs.append((inst.name, subprocess.Popen(instance_command(inst, args.namespace, params_dir.name), env=env)))
        print(f"started {inst.name} (pid {procs[-1][1].pid})", flush=True)
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
        params_dir.cleanup()
    return code
