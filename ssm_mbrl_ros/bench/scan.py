"""One S5 layer's parallel scan against its own step loop (forward + backward ms); `python -m ssm_mbrl_ros.bench.scan`.
`ssm-mbrl bench wm` measures whole world-model and trainer updates."""
from __future__ import annotations

import time

import torch

from ssm_mbrl_ros.world_models.s5 import S5


def benchmark_scan_vs_loop(batch_size: int = 16, lengths=(64, 256), d_model: int = 256, d_state: int = 256,
                           repeats: int = 5, device=None, dtype=torch.float32) -> dict:
    """Forward+backward ms of one S5 layer, parallel scan vs Python step loop; fastest of `repeats` (not a test)."""
    layer = S5(d_model, d_state).to(device=device, dtype=dtype)
    result = {"scan_ms": {}, "loop_ms": {}, "speedup": {}}

    def loop(u, reset):
        state, ys = None, []
        for t in range(u.shape[1]):
            y, state = layer.step(u[:, t], state, reset[:, t])
            ys.append(y)
        return torch.stack(ys, 1)

    for T in lengths:
        u = torch.randn(batch_size, T, d_model, device=device, dtype=dtype)
        reset = torch.rand(batch_size, T, device=device) < 0.01
        for key, fn in (("scan_ms", lambda: layer(u, None, reset)[0]), ("loop_ms", lambda: loop(u, reset))):
            times = []
            for i in range(repeats + 1):  # first run is warm-up
                layer.zero_grad(set_to_none=True)
                if u.is_cuda:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                fn().square().mean().backward()
                if u.is_cuda:
                    torch.cuda.synchronize()
                if i:
                    times.append((time.perf_counter() - t0) * 1e3)
            result[key][str(T)] = min(times)  # the minimum is robust to other load on the machine
        result["speedup"][str(T)] = result["loop_ms"][str(T)] / result["scan_ms"][str(T)]
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(benchmark_scan_vs_loop(), indent=2))
