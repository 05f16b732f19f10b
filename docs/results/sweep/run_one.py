"""One sweep run: `python run_one.py NAME MINUTES [KEY=VALUE ...]` trains with base.yaml + overrides into runs/NAME."""
import os
import sys
import torch
from ssm_mbrl_ros.train.config import resolve_train_config
from ssm_mbrl_ros.train.trainer import Trainer
name, minutes, *sets = sys.argv[1:]
torch.set_num_threads(1)
cfg = resolve_train_config(os.path.join(os.path.dirname(__file__), "base.yaml"), sets, {"minutes": float(minutes)})
print(name, Trainer(cfg, f"runs/{name}", progress=False).run().get("final_eval"), flush=True)
