"""Launch files and the pip-only runner start the same processes from the one graph definition.

`launch` / `launch_ros` are not installable here (not on PyPI; the PyPI package named `launch` is unrelated),
so this test runs each launch file's generate_launch_description against minimal stand-ins of the few
launch classes it uses, which record their arguments. What it checks is our code: every graph's launch
file declares its arguments and yields, for given argument values, exactly the processes and parameters
that `resolve_graph` (and so `ssm-mbrl launch`) starts. Running `ros2 launch` itself was not possible here.
"""
import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from ssm_mbrl_ros.cli.launch import instance_command, parse_arguments, parse_overrides
from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.ros.graph import GRAPHS, default_params_file, get_graph, resolve_graph

ROOT = Path(__file__).resolve().parents[1]


class _Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


@pytest.fixture
def launch_stand_ins(monkeypatch):
    mods = {name: types.ModuleType(name) for name in
            ("launch", "launch.actions", "launch.substitutions", "launch_ros", "launch_ros.actions")}
    mods["launch"].LaunchDescription = type("LaunchDescription", (_Recorder,), {})
    for cls in ("DeclareLaunchArgument", "ExecuteProcess", "OpaqueFunction"):
        setattr(mods["launch.actions"], cls, type(cls, (_Recorder,), {}))
    mods["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration
    mods["launch_ros.actions"].Node = type("Node", (_Recorder,), {})
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "ssm_mbrl_ros.ros.launch_description", raising=False)
    return mods


