"""An exported policy as a `state17 -> ctbr` controller for the offboard loop (link/offboard_loop.py) and the ROS policy
node: hover (hold a setpoint) and trajectory tracking (circle, figure-8 from the policy's own task definition).

Builds the observation from the link's state estimate exactly as the simulator does (task block, world velocity m/s,
body->world rotation matrix row-major, body FLU rates rad/s, previous normalised action), steps the ONNX graph
through the torch-free runtime, and keeps the world model's surprise of the last step for the safety supervisor.
Task blocks:
    hover     setpoint - position (world ENU m), through a carrot when the setpoint is far
    tracking  K reference points p_ref(tau + k * spacing) - position, and v_ref(tau) (world ENU): the analytic
              trajectory of the policy's task, whose phase is anchored at the first state after every reset to the
              reference point that best matches the drone's position and velocity

The policy runs at the control rate it was trained at (the sidecar's control_hz), whatever rate the loop calls it:
between two policy steps the last command is held (action repeat), as in the simulator the policy learned in.
"""
from __future__ import annotations

import math

import numpy as np

from ssm_mbrl_ros.core.observation import observation_entries
from ssm_mbrl_ros.runtime.policy import OnnxPolicy

HOVER_FIELDS = ["pos_err", "vel", "rotmat", "omega", "last_action"]
TRACKING_FIELDS = ["ref_pos_rel", "ref_vel", "vel", "rotmat", "omega", "last_action"]
TRACKING_TASKS = ("circle", "figure8")
# weight of the velocity mismatch when anchoring a trajectory's phase, s^2: 0.5 m/s of velocity error counts as much
# as 0.5 m of position error, which tells the two branches through a figure-8's crossing point apart
ANCHOR_VEL_WEIGHT_S2 = 1.0


class HoverReference:
    """The hover task block: setpoint - position (ENU m), shortened to carrot_m when the setpoint is farther."""

    fields = HOVER_FIELDS

    def __init__(self, target_pos_m, carrot_m: float = 1.0):
        self.target = np.asarray(target_pos_m, float)
        self.carrot_m = carrot_m

    def reset(self) -> None:
        """Nothing to forget: the setpoint stays."""

    def block(self, state17: np.ndarray, t_s: float) -> tuple:
        """(ex, ey, ez) m for a simulator-layout state."""
        s = state17
        ex, ey, ez = self.target[0] - s[0], self.target[1] - s[1], self.target[2] - s[2]
        dist = math.sqrt(ex * ex + ey * ey + ez * ez)
        if dist > self.carrot_m:  # the policy was trained on setpoints within a few metres: approach via a carrot
            k = self.carrot_m / dist
            ex, ey, ez = ex * k, ey * k, ez * k
        return ex, ey, ez


class TrajectoryReference:
    """The tracking task block of an analytic trajectory (sim/tasks/trajectories.py, evaluated in numpy)."""

    fields = TRACKING_FIELDS

    def __init__(self, trajectory, num_points: int, spacing_s: float, grid: int = 2000):
        self.trajectory = trajectory
        self.offsets_s = np.arange(num_points) * float(spacing_s)
        self._grid_t = np.linspace(0.0, trajectory.period_s, grid, endpoint=False)
        self._grid_pos, self._grid_vel = trajectory.evaluate(self._grid_t)[:2]  # (grid, 3) each
        self.phase_s: float | None = None  # trajectory time at anchor_t_s
        self.anchor_t_s = 0.0

    def reset(self) -> None:
        """Re-anchor the phase at the next state (a new flight or a new episode)."""
        self.phase_s = None

    def anchor(self, pos_m: np.ndarray, vel_mps: np.ndarray, t_s: float) -> float:
        """Set the phase to the reference point nearest in position and velocity; returns it (s)."""
        cost = (np.square(self._grid_pos - pos_m).sum(1)
                + ANCHOR_VEL_WEIGHT_S2 * np.square(self._grid_vel - vel_mps).sum(1))
        self.phase_s, self.anchor_t_s = float(self._grid_t[int(np.argmin(cost))]), float(t_s)
        return self.phase_s

    def tau_s(self, t_s: float) -> float:
        """Trajectory time at loop time t_s, s."""
        return self.phase_s + (t_s - self.anchor_t_s)

    def block(self, state17: np.ndarray, t_s: float) -> list:
        """[p_ref(tau + k dt) - p for k < K] (k-major) + v_ref(tau), world ENU."""
        if self.phase_s is None:
            self.anchor(state17[0:3], state17[7:10], t_s)
        points, vel = self.trajectory.lookahead(np.array([self.tau_s(t_s)]), self.offsets_s)  # (K, 3, 1), (3, 1)
        rel = points[:, :, 0] - state17[0:3]
        return [*rel.reshape(-1), *vel[:, 0]]


