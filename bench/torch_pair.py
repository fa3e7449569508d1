"""PyTorch side of `npm run bench`, run in lockstep with ours: one forward per "run" line on stdin.

  /usr/bin/python3 bench/torch_pair.py SHARED_REFERENCE_DIR itm|mlm

Uses shared/reference/torch_forward.py (the plain-PyTorch BridgeTower checked against the fixtures) exactly as its
`time --config large` command does: random weights at bridgetower-large-itm-mlm-gaudi size, one 12-token text and
one 294x294 image, and the faster of its two thread settings (torch 1 thread + OpenBLAS's pool, or torch N threads +
OpenBLAS 1), chosen here on a warm-up and two timed runs of each. Prints one JSON line when ready, then one per run.
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402
import torch_forward as tf  # noqa: E402

task = sys.argv[2]
cfg = tf.large_config()
weights = tf.random_weights(cfg, heads=(task,), seed=0)
g = torch.Generator().manual_seed(1)
ids = torch.cat([torch.tensor([[0]]), torch.randint(4, 50000, (1, 10), generator=g), torch.tensor([[2]])], dim=1)
size = cfg["vision_config"]["image_size"]
pixels = torch.randn(1, 3, size, size, generator=g)


def once():
    t = time.perf_counter()
    with torch.inference_mode():
        base = tf.backbone(cfg, weights, ids, torch.ones_like(ids), pixels)
        tf.itm_head(weights, base) if task == "itm" else tf.mlm_head(cfg, weights, base)
    return time.perf_counter() - t


blas = tf.OpenBLAS()
n = len(os.sched_getaffinity(0))
settings = {"a": (1, blas.default), "b": (n, 1)}  # (torch threads, OpenBLAS threads), as torch_forward.py time


def use(setting):
    torch.set_num_threads(settings[setting][0])
    if blas.lib:
        blas.set(settings[setting][1])


trial = {}
for s in settings:
    use(s)
    once()
    trial[s] = statistics.median([once(), once()])
best = min(trial, key=trial.get)
use(best)
print(json.dumps({"ready": True, "setting": best, "torch_threads": settings[best][0],
                  "openblas_threads": settings[best][1], "trial_s": trial}), flush=True)
for line in sys.stdin:
    if line.strip() == "run":
        print(json.dumps({"s": once()}), flush=True)