def run_launch_file(graph_name, values):
    spec = importlib.util.spec_from_file_location(f"lf_{graph_name}", ROOT / "launch" / f"{graph_name}.launch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    entities = ld.args[0]
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    context = {**declared, **values}
    (opaque,) = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    return declared, opaque.kwargs["function"](context, *opaque.kwargs["args"])


@pytest.mark.parametrize("graph_name", sorted(GRAPHS))
def test_launch_file_matches_the_graph_definition(graph_name, launch_stand_ins):
    graph = get_graph(graph_name)
    declared, actions = run_launch_file(graph_name, {})
    assert set(declared) == {"params_file", "namespace", *graph.arguments}
    expected = resolve_graph(graph, default_params_file(graph))
    assert len(actions) == len(expected) > 0
    for action, inst in zip(actions, expected):
        if inst.spec.external:
            assert action.kwargs["package"] == inst.spec.package and action.kwargs["arguments"] == list(inst.args)
        elif inst.spec.ros:
            assert type(action).__name__ == "Node"
            assert action.kwargs["name"] == inst.name and action.kwargs["executable"] == inst.spec.executable
            if inst.spec.count_by:  # a replica: its resolved set (its section is under its base name)
                assert action.kwargs["parameters"] == [inst.parameters]
            else:  # the file itself, read by rcl, then the graph's additions
                assert action.kwargs["parameters"] == [str(default_params_file(graph)), inst.extra]
        else:
            assert type(action).__name__ == "ExecuteProcess"
            assert action.kwargs["cmd"][-len(inst.args):] == list(inst.args)


def test_console_scripts_of_every_graph_node_exist():
    setup = (ROOT / "setup.py").read_text()
    scripts = set(re.findall(r'"([\w-]+) = ssm_mbrl_ros\.[\w.]+:main"', setup))
    for graph in GRAPHS.values():
        for spec in graph.nodes:
            if spec.ros and not spec.external:
                assert spec.executable in scripts, (graph.name, spec.executable)
                assert importlib.util.find_spec(spec.module) is not None, spec.module


def test_train_sim_collectors_argument_replicates_with_instance_index(launch_stand_ins):
    _, actions = run_launch_file("train_sim", {"collectors": "3"})
    names = [a.kwargs.get("name") for a in actions]
    assert names[:3] == ["collector_0", "collector_1", "collector_2"]
    assert [a.kwargs["parameters"][0]["instance"] for a in actions[:3]] == [0, 1, 2]


def test_fly_real_switches_off_the_stand_in_fc_and_recorder(launch_stand_ins):
    _, actions = run_launch_file("fly_real", {"sim_fc": "false", "record": "false"})
    assert [a.kwargs.get("name") for a in actions] == ["fc_link", "state_bridge", "policy"]
    _, actions = run_launch_file("fly_real", {})
    assert type(actions[0]).__name__ == "ExecuteProcess" and "fc-sim" in actions[0].kwargs["cmd"]
    # fc_link: the file (lockstep: false there), then the graph's additions (sim_fc:=true lets it arm the stand-in)
    assert "--lockstep" not in actions[0].kwargs["cmd"] and "lockstep" not in actions[1].kwargs["parameters"][1]
    assert actions[1].kwargs["parameters"][1] == {"flight_controller": "sim", "auto_arm": True}
    _, actions = run_launch_file("fly_real", {"lockstep": "true"})
    assert actions[0].kwargs["cmd"][-1] == "--lockstep" and actions[1].kwargs["parameters"][1]["lockstep"] is True
    # lockstep: the FC's simulated time drives the whole graph
    assert actions[1].kwargs["parameters"][1]["publish_clock"] is True
    assert all(a.kwargs["parameters"][1].get("use_sim_time") is True for a in actions[1:] if "parameters" in a.kwargs)


def test_pip_runner_writes_each_node_its_parameters(tmp_path):
    graph = get_graph("train_sim")
    overrides = parse_overrides(["collector.num_envs=4", "trainer.set=[minutes=1]"], {s.name for s in graph.nodes})
    assert overrides == {"collector": {"num_envs": 4}, "trainer": {"set": ["minutes=1"]}}
    insts = resolve_graph(graph, default_params_file(graph), parse_arguments(["collectors:=2"]), overrides)
    cmd = instance_command(insts[1], "uav1", tmp_path)
    assert cmd[cmd.index("-r") + 1] == "__node:=collector_1" and "__ns:=/uav1" in cmd
    written = yaml.safe_load(Path(cmd[cmd.index("--params-file") + 1]).read_text())
    assert written["collector_1"]["ros__parameters"]["num_envs"] == 4
    assert written["collector_1"]["ros__parameters"]["instance"] == 1


@pytest.mark.parametrize("args,overrides,match", [
    ({"bogus": "1"}, {}, "unknown launch argument 'bogus'"),
    ({"collectors": "0"}, {}, "collectors: expected a whole number"),
    ({}, {"nope": {"x": 1}}, "no node named"),
])
def test_bad_launch_arguments_name_the_problem(args, overrides, match):
    graph = get_graph("train_sim")
    with pytest.raises(ConfigError, match=match):
        resolve_graph(graph, default_params_file(graph), args, overrides)
    with pytest.raises(ConfigError, match="sim_fc: expected true or false"):
        resolve_graph(get_graph("fly_real"), default_params_file(get_graph("fly_real")), {"sim_fc": "maybe"})
    with pytest.raises(ConfigError, match="--set"):
        parse_overrides(["policy_model=x"], {"policy"})


def test_missing_node_section_is_named(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("policy:\n  ros__parameters: {model: hover}\n")
    with pytest.raises(ConfigError, match="state_bridge"):
        resolve_graph(get_graph("fly_sim"), bad)


@pytest.mark.parametrize("graph_name,config", [("fly_sim", "fly.rviz"), ("fly_real", "fly.rviz"),
                                               ("train_sim", "train.rviz")])
def test_rviz_argument_starts_rviz_with_the_shipped_config(graph_name, config, launch_stand_ins):
    import yaml

    graph = get_graph(graph_name)
    assert "rviz" not in [i.name for i in resolve_graph(graph, default_params_file(graph))]  # off by default
    _, actions = run_launch_file(graph_name, {"rviz": "true"})
    (rviz,) = [a for a in actions if a.kwargs.get("package") == "rviz2"]
    path = Path(rviz.kwargs["arguments"][1])
    assert rviz.kwargs["arguments"][0] == "-d" and path.name == config and path.is_file()
    cfg = yaml.safe_load(path.read_text())["Visualization Manager"]
    assert cfg["Global Options"]["Fixed Frame"] == "odom"
    topics = {d["Topic"]["Value"] for d in cfg["Displays"] if "Topic" in d}
    assert {"odom", "reference", "trail", "markers"} <= topics  # what the state bridge publishes


def test_parameter_files_follow_rcl_rules(tmp_path):
    from ssm_mbrl_ros.ros.param_file import node_parameters

    data = yaml.safe_load("""
/**:
  ros__parameters: {use_sim_time: true, rate_hz: 50.0}
policy:
  ros__parameters: {model: hover, gains: {p: 1.0, d: 0.2}}
/drone1/policy:
  ros__parameters: {model: figure8}
drone2:
  policy:
    ros__parameters: {model: racing}
/**/fc_link:
  ros__parameters: {rate_hz: 100.0}
/*/state_bridge:
  ros__parameters: {source: px4}
""")
    root, n = node_parameters(data, "/policy")
    assert n == 2 and root == {"use_sim_time": True, "rate_hz": 50.0, "model": "hover", "gains.p": 1.0, "gains.d": 0.2}
    assert node_parameters(data, "/drone1/policy")[0]["model"] == "figure8"  # not the root-namespace `policy`
    assert node_parameters(data, "/drone2/policy")[0]["model"] == "racing"  # nested namespace keys
    assert node_parameters(data, "/a/b/fc_link")[0]["rate_hz"] == 100.0  # ** spans namespaces, later entry wins
    assert node_parameters(data, "/fc_link")[0]["rate_hz"] == 100.0  # ** also matches no namespace
    assert "source" in node_parameters(data, "/drone1/state_bridge")[0]  # * is exactly one token
    assert "source" not in node_parameters(data, "/state_bridge")[0]
    assert node_parameters(data, "/x/y/state_bridge")[0] == {"use_sim_time": True, "rate_hz": 50.0}


def test_wildcards_and_namespaces_reach_the_graph(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters: {vehicle: agile5}\n/drone1/policy:\n  ros__parameters: {model: figure8}\n"
                 "/drone1/state_bridge:\n  ros__parameters: {source: sim}\n")
    insts = {i.name: i for i in resolve_graph(get_graph("fly_sim"), f, namespace="drone1")}
    assert insts["policy"].parameters == {"vehicle": "agile5", "model": "figure8"}
    assert insts["state_bridge"].parameters == {"vehicle": "agile5", "source": "sim"}
    with pytest.raises(ConfigError, match="no entry for node /drone2/state_bridge"):
        resolve_graph(get_graph("fly_sim"), _only(tmp_path, "/drone1/policy"), namespace="drone2")


def _only(tmp_path, section):
    g = tmp_path / "only.yaml"
    g.write_text(f"{section}:\n  ros__parameters: {{model: hover}}\n")
    return g


@pytest.mark.parametrize("graph_name", sorted(GRAPHS))
def test_every_shipped_parameter_file_gives_each_node_values_of_its_declared_types(graph_name):
    """The shipped files, read with rcl's rules: every node gets its section, and every value has the static ROS
    type its parameter is declared with (a 100 where 100.0 is declared would stop the node)."""
    import dataclasses
    import importlib
    import typing

    from ssm_mbrl_ros.ros.params import _ros_type

    pytest.importorskip("rclpy")
    from rclpy.parameter import Parameter

    graph = get_graph(graph_name)
    classes = {"state_bridge": ["MeasuredConfig", "EstimatorConfig", "OutputConfig"], "policy": ["PolicyNodeConfig"],
               "fc_link": ["FcLinkConfig"], "recorder": ["RecorderNodeConfig"], "trainer": ["TrainerNodeConfig"],
               "collector": ["CollectorNodeConfig"]}
    for inst in resolve_graph(graph, default_params_file(graph)):
        if not inst.spec.ros or inst.spec.external:
            continue
        mod = importlib.import_module(inst.spec.module)
        fields = {}
        for cls_name in classes[inst.spec.name]:
            cls = getattr(mod, cls_name)
            hints = typing.get_type_hints(cls)
            defaults = {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}
            fields.update({name: _ros_type(hints[name], defaults[name]) for name in defaults})
        if inst.spec.name == "state_bridge":  # the sim source reads its own section too
            from ssm_mbrl_ros.ros.sim_bridge_node import SimBridgeConfig

            hints = typing.get_type_hints(SimBridgeConfig)
            fields.update({f.name: _ros_type(hints[f.name], getattr(SimBridgeConfig(), f.name))
                           for f in dataclasses.fields(SimBridgeConfig)})
        fields["source"] = Parameter.Type.STRING  # the state bridge's selector, declared before its source's config
        fields["use_sim_time"] = Parameter.Type.BOOL  # declared by rclpy itself
        for name, value in inst.parameters.items():
            assert name in fields, (graph_name, inst.name, name)
            ptype = fields[name]
            if ptype is not None:
                assert Parameter.Type.from_parameter_value(value) == ptype, (graph_name, inst.name, name, value)