class OnnxController:
    """An exported policy flying a task block (HoverReference or TrajectoryReference); callable(state17, t_s) -> ctbr."""

    def __init__(self, onnx_path, reference, sidecar: dict | None = None):
        self.policy = OnnxPolicy(onnx_path, sidecar=sidecar)
        names = [f.name for f in self.policy.obs_layout.fields]
        if names != list(reference.fields):
            raise ValueError(f"{onnx_path}: observation fields {names} are not the layout {list(reference.fields)} "
                             f"this controller builds")
        self.reference = reference
        self.last_action = np.zeros(4, np.float32)
        self.last_surprise: float | None = None
        self.period_s = 1.0 / self.policy.control_hz
        self._next_step_s: float | None = None  # loop time of the next policy step
        self._ctbr = np.zeros(4, np.float32)
        self._obs = np.zeros(self.policy.obs_dim, np.float32)  # reused every step
        self.policy.reset(1)

    def reset(self) -> None:
        """Forget the recurrent state (a new flight, episode or mode change)."""
        self.policy.reset(1)
        self.reference.reset()
        self.last_action[:] = 0.0
        self._next_step_s = None

    def observation(self, state17: np.ndarray, t_s: float = 0.0) -> np.ndarray:
        """The observation (obs_dim,) for a simulator-layout state (ENU/FLU) at loop time t_s, as the simulator
        builds it."""
        s = state17
        self._obs[:] = observation_entries(self.reference.block(s, t_s), s[7:10], s[3:7], s[10:13], self.last_action)
        return self._obs

    def __call__(self, state17: np.ndarray, t_s: float) -> np.ndarray:
        """CTBR (4,): thrust m/s^2, body rates FLU rad/s (a view valid until the next call); a new policy step once
        per policy period (t_s: loop time, s), the held command in between."""
        # a 5 % tolerance keeps a loop at exactly the policy rate from skipping steps on timer jitter
        if self._next_step_s is None or t_s >= self._next_step_s - 0.05 * self.period_s:
            action, ctbr, surprise = self.policy.step(self.observation(state17, t_s), copy=False)
            self.last_action[:] = action
            self.last_surprise = float(surprise)
            self._ctbr[:] = ctbr
            late = self._next_step_s is None or t_s - self._next_step_s > self.period_s
            self._next_step_s = (t_s if late else self._next_step_s) + self.period_s
        return self._ctbr


class OnnxHoverController(OnnxController):
    """Hold target_pos_m (ENU) with an exported hover policy."""

    def __init__(self, onnx_path, target_pos_m, carrot_m: float = 1.0, sidecar: dict | None = None):
        super().__init__(onnx_path, HoverReference(target_pos_m, carrot_m), sidecar)

    @property
    def target(self) -> np.ndarray:
        """The setpoint (ENU m)."""
        return self.reference.target

    @target.setter
    def target(self, value) -> None:
        self.reference.target = np.asarray(value, float)


def tracking_reference(sidecar: dict) -> TrajectoryReference:
    """The analytic reference of a tracking policy's task, rebuilt from its sidecar (task + the task overrides it was
    trained with)."""
    from ssm_mbrl_ros.sim.tasks import load_task_config  # config loading only; the hot path stays numpy

    overrides = sidecar.get("training_config", {}).get("train", {}).get("task_overrides", [])
    cfg = load_task_config(sidecar["task"], list(overrides))
    return TrajectoryReference(cfg.make_trajectory(), cfg.num_ref_points, cfg.ref_spacing_s)


def controller_for(onnx_path, target_pos_m, carrot_m: float = 1.0) -> OnnxController:
    """The controller that flies this policy's task: hover (holding target_pos_m) or circle/figure-8 tracking;
    ValueError naming the task for anything else (racing, partial observation)."""
    from ssm_mbrl_ros.runtime.sidecar import load_sidecar

    sidecar = load_sidecar(onnx_path)
    task = str(sidecar.get("task", ""))
    if task == "hover":
        return OnnxHoverController(onnx_path, target_pos_m, carrot_m, sidecar)
    if task in TRACKING_TASKS:
        return OnnxController(onnx_path, tracking_reference(sidecar), sidecar)
    raise ValueError(f"{onnx_path}: a {task or 'task-less'} policy cannot be flown here: the flight side builds the "
                     f"observations of hover and of {'/'.join(TRACKING_TASKS)} tracking (full observation) only")
