"""Batched Gymnasium vector env over QuadrotorSim + a task: torch tensors in and out, same-step autoreset.

Actions: `step(a)` takes NORMALISED actions (N, 4) in [-1, 1] (clamped), mapped to physical CTBR
by `env.action_spec` (the vehicle's limits, narrowed by the task's policy_* fields). Classical controllers call
`step_physical(ctbr)`
with physical CTBR (N, 4) [m/s^2, rad/s FLU], clamped once to the action limits and otherwise
passed to the simulator unchanged (no lossy normalise/denormalise round trip). A row with a
NaN/inf entry is replaced by a hover command before physics and that env is terminated with
info["nonfinite_action"]; the other envs are unaffected.

Observation (N, D), described by `env.obs_layout` (names, units, frames):
    task block (tasks/*.obs_fields: relative setpoint / reference points / next two gates)
    vel (3, m/s, world ENU)            full observation only
    rotmat (9, body->world, row-major)
    omega (3, rad/s, body FLU)
    last_action (4, normalised)
Partial observation: the task block uses the noisy, delayed position of sim/sensors.py and
there is no velocity. info["privileged"] (N, P), described by `env.privileged_layout`: true
state (17), vehicle parameter scales (5), wind (3, m/s); simulation only, never in obs.

Terminations (each flagged in info): crash (ground contact, gate-frame collision), out of bounds
(a non-finite position also counts), tilt beyond max_tilt_deg, non-finite action. Truncation at
episode_length_s. When any env is done, it is reset in the same step (metadata autoreset_mode
SAME_STEP): the returned obs is the new episode's first, info["final_obs"] / ["final_privileged"]
hold the last of the old one (valid where info["_final_obs"]), and info carries per-env
"episode_return", "episode_length", "pos_rmse_m", "success" (nan/-1/False elsewhere);
"lap_time_s" is the last lap completed in the (ending) episode, nan if none (racing only).
All randomness comes from `env.generator`, seeded by reset(seed=...).

Speed: per-step work is vectorised over envs with no Python loop and one host sync (`done.any()`
to skip the reset work when no env ended). Internally everything runs struct-of-arrays
((k, N) rows, read straight from the simulator's (17, N) state), because row ops on contiguous
(N,) vectors are several times faster on CPU than column ops on (N, k); observations are
assembled row-major (N, D) once at the end.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from ..core.observation import COMMON_FIELDS, VEL_FIELD, observation_blocks
from ..core.spaces import ObsField, ObsLayout
from .dynamics import QuadrotorSim
from .randomization import PARAM_NAMES, WindProcess, sample_param_scales
from .sensors import DelayedPositionSensor
from .state import GRAVITY_MPS2, STATE_NAMES
from .tasks import Task, make_task, split_task_name
from .tasks.base import common_penalty
from .vehicle import VehicleParams, load_vehicle

PRIVILEGED_LAYOUT = ObsLayout((
    ObsField("state", 17, "m, wxyz, m/s, rad/s, rad/s", "world ENU / body FLU", "true state: " + " ".join(STATE_NAMES)),
    ObsField("param_scales", 5, "", "", "vehicle parameter scales: " + " ".join(PARAM_NAMES)),
    ObsField("wind", 3, "m/s", "world ENU", "wind velocity"),
))


class QuadVecEnv(VectorEnv):
    """N quadrotors on one task; batched torch reset/step on the env's device."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, task: Task, vehicle: VehicleParams, *, seed: int | None = None, task_name: str | None = None,
                 compile_physics: bool = False):
        cfg = task.cfg
        self.task, self.cfg, self.vehicle = task, cfg, vehicle
        self.task_name = task_name or task.name
        self.num_envs, self.device, self.dtype = task.num_envs, task.device, task.dtype
        n, kw = self.num_envs, dict(device=task.device, dtype=task.dtype)
        self.sim = QuadrotorSim(vehicle, n, physics_hz=cfg.physics_hz, control_hz=cfg.control_hz,
                                compile=compile_physics, **kw)
        self.dt_s = self.sim.control_dt_s
        self.action_spec = cfg.policy_action_spec(vehicle.action_spec())
        limits = vehicle.action_spec()  # classical controllers are held to the vehicle's limits only
        self.generator = torch.Generator(device=self.device)
        self._seed = seed
        self._seeded = False
        self.partial = task.partial
        self.sensor = DelayedPositionSensor(cfg.sensors, n, **kw) if self.partial else None
        self.wind = WindProcess(cfg.randomization.wind, n, self.dt_s, **kw)
        self.param_scales = torch.ones(n, len(PARAM_NAMES), **kw)
        vel = () if self.partial else (VEL_FIELD,)
        self.obs_layout = ObsLayout(tuple(task.obs_fields()) + vel + COMMON_FIELDS)
        self.privileged_layout = PRIVILEGED_LAYOUT
        np_dtype = np.float64 if task.dtype == torch.float64 else np.float32
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (self.obs_layout.dim,), np_dtype)
        self.observation_space = spaces.Box(-np.inf, np.inf, (n, self.obs_layout.dim), np_dtype)
        self.single_action_space = spaces.Box(-1.0, 1.0, (4,), np_dtype)
        self.action_space = spaces.Box(-1.0, 1.0, (n, 4), np_dtype)

        # hot-path constants as (k, 1) columns for struct-of-arrays (k, N) tensors
        col = lambda v: torch.as_tensor(v, **kw).reshape(-1, 1)  # noqa: E731
        scale, offset = self.action_spec.scale_offset()
        self._scale, self._offset = col(scale), col(offset)
        self._ctbr_low, self._ctbr_high = col(limits.low), col(limits.high)
        self._safe_ctbr = col([GRAVITY_MPS2, 0.0, 0.0, 0.0])
        self._safe_action = (self._safe_ctbr - self._offset) / self._scale
        self._bounds_low, self._bounds_high = col(cfg.bounds_low_m), col(cfg.bounds_high_m)
        self._cos_max_tilt = math.cos(math.radians(cfg.max_tilt_deg)) if cfg.max_tilt_deg < 180.0 else None
        self.max_episode_steps = cfg.episode_steps

        self._last_action = torch.zeros(4, n, **kw)  # (4, N) normalised
        self.episode_steps = torch.zeros(n, dtype=torch.long, device=self.device)
        self._return = torch.zeros(n, **kw)
        self._err_sq_sum = torch.zeros(n, **kw)
        self._nan = torch.full((n,), float("nan"), **kw)
        self._false = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._minus_one = torch.full((n,), -1, dtype=torch.long, device=self.device)

    # ---- properties ----
    @property
    def elapsed_s(self) -> torch.Tensor:
        """Per-env elapsed episode time (N,) s."""
        return self.task.time_s

    @property
    def last_action(self) -> torch.Tensor:
        """Previous normalised action (N, 4) (a view)."""
        return self._last_action.t()

    def reference(self) -> dict[str, torch.Tensor]:
        """The task reference now: pos, vel, acc (N, 3) world ENU and yaw (N,) rad."""
        return self.task.reference()

    def _state_soa(self) -> torch.Tensor:
        """Simulator state as struct-of-arrays (17, N): 17 row copies, cheaper than a transpose."""
        return torch.stack(self.sim.state_soa, 0)

    # ---- reset ----
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset every env; seed (or the constructor's seed on first use) seeds env.generator."""
        if seed is None and not self._seeded:
            seed = self._seed
        if seed is not None:
            self.generator.manual_seed(int(seed))
        elif not self._seeded:
            self.generator.seed()
        self._seeded = True
        ids = torch.arange(self.num_envs, device=self.device)
        rows = self._reset_envs(ids)
        obs = self._observe_rows(ids, rows)
        info = {"privileged": self._privileged_rows(ids, rows)}
        return obs, info

    def _reset_envs(self, ids: torch.Tensor) -> torch.Tensor:
        """Randomise, pick start states and clear episode buffers of envs ids; returns their state rows (n, 17)."""
        gen = self.generator
        if self.cfg.randomization.enabled:
            scales = sample_param_scales(self.cfg.randomization, ids.shape[0], gen, self.device, self.dtype)
            self.param_scales[ids] = scales
            self.sim.set_param_scales(ids, **{name: scales[:, i] for i, name in enumerate(PARAM_NAMES)})
        self.wind.reset(ids, gen)
        pos, vel, quat = self.task.reset(ids, gen)
        rows = self.sim.hover_state(pos, env_ids=ids)
        rows[:, 3:7] = quat
        rows[:, 7:10] = vel
        self.sim.reset_envs(ids, rows)
        if self.sensor is not None:
            self.sensor.reset(ids, pos, gen)
        self._last_action[:, ids] = 0.0
        self.episode_steps[ids] = 0
        self._return[ids] = 0.0
        self._err_sq_sum[ids] = 0.0
        return rows

    # ---- observation ----
    def _compose(self, task_block, x, last_action) -> torch.Tensor:
        """Observation (M, D) from the task block (k, M), state x (17, M) and last action (4, M)
        (core/observation.py: the one definition the dataset and the flight side use too)."""
        blocks = observation_blocks(task_block, None if self.partial else x[7:10], x[3:7], x[10:13], last_action,
                                    stack=lambda e: torch.stack(e, 0))
        # (k, M) blocks -> (M, D); cat of transposed views beats cat + transpose-copy about 2x on CPU
        return torch.cat([b.t() for b in blocks], 1)

    def _observe_rows(self, ids, rows) -> torch.Tensor:
        """Observation (n, D) of envs ids right after their reset (rows (n, 17))."""
        x = rows.t()
        pos = self.sensor.read(ids) if self.sensor is not None else x[0:3]
        return self._compose(self.task.observe(pos, ids), x, self._last_action[:, ids])

    def _privileged_rows(self, ids, rows) -> torch.Tensor:
        """Privileged vector (n, P) of envs ids with state rows (n, 17)."""
        return torch.cat([rows, self.param_scales[ids], self.wind.wind_mps[ids]], 1)

    # ---- step ----
    def step(self, actions):
        """Step with normalised actions (N, 4) in [-1, 1]; returns obs, reward, terminated, truncated, info."""
        a = torch.as_tensor(actions, device=self.device, dtype=self.dtype)
        assert a.shape == (self.num_envs, 4), f"actions must be ({self.num_envs}, 4), got {tuple(a.shape)}"
        a = a.t().contiguous()  # (N, 4) -> (4, N)
        nonfinite = (a * 0.0).sum(0) != 0.0  # NaN exactly when a row holds NaN or inf (no overflow)
        a = torch.where(nonfinite, self._safe_action, a).clamp_(-1.0, 1.0)
        return self._advance(torch.addcmul(self._offset, a, self._scale), a, nonfinite)

    def step_physical(self, ctbr):
        """Step with physical CTBR (N, 4) [m/s^2, rad/s x3 FLU], clamped to the action limits only."""
        c = torch.as_tensor(ctbr, device=self.device, dtype=self.dtype)
        assert c.shape == (self.num_envs, 4), f"ctbr must be ({self.num_envs}, 4), got {tuple(c.shape)}"
        c = c.t().contiguous()  # (N, 4) -> (4, N)
        nonfinite = (c * 0.0).sum(0) != 0.0
        c = torch.where(nonfinite, self._safe_ctbr, c)
        c = torch.minimum(torch.maximum(c, self._ctbr_low), self._ctbr_high)
        return self._advance(c, ((c - self._offset) / self._scale).clamp_(-1.0, 1.0), nonfinite)

    def _advance(self, ctbr, action, nonfinite):
        """Physics, task, rewards, terminations, statistics and same-step autoreset (ctbr, action: (4, N))."""
        gen, rw = self.generator, self.cfg.reward
        state = self.sim.step(ctbr.t(), wind_mps=self.wind.step(gen))  # transposed views: no copies
        x = self._state_soa()
        self.task.advance_time()
        self.episode_steps += 1
        ts = self.task.step(x)
        pos = x[0:3]

        out_of_bounds = ~((pos >= self._bounds_low) & (pos <= self._bounds_high)).all(0)  # NaN -> out
        crash = self.sim.ground_contact if ts.collision is None else self.sim.ground_contact | ts.collision
        if self._cos_max_tilt is None:
            tilt = self._false
        else:
            tilt = (x[4] * x[4] + x[5] * x[5]) > 0.5 * (1.0 - self._cos_max_tilt)  # cos(tilt) = 1 - 2(qx^2 + qy^2)
        terminated = crash | out_of_bounds | tilt | nonfinite
        truncated = (self.episode_steps >= self.max_episode_steps) & ~terminated

        omega, da = x[10:13], action - self._last_action
        reward = ts.reward - common_penalty(rw, (omega * omega).sum(0), (da * da).sum(0))
        reward = reward - rw.crash_penalty * terminated.to(reward.dtype)
        self._last_action = action
        self._return += reward
        self._err_sq_sum += ts.pos_err_m * ts.pos_err_m

        pos_obs = self.sensor.push(pos, gen) if self.sensor is not None else pos
        obs = self._compose(self.task.observe(pos_obs), x, action)
        privileged = torch.cat([state, self.param_scales, self.wind.wind_mps], 1)
        info = {"crash": crash, "out_of_bounds": out_of_bounds, "tilt": tilt, "nonfinite_action": nonfinite,
                "pos_err_m": ts.pos_err_m, "lap_time_s": self._nan}
        info.update(self.task.step_info())
        done = terminated | truncated
        if bool(done.any()):
            ids = done.nonzero().squeeze(1)
            rmse = torch.sqrt(self._err_sq_sum / self.episode_steps.to(self.dtype))
            info = {k: v.clone() for k, v in info.items()}  # task buffers are reset in place below
            info["success"] = done & self.task.success(truncated, ts.pos_err_m, rmse)
            info["episode_return"] = torch.where(done, self._return, self._nan)
            info["episode_length"] = torch.where(done, self.episode_steps, self._minus_one)
            info["pos_rmse_m"] = torch.where(done, rmse, self._nan)
            info["final_obs"], info["final_privileged"] = obs, privileged
            obs, privileged = obs.clone(), privileged.clone()
            rows = self._reset_envs(ids)
            obs[ids] = self._observe_rows(ids, rows)
            privileged[ids] = self._privileged_rows(ids, rows)
        else:
            info.update(success=self._false, episode_return=self._nan, episode_length=self._minus_one,
                        pos_rmse_m=self._nan, final_obs=obs, final_privileged=privileged)
        info["_final_obs"] = done
        info["privileged"] = privileged
        return obs, reward, terminated, truncated, info

    def close(self, **kwargs):
        """Release nothing (tensors are freed with the env); marks the env closed."""
        self.closed = True


def make_env(task: str, num_envs: int, *, vehicle: str | VehicleParams = "agile5", device="cpu",
             dtype=torch.float32, seed: int | None = None, overrides=(), compile_physics: bool = False) -> QuadVecEnv:
    """Build a QuadVecEnv for task name (see tasks.list_tasks()) with dotted config overrides.

    compile_physics=True runs the RK4 substeps through torch.compile (inductor): several times
    faster at large batch, 20-45 s of compilation per batch size on first use.
    """
    split_task_name(task)
    vehicle = load_vehicle(vehicle) if not isinstance(vehicle, VehicleParams) else vehicle
    task_obj = make_task(task, num_envs, device=device, dtype=dtype, overrides=overrides)
    return QuadVecEnv(task_obj, vehicle, seed=seed, task_name=task, compile_physics=compile_physics)
