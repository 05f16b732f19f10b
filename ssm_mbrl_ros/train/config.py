"""TrainConfig: every knob of `ssm-mbrl train`, with defaults sized for a 2-core CPU.

Precedence: dataclass defaults < --config YAML < named command-line flags < --set KEY=VALUE.
World-model fields are nested under `world_model` (a size preset plus overrides).
"""
from __future__ import annotations

from dataclasses import dataclass

from ssm_mbrl_ros.core.config import ConfigError, doc, require_positive

COMPILE_PHYSICS_MIN_MINUTES, COMPILE_PHYSICS_MIN_STEPS = 3.0, 30_000  # below these, compiling costs more than it saves
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")  # torch.compile modes of the trainer update


@dataclass
class TrainConfig:
    """Online Dreamer-style training of a world model + actor-critic in the batched simulator."""

    task: str = doc("task name (hover, circle, figure8, racing, or a *_partial variant)", default="hover")
    vehicle: str = doc("vehicle name (config/vehicles/NAME.yaml) or a YAML path", default="agile5")
    wm: str = doc("world model: s5 (parallel scan) or rssm (DreamerV3 GRU baseline)", default="s5")
    preset: str = doc("world-model size preset: tiny, flight, small, default", default="flight")
    world_model: dict = doc("world-model config overrides on top of the preset (WorldModelConfig fields)",
                            default_factory=dict)
    task_overrides: list = doc("task config overrides KEY=VALUE (as `evaluate --set`)", default_factory=list)
    collect_overrides: list | None = doc(
        "task config overrides for the training drones only, after task_overrides: a curriculum or reward shaping; "
        "evaluation, probes and the exported policy's task use task_overrides alone. None: the task's own (hover: "
        "near_start_fraction=0.5, reward.pos_weight=2, reward.rate_weight=0.01 and reward.precision_weight=2; other "
        "tasks: none); []: train on the task as evaluated", default=None)
    privileged: bool = doc("train a privileged-state head (simulator state, parameters, wind) on the world "
                           "model; used in training only, never by the exported policy", default=True)
    critic_replay_scale: float = doc("weight of the critic's loss on replayed sequences (lambda-returns of the real "
                                     "rewards, DreamerV3's replay value loss) next to its loss in imagination; "
                                     "0 = imagination only", default=0.0)
    obs_field_weights: dict = doc("weight of named observation fields in the world model's reconstruction loss, e.g. "
                                  "{pos_err: 10} (the others weigh 1; field names as in the policy sidecar's "
                                  "observation layout)", default_factory=dict)
    critic_privileged: bool = doc("critic also reads the world model's privileged-state prediction", default=False)
    seed: int = doc("seed of the simulator, replay sampling and network initialisation", default=0)
    device: str = doc("torch device: cpu, cuda, cuda:1 or auto", default="auto")
    num_envs: int = doc("parallel simulated drones used for collection", default=16)
    minutes: float = doc("wall-clock budget in minutes (0 = no limit)", default=10.0)
    max_env_steps: int = doc("stop after this many environment steps (0 = no limit)", default=0)
    prefill_steps: int = doc("env steps collected before the first update, with the initial actor "
                             "(uniform random CTBR would flip a quadrotor within 0.2 s)", default=2000)
    train_ratio: float = doc("replayed steps trained on per env step collected (DreamerV3's train ratio)",
                             default=64.0)
    batch_size: int = doc("sequences per world-model batch", default=16)
    seq_len: int = doc("steps per sequence", default=64)
    record_store: bool = doc("also write every collected episode to LOGDIR/store as rosbag2 MCAP chunks (ros2 bag, "
                             "Foxglove and `train-offline --bags` read them)", default=False)
    replay_capacity: int = doc("env steps kept in replay (oldest dropped first)", default=1_000_000)
    horizon: int = doc("imagination horizon in steps (30 = 1.2 s at hover's 25 Hz: hover learned to hold the setpoint "
                       "only with more than 15, docs/learning.md section 15)", default=30)
    discount: float = doc("discount per control step", default=0.99)
    lam: float = doc("lambda of the lambda-returns", default=0.95)
    imag_starts: int = doc("imagination start states per update (a random subset of the batch's B*T; 256 x horizon "
                           "30 imagines as many states as DreamerV3's 512 x 15)", default=256)
    imagine_sample: bool = doc("draw each imagined latent from the prior (DreamerV3); false = take the prior's mode "
                               "(the mean of a Gaussian latent): deterministic imagination", default=True)
    imagined_reward: str = doc("reward of imagined steps: 'head' = the world model's reward head (DreamerV3); "
                               "'task' = the task's own reward function on the decoded observations where the task "
                               "has one (hover with full observation), else the head (with hover's precision term "
                               "the head missed the sharp peak and the rate penalty: docs/learning.md section 16)",
                               default="task")
    actor_grad: str = doc("actor gradient: dynamics (backprop through the world model) or reinforce",
                          default="dynamics")
    expert: str = doc("expert guidance: 'geometric' flies the prefill with the geometric controller (CTBR from the "
                      "true state, simulation only) and labels every collected state with its action (DAgger-style) "
                      "for a behaviour-cloning loss next to the RL loss; 'geometric_priv' the same controller "
                      "without its integral but with the true wind and thrust/mass mismatch as feed-forward (a "
                      "memoryless label the policy can infer from a short history); 'none' = pure RL from the "
                      "hover-initialised actor", default="none")
    bc_scale: float = doc("weight of the behaviour-cloning loss on labelled rows (MSE of the mean action)",
                          default=1.0)
    bc_updates: int = doc("updates during which expert labels are collected and the behaviour-cloning loss applies",
                          default=2000)
    bc_repr_scale: float = doc("weight of the behaviour-cloning loss inside the world-model update (gradient into the "
                               "encoder and latents, actor frozen): shapes the features toward what the expert's "
                               "action needs; 0 = off", default=0.0)
    expert_mix: float = doc("fraction of envs the expert keeps flying after the prefill while bc_updates last (the "
                            "rest fly the policy; all are labelled)", default=0.5)
    expert_noise: float = doc("std of normalised-action noise added to expert actions (state coverage)",
                              default=0.1)
    actor_latent: str = doc("posterior latent the actor learns from on replayed states (behaviour cloning and "
                            "imagination starts) and acts on: 'mode' (the one-hot argmax), 'sample' (DreamerV3), "
                            "'probs' (the posterior probabilities: a soft code that resolves small errors; in "
                            "imagination the prior's probabilities) or 'prior' ([h_t, the prior's mean or "
                            "probabilities at h_t] in imagination and in flight alike: the actor flies on the "
                            "feature it learned on, with the observations up to the previous step)",
                            default="mode")
    actor_warmup_updates: int = doc("world-model-only updates before the actor and critic start learning (an "
                                    "untrained model is easy to exploit)", default=200)
    actor_gate_r2: float = doc("the actor starts only once the world model's imagination answers probe actions as "
                               "the simulator does: body-rate R^2 of the action-response probe "
                               "(train/action_response.py) at least this; the critic learns meanwhile (0 = no gate, "
                               "start after actor_warmup_updates)", default=0.7)
    actor_gate_max_updates: int = doc("after this many updates the gate asks for half of actor_gate_r2 (0 = never "
                                      "relax): a probe that stays just under the threshold must not hold the actor "
                                      "back for half the budget (a 10-minute hover run waited 2,500 updates at body-rate "
                                      "R^2 0.37-0.68, docs/learning.md section 21)", default=1000)
    probe_every_updates: int = doc("updates between action-response probes (logged as kind 'probe')", default=100)
    actor_mean_limit: float = doc("penalise the actor's pre-tanh mean beyond +-this (squared excess), so it cannot "
                                  "run away to saturated commands (0 = off)", default=2.0)
    actor_anchor: float = doc("weight of a behaviour anchor: squared distance of the actor's mean action from the "
                              "action flown in each replayed state, so the actor moves only as fast as the data (and "
                              "so the world model) follows it (0 = off)", default=0.0)
    explore_corr_s: float = doc("correlation time of the actor's exploration noise while collecting, s: an AR(1) "
                                "process with the actor's std, so perturbations are held long enough to turn the "
                                "drone and replay shows what sustained commands do (0 = white noise, DreamerV3)",
                                default=0.0)
    actor_init_std: float = doc("initial exploration std of the actor (pre-tanh, in (0.1, 1))", default=0.3)
    actor_init_hover: bool = doc("start the actor's mean at hover thrust and zero rates (else mid-range thrust)",
                                 default=True)
    wm_lr: float = doc("world-model Adam learning rate (1e-3: body-rate response learned faster than at 3e-4, "
                                                   "docs/learning.md section 1)", default=1e-3)
    actor_lr: float = doc("actor Adam learning rate (3e-4: hover's weak seeds learned to hold the setpoint, 1e-4 "
                          "left them 0.2 m off: docs/learning.md section 16)", default=3e-4)
    actor_lr_anneal_start: float = doc("fraction of the run's budget (minutes or max_env_steps) after which the actor's "
                                       "learning rate falls linearly to actor_lr x actor_lr_anneal_final at the end "
                                       "(1 = constant; 0.5: hover's late evaluations swung less, docs/learning.md "
                                       "section 17)", default=0.5)
    actor_lr_anneal_final: float = doc("the actor's learning-rate multiplier at the end of the budget",
                                       default=0.1)
    actor_average: float = doc("decay per update of a Polyak average of the actor that is exported and evaluated "
                               "(policy.onnx, best.onnx) instead of the live actor (0 = export the live actor; "
                               "0.995 averages ~200 updates, docs/learning.md section 17)", default=0.995)
    critic_lr: float = doc("critic Adam learning rate", default=1e-4)
    grad_clip: float = doc("global gradient-norm clip per optimiser", default=100.0)
    entropy_coef: float = doc("actor entropy bonus (on normalised returns)", default=3e-4)
    slow_critic_tau: float = doc("slow critic EMA rate per update", default=0.02)
    ac_hidden: int = doc("actor and critic MLP width (0 = the world model's hidden width)", default=0)
    ac_layers: int = doc("actor and critic hidden layers", default=2)
    eval_every_min: float = doc("minutes between evaluations (each exports ONNX and flies it; best.onnx keeps the best)",
                                default=2.0)
    eval_episodes: int = doc("episodes per evaluation, flown in parallel: 100 ranks best.onnx on a success estimate "
                             "with a standard error of 3-4 points at a success rate of 0.8-0.9 (32 episodes: 5-7), for "
                             "about 9 s per evaluation on 2 cores (32 episodes: 7-8 s)", default=100)
    checkpoint_every_min: float = doc("minutes between checkpoints (also written at the end and on Ctrl-C)",
                                      default=2.0)
    target_success: float = doc("stop early once an evaluation reaches this success rate (0 = never)",
                                default=0.0)
    log_every_updates: int = doc("updates between scalar logs", default=20)
    compile: str = doc("torch.compile the world-model loss and the imagination rollout (static shapes): off, default "
                       "(inductor kernels), reduce-overhead (also CUDA graphs: for a GPU) or max-autotune; the first "
                       "updates pay the compilation (a minute or more)", default="off")
    compile_physics: str = doc("run the simulator's RK4 substeps through torch.compile for collection and "
                               "evaluation: on, off, or auto (on for budgets of at least "
                               f"{COMPILE_PHYSICS_MIN_MINUTES:g} minutes or {COMPILE_PHYSICS_MIN_STEPS} env steps). "
                               "Same results to float32 round-off; an env step is ~10x faster on a CPU, for 10-35 s of "
                               "compilation on first use (cached across runs); falls back to eager if compilation "
                               "fails", default="auto")
    threads: int = doc("torch intra-op threads (0 = torch's default)", default=0)

    def physics_compiled(self) -> bool:
        """Whether compile_physics resolves to compiled physics for this run's budget."""
        if self.compile_physics != "auto":
            return self.compile_physics == "on"
        return self.minutes >= COMPILE_PHYSICS_MIN_MINUTES or self.max_env_steps >= COMPILE_PHYSICS_MIN_STEPS

    def validate(self, source: str = "train") -> "TrainConfig":
        """Raise ConfigError naming the field when a value is invalid; returns self."""
        from ssm_mbrl_ros.agent.actor_critic import ACTOR_LATENTS
        from ssm_mbrl_ros.control.experts import EXPERTS
        from ssm_mbrl_ros.sim.tasks import list_tasks
        from ssm_mbrl_ros.train.imagined_reward import IMAGINED_REWARDS
        from ssm_mbrl_ros.world_models.config import WM_PRESETS, WORLD_MODEL_KINDS

        if self.task not in list_tasks():
            raise ConfigError(f"{source}.task: unknown task {self.task!r}; valid: {list_tasks()}")
        if self.wm not in WORLD_MODEL_KINDS:
            raise ConfigError(f"{source}.wm: unknown world model {self.wm!r}; valid: {list(WORLD_MODEL_KINDS)}")
        if self.preset not in WM_PRESETS:
            raise ConfigError(f"{source}.preset: unknown preset {self.preset!r}; valid: {sorted(WM_PRESETS)}")
        if self.imagined_reward not in IMAGINED_REWARDS:
            raise ConfigError(f"{source}.imagined_reward: must be one of {list(IMAGINED_REWARDS)}, got "
                              f"{self.imagined_reward!r}")
        if self.compile not in COMPILE_MODES:
            raise ConfigError(f"{source}.compile: must be one of {list(COMPILE_MODES)}, got {self.compile!r}")
        if self.compile_physics not in ("auto", "on", "off"):
            raise ConfigError(f"{source}.compile_physics: must be auto, on or off, got {self.compile_physics!r}")
        if self.actor_grad not in ("dynamics", "reinforce"):
            raise ConfigError(f"{source}.actor_grad: must be 'dynamics' or 'reinforce', got {self.actor_grad!r}")
        require_positive(self, source, "num_envs", "train_ratio", "batch_size", "seq_len", "replay_capacity",
                         "horizon", "imag_starts", "wm_lr", "actor_lr", "critic_lr", "grad_clip",
                         "eval_every_min", "eval_episodes", "checkpoint_every_min", "log_every_updates",
                         "probe_every_updates")
        if self.actor_gate_max_updates < 0:
            raise ConfigError(f"{source}.actor_gate_max_updates: must be >= 0, got {self.actor_gate_max_updates}")
        for name in ("minutes", "max_env_steps", "prefill_steps", "actor_warmup_updates", "bc_scale", "bc_updates",
                     "expert_noise", "entropy_coef", "bc_repr_scale", "threads", "ac_hidden",
                     "actor_mean_limit", "actor_anchor", "critic_replay_scale", "explore_corr_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{source}.{name}: must be >= 0, got {getattr(self, name)}")
        if self.minutes == 0 and self.max_env_steps == 0:
            raise ConfigError(f"{source}: set a budget: minutes > 0 or max_env_steps > 0")
        for name in ("discount", "lam", "slow_critic_tau", "target_success", "expert_mix", "actor_gate_r2",
                     "actor_lr_anneal_start", "actor_lr_anneal_final"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{source}.{name}: must be in [0, 1], got {getattr(self, name)}")
        if self.actor_latent not in ACTOR_LATENTS:
            raise ConfigError(f"{source}.actor_latent: must be one of {list(ACTOR_LATENTS)}, got {self.actor_latent!r}")
        if self.expert not in ("none", *EXPERTS):
            raise ConfigError(f"{source}.expert: must be one of {['none', *EXPERTS]}, got {self.expert!r}")
        if not 0.0 <= self.actor_average < 1.0:
            raise ConfigError(f"{source}.actor_average: must be in [0, 1), got {self.actor_average}")
        if not 0.1 < self.actor_init_std < 1.0:
            raise ConfigError(f"{source}.actor_init_std: must be in (0.1, 1.0), got {self.actor_init_std}")
        if self.seq_len < 2:
            raise ConfigError(f"{source}.seq_len: need at least 2 steps, got {self.seq_len}")
        if self.replay_capacity < self.seq_len * self.num_envs:
            raise ConfigError(f"{source}.replay_capacity: {self.replay_capacity} is smaller than one sequence per env "
                              f"({self.seq_len} x {self.num_envs})")
        return self


def world_model_config(cfg: TrainConfig):
    """The resolved WorldModelConfig: preset + overrides + kind from cfg.wm."""
    from ssm_mbrl_ros.core.config import from_dict, to_dict
    from ssm_mbrl_ros.world_models.config import WorldModelConfig, wm_preset

    base = to_dict(wm_preset(cfg.preset))
    unknown = sorted(set(cfg.world_model) - set(base))
    if unknown:
        raise ConfigError(f"train.world_model: unknown keys {unknown}; valid: {sorted(base)}")
    wm_cfg = from_dict(WorldModelConfig, {**base, **cfg.world_model, "kind": cfg.wm}, "train.world_model")
    wm_cfg.validate("train.world_model")
    return wm_cfg


def resolve_train_config(path: str | None, overrides=(), values: dict | None = None) -> "TrainConfig":
    """TrainConfig from defaults < YAML file < values (e.g. CLI flags) < KEY=VALUE overrides (type-checked; errors
    name the key). `ssm-mbrl train` and the store trainer node both resolve their config here."""
    from ssm_mbrl_ros.core.config import apply_overrides, from_dict, load_yaml

    data = load_yaml(path) if path else {}
    data.update({k: v for k, v in (values or {}).items() if v is not None})
    return from_dict(TrainConfig, apply_overrides(data, list(overrides)), path or "train")

