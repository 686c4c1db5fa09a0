"""PyTorch peer for bench/main.ts (CPU by default, CUDA with "device": "cuda"): one process for the whole run.

stdin: JSON {"threads": 2, "quick": false, "device": "cpu", "cases": [{"name": str, "expr": "lambda a, b: a @ b",
        "chain": false, "inputs": [{"path": "/tmp/x.f32", "shape": [512, 512]}], "out": "/tmp/y.f32"}]}
stdout: JSON {"torch": version, "threads": n, "results": [{"name", "seconds", "samples",
        "runsPerSample"} or {"name", "error"}]}

Timing mirrors timeEngine in bench/harness.ts: the first call (warm-up, excluded) writes the result
for the accuracy check; untimed batches grow N until N calls last about the target; the reported time
is the median over samples of (batch time / N). On CUDA every timed batch ends with a synchronize, the
way our engine's batches end with a wait for the queue.
"""

import json
import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

SLOW_S = 3.0


DEVICE = "cpu"


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def load(spec):
    data = np.fromfile(spec["path"], dtype=np.float32)
    return torch.from_numpy(data).reshape(spec["shape"]).to(DEVICE)


def time_case(case, quick):
    fn = eval(case["expr"], {"torch": torch, "F": F})  # expressions come from bench/cases.ts
    inputs = [load(s) for s in case["inputs"]]
    chain = case.get("chain", False)
    sync()
    t0 = time.perf_counter()
    y = fn(*inputs)
    y.contiguous().cpu().numpy().astype(np.float32).tofile(case["out"])
    first = time.perf_counter() - t0

    def run_batch(n, y):
        sync()
        t0 = time.perf_counter()
        for _ in range(n):
            y = fn(y, *inputs[1:]) if chain else fn(*inputs)
        sync()
        return time.perf_counter() - t0, y

    target, max_n = (0.1, 2000) if quick else (0.25, 5000)
    n, single = 1, first
    if first < 4 * target:
        while True:
            t, y = run_batch(n, y)
            single = t / n
            if t >= target or n >= max_n:
                break
            n = min(max_n, n * min(16, max(2, math.ceil(target / max(t, 1e-5)))))
    if quick:
        min_samples, budget = (1 if single > 1.0 else 3), 0.0
    else:
        min_samples, budget = (2, 0.0) if single > SLOW_S else (5, 1.5)
    samples = []
    start = time.perf_counter()
    while len(samples) < min_samples or time.perf_counter() - start < budget:
        t, y = run_batch(n, y)
        samples.append(t / n)
    return {"seconds": statistics.median(samples), "samples": len(samples), "runsPerSample": n}


def main():
    global DEVICE
    request = json.load(sys.stdin)
    threads = int(request.get("threads", 2))
    torch.set_num_threads(threads)
    DEVICE = request.get("device", "cpu")
    if DEVICE == "cuda":
        # fp32 as our engine computes it: no TF32 in matmul or cuDNN convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        torch.set_default_device("cuda")  # the training-step peer builds its networks itself
    results = []
    with torch.no_grad():
        for case in request["cases"]:
            try:
                results.append({"name": case["name"], **time_case(case, request.get("quick", False))})
            except Exception as e:  # one broken case must not hide the others
                results.append({"name": case["name"], "error": f"{type(e).__name__}: {e}"})
    device = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu"
    json.dump(
        {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": device, "results": results},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
