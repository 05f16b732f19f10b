"""Node graphs, defined once: launch files (ros2 launch) and `ssm-mbrl launch` (pip-only) both build from here.

Deliberately free of rclpy/launch imports, so the pip-only runner can read it on a machine without ROS.
A graph has launch arguments (name -> default, description); `resolve_graph` turns the argument values into
the concrete processes: which optional nodes run, how many copies of a replicated node (collector_0, ...),
and each ROS node's parameters (the section of the graph's YAML file named after the node, plus per-copy
extras). Both runners start exactly that list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "ssm_mbrl_ros"


@dataclass(frozen=True)
class NodeSpec:
    """One node (or plain process) of a graph.

    name        node name = the section of the parameter file holding its ros__parameters
    executable  console script (ros2 run / launch_ros Node), prefixed ssm_mbrl_ so it cannot collide in a workspace
    module      `python -m module` (the pip-only runner)
    enabled_by  launch argument (true/false) switching it on; "" = always
    count_by    launch argument holding how many copies run (named NAME_0, NAME_1, ...; parameter `instance`
                tells each its index); "" = one copy named NAME
    ros         False for a plain process (the stand-in flight controller); started as module + args
    args        extra command-line arguments of a plain process
    args_if     ((launch argument, extra args), ...): args appended when that (boolean) argument is true
    package     the ROS package of the executable: ours, or another one (RViz), which only `ros2 launch` starts;
                `{config}` in args becomes this package's config directory
    """

    name: str
    executable: str
    module: str
    enabled_by: str = ""
    count_by: str = ""
    ros: bool = True
    args: tuple = ()
    args_if: tuple = ()
    package: str = PACKAGE

    @property
    def external(self) -> bool:
        """A node of another package (needs a ROS 2 install; the pip-only runner skips it and says so)."""
        return self.package != PACKAGE


@dataclass(frozen=True)
class Graph:
    """A node graph, its launch arguments (name -> (default, description)) and parameter file config/ros/<params>.

    params_if: {boolean launch argument: {node name: {parameter: value}}} applied when the argument is true.
    """

    name: str
    nodes: tuple
    params: str
    description: str = ""
    arguments: dict = field(default_factory=dict)
    params_if: dict = field(default_factory=dict)
    not_exercised: tuple = field(default_factory=tuple)


@dataclass
class Instance:
    """A process to start: node name, its spec, its ROS parameters (empty for plain processes) and extra args.

    parameters is everything the node gets (the parameter file's matching entries, then extra); extra is what the
    graph adds on top of the file (launch-argument switches, --set overrides, a replica's `instance` and its base
    section), which `ros2 launch` passes as a dictionary after the file."""

    name: str
    spec: NodeSpec
    parameters: dict
    args: tuple = ()
    extra: dict = field(default_factory=dict)


STATE_BRIDGE = NodeSpec("state_bridge", "ssm_mbrl_state_bridge", "ssm_mbrl_ros.ros.state_bridge_node")
POLICY = NodeSpec("policy", "ssm_mbrl_policy", "ssm_mbrl_ros.ros.policy_node")
TRAINER = NodeSpec("trainer", "ssm_mbrl_trainer", "ssm_mbrl_ros.ros.trainer_node")
COLLECTOR = NodeSpec("collector", "ssm_mbrl_collector", "ssm_mbrl_ros.ros.collector_node", count_by="collectors")
RECORDER = NodeSpec("recorder", "ssm_mbrl_recorder", "ssm_mbrl_ros.ros.recorder_node", enabled_by="record")
FC_LINK = NodeSpec("fc_link", "ssm_mbrl_fc_link", "ssm_mbrl_ros.ros.fc_link_node")
FC_SIM = NodeSpec("fc_sim", "ssm-mbrl", "ssm_mbrl_ros.cli", enabled_by="sim_fc", ros=False,
                  args=("fc-sim", "--url", "udpout:127.0.0.1:14540"), args_if=(("lockstep", ("--lockstep",)),))

RVIZ_FLY = NodeSpec("rviz", "rviz2", "", enabled_by="rviz", package="rviz2", args=("-d", "{config}/rviz/fly.rviz"))
RVIZ_TRAIN = NodeSpec("rviz", "rviz2", "", enabled_by="rviz", package="rviz2",
                      args=("-d", "{config}/rviz/train.rviz"))
RVIZ_ARG = {"rviz": ("false", "start RViz 2 with config/rviz/ (needs a ROS 2 install with rviz2)")}

GRAPHS = {
    "fly_sim": Graph("fly_sim", (STATE_BRIDGE, POLICY, RVIZ_FLY), "fly_sim.yaml",
                     "the simulated drone in real time flown by the ONNX policy node (hover, shipped model)",
                     arguments=dict(RVIZ_ARG)),
    "train_sim": Graph(
        "train_sim", (COLLECTOR, TRAINER, STATE_BRIDGE, POLICY, RVIZ_TRAIN), "train_sim.yaml",
        "collectors (vectorised simulators acting with the latest ONNX policy) write MCAP chunks; the trainer "
        "learns from them and announces snapshots on policy/model; a real-time simulated drone flown by the "
        "policy node shows the current policy live",
        arguments={"collectors": ("2", "number of collector processes"), **RVIZ_ARG}),
    "fly_real": Graph(
        "fly_real", (FC_SIM, FC_LINK, STATE_BRIDGE, POLICY, RECORDER, RVIZ_FLY), "fly_real.yaml",
        "PX4 (or, by default, the stand-in flight controller) -> fc_link (MAVLink, safety supervisor) -> "
        "state_bridge (source=px4) -> odom -> policy -> cmd_ctbr -> fc_link -> PX4; the recorder writes the "
        "flight to the episode store",
        arguments={"sim_fc": ("true", "start the stand-in flight controller (fc-sim); false with a real PX4 / SITL"),
                   "record": ("true", "record odom, cmd_ctbr and setpoints to the episode store"),
                   "lockstep": ("false", "fc-sim --lockstep and fc_link on its simulated clock (rehearsal only: "
                                         "reproducible and immune to a loaded machine)"), **RVIZ_ARG},
        # the stand-in FC is the only one the graph arms by itself; a real one needs the pilot (or, explicitly,
        # fc_link.auto_arm + fc_link.auto_arm_real_fc in the parameter file)
        # lockstep: the simulated FC is the time source (fc_link publishes /clock), every node runs on sim time
        params_if={"lockstep": {"fc_link": {"lockstep": True, "publish_clock": True, "use_sim_time": True},
                                "state_bridge": {"use_sim_time": True}, "policy": {"use_sim_time": True},
                                "recorder": {"use_sim_time": True}},
                   "sim_fc": {"fc_link": {"flight_controller": "sim", "auto_arm": True}}},
        not_exercised=("PX4 SITL / Gazebo and a real drone", "the px4_msgs backend of fc_link")),
    "replay_train": Graph(
        "replay_train", (TRAINER,), "replay_train.yaml",
        "the trainer learning from a directory of recorded bags / store chunks (offline), announcing snapshots"),
}


def config_dir() -> Path:
    """config/ of a source checkout / editable install, else the ament share directory."""
    here = Path(__file__).resolve().parents[2] / "config"
    if here.is_dir():
        return here
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / "config"


def get_graph(name: str) -> Graph:
    """The named graph; unknown names list the valid ones."""
    from ssm_mbrl_ros.core.config import ConfigError

    if name not in GRAPHS:
        raise ConfigError(f"unknown graph {name!r}; valid: {sorted(GRAPHS)}")
    return GRAPHS[name]


def default_params_file(graph: Graph) -> Path:
    """config/ros/<graph.params>."""
    return config_dir() / "ros" / graph.params


def _truthy(value: str, name: str) -> bool:
    from ssm_mbrl_ros.core.config import ConfigError

    low = str(value).strip().lower()
    if low not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"launch argument {name}: expected true or false, got {value!r}")
    return low in ("true", "1", "yes")


def resolve_graph(graph: Graph, params_file, arg_values: dict | None = None,
                  overrides: dict | None = None, namespace: str = "") -> list[Instance]:
    """The processes to start for these launch-argument values; overrides = {node name: {param: value}}.

    Each ROS node's parameters come from the parameter file by rcl's rules (ros/param_file.py: `/**` wildcards,
    per-node sections, namespaced keys, file order) for its fully qualified name in `namespace`; a replica
    (collector_0, ...) first takes the entries matching its base name, then its own. Unknown argument names,
    non-boolean switches, bad counts and nodes no entry of the file matches raise ConfigError naming them.
    """
    from ssm_mbrl_ros.core.config import ConfigError

    from .param_file import fully_qualified, load, node_parameters

    args = {k: d for k, (d, _) in graph.arguments.items()}
    for k, v in (arg_values or {}).items():
        if k not in args:
            raise ConfigError(f"{graph.name}: unknown launch argument {k!r}; valid: {sorted(args)}")
        args[k] = str(v)
    data = load(params_file)
    overrides = overrides or {}
    unknown = set(overrides) - {s.name for s in graph.nodes}
    if unknown:
        raise ConfigError(f"{graph.name}: no node named {sorted(unknown)}; nodes: {[s.name for s in graph.nodes]}")
    out = []
    for spec in graph.nodes:
        if spec.enabled_by and not _truthy(args[spec.enabled_by], spec.enabled_by):
            continue
        extra = {}
        for arg, nodes in graph.params_if.items():
            if _truthy(args[arg], arg):
                extra.update(nodes.get(spec.name, {}))
        extra.update(overrides.get(spec.name, {}))
        more_args = tuple(a for arg, more in spec.args_if if _truthy(args[arg], arg) for a in more)
        if spec.external:
            spec_args = tuple(a.replace("{config}", str(config_dir())) for a in spec.args)
            out.append(Instance(spec.name, spec, {}, spec_args + more_args))
            continue
        if not spec.ros:
            out.append(Instance(spec.name, spec, dict(extra), tuple(spec.args) + more_args, extra))
            continue
        base, hits = node_parameters(data, fully_qualified(spec.name, namespace), str(params_file))
        names = [spec.name]
        if spec.count_by:
            try:
                count = int(args[spec.count_by])
            except ValueError:
                count = -1
            if count < 1:
                raise ConfigError(f"launch argument {spec.count_by}: expected a whole number >= 1, "
                                  f"got {args[spec.count_by]!r}")
            names = [f"{spec.name}_{i}" for i in range(count)]
        for i, name in enumerate(names):
            own, own_hits = node_parameters(data, fully_qualified(name, namespace), str(params_file)) \
                if spec.count_by else ({}, 0)
            if hits + own_hits == 0:
                raise ConfigError(f"{params_file}: no entry for node {fully_qualified(name, namespace)} (a "
                                  f"`{spec.name}:` or `/**:` section with ros__parameters)")
            node_extra = {**base, **own, **extra, "instance": i} if spec.count_by else dict(extra)
            out.append(Instance(name, spec, {**base, **own, **node_extra}, tuple(spec.args) + more_args, node_extra))
    return out
