"""All GPU measurements of docs/speed.md in one run: bench_wm on cuda for the small and default presets -> $OUT/bench_wm_cuda.json."""
import json, os, time
import torch
from ssm_mbrl_ros.bench.wm import bench_wm
from ssm_mbrl_ros.world_models.config import wm_preset
out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
for preset in ("small", "default"):
    t0 = time.time()
    out[preset] = bench_wm(batch=16, lengths=(64, 256), cfg=wm_preset(preset), device="cuda", repeats=5)
    print(preset, round(time.time() - t0), "s", flush=True)
    json.dump(out, open(os.environ["OUT"] + "/bench_wm_cuda.json", "w"), indent=1)
keys = ("s5_ms", "rssm_ms", "speedup", "full_update_ms", "full_update_speedup", "full_update_split_ms")
print(json.dumps({p: {k: out[p][k] for k in keys} for p in ("small", "default")}, indent=1))
