"""All GPU measurements of docs/speed.md in one run -> $OUT/bench_wm_cuda.json.

bench_wm on cuda for the small and default presets, eager and compiled (inductor, and reduce-overhead: inductor plus
CUDA graphs), then a 2-minute `ssm-mbrl train --device cuda` per compile mode for updates per second. Each case is
guarded, so one failing mode still leaves the others' numbers; the JSON is rewritten after every case.
"""
import json
import os
import subprocess
import sys
import time
import traceback

import torch

from ssm_mbrl_ros.bench.wm import bench_wm
from ssm_mbrl_ros.world_models.config import wm_preset

OUT = os.environ["OUT"]
out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}


def save():
    with open(os.path.join(OUT, "bench_wm_cuda.json"), "w") as f:
        json.dump(out, f, indent=1)


for preset in ("default", "small"):
    for mode in ("reduce-overhead", "default"):
        t0 = time.time()
        try:
            out[f"{preset}/{mode}"] = bench_wm(batch=16, lengths=(64, 256), cfg=wm_preset(preset), device="cuda",
                                               repeats=5, compile_mode=mode)
        except Exception:  # noqa: BLE001 - record and go on to the next case
            out[f"{preset}/{mode}"] = {"error": traceback.format_exc()[-2000:]}
        print(preset, mode, round(time.time() - t0), "s", flush=True)
        save()
for mode in ("off", "reduce-overhead"):
    logdir = os.path.join(OUT, f"train_{mode}")
    cmd = [sys.executable, "-m", "ssm_mbrl_ros.cli", "train", "--task", "hover", "--wm", "s5", "--device", "cuda",
           "--minutes", "2", "--logdir", logdir, "--set", f"compile={mode}", "--set", "eval_every_min=5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    tail = proc.stdout.replace("\r", "\n").strip().splitlines()[-3:]
    out[f"train_2min/{mode}"] = {"rc": proc.returncode, "tail": tail, "stderr": proc.stderr[-1500:]}
    print(mode, tail, flush=True)
    save()
keys = ("s5_ms", "rssm_ms", "speedup", "s5_compiled_ms", "rssm_compiled_ms", "speedup_compiled",
        "full_update_ms", "full_update_compiled_ms", "full_update_compiled_speedup", "compile_s")
print(json.dumps({k: {kk: v.get(kk) for kk in keys} for k, v in out.items() if isinstance(v, dict) and "s5_ms" in v},
                 indent=1))
