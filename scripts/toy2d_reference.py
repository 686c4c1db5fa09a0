"""An independent PyTorch implementation of the 2-D study protocol (REFERENCE.md 7), to check what the
protocol itself gives against our engine's `study transfer`. Run with Debian's torch/scipy:

    /usr/bin/python3 scripts/toy2d_reference.py [--steps 5000] [--seeds 0,1,2] [--source1 ring|mixture]
                                               [--json FILE]

Per seed: source1 (the wide ring: radius 20 + N(0, 4^2) along the radius) and source2 trained from
scratch, then finetune_source1, finetune_source2 and finetune_random on the target (raw G and D copied
from the source, fresh Adam states, a fresh EMA copied from G). Every 250 generator steps, step 0
included, the W1 (exact assignment, 2048 vs 2048) of the raw generator and of its EMA, both with
BatchNorm in eval mode; the EMA covers the whole state (running statistics included). Scores: headline =
min of the raw W1 over the evaluations incl. step 0 (the paper's), final and best-after-0 of raw and EMA.
At the start of each fine-tune: recall (k=5, 1000 vs 1000) and gradient similarity (ascent convention).
Same protocol as ours, independent random streams: compare distributions over seeds, not numbers.
"""

import os

# OpenBLAS's thread pool contends with itself on these 64-128 wide layers (15x slower per step on 2 busy
# cores); one thread each for BLAS and torch. Set before numpy/torch load the library.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import copy
import json
import math
import time

import numpy as np
import scipy.optimize
import scipy.spatial.distance
import torch
import torch.nn as nn
import torch.nn.functional as F

R, MODES, SIGMA = 20.0, 10, 0.25
CENTRES = np.array([[R * math.cos(2 * math.pi * i / MODES), R * math.sin(2 * math.pi * i / MODES)] for i in range(MODES)])


def target(n, rng):
    idx = rng.integers(0, MODES, n)
    return CENTRES[idx] + SIGMA * rng.standard_normal((n, 2))


def source1(n, rng):
    """The wide ring: angle uniform, radius 20 + N(0, 4^2) (noise along the radius only)."""
    t = 2 * math.pi * rng.random(n)
    r = R + 4.0 * rng.standard_normal(n)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def source1_mixture(n, rng):
    """The earlier, wrong reading (for comparison only): circle and N(0, 4^2 I), half each."""
    ring = rng.random(n) < 0.5
    t = 2 * math.pi * rng.random(n)
    circle = np.stack([R * np.cos(t), R * np.sin(t)], 1)
    gauss = 4.0 * rng.standard_normal((n, 2))
    return np.where(ring[:, None], circle, gauss)


def source2(n, rng):
    idx = rng.integers(0, 3, n)
    return CENTRES[idx] + 0.5 * rng.standard_normal((n, 2))


def make_g():
    dims = [64, 64, 128, 128, 128, 64, 2]
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers)


def make_d():
    dims = [2, 64, 128, 128, 64, 1]
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def w1(a, b):
    cost = scipy.spatial.distance.cdist(a, b)
    r, c = scipy.optimize.linear_sum_assignment(cost)
    return cost[r, c].mean()


def recall(real, fake, k=5):
    """k-NN manifold recall: the fraction of real points inside some fake point's k-NN ball."""
    ff = scipy.spatial.distance.cdist(fake, fake)
    radii = np.sort(ff, 1)[:, k]  # column 0 is the point itself
    rf = scipy.spatial.distance.cdist(real, fake)
    return float((rf <= radii[None, :]).any(1).mean())


def grad_similarity(G, D, n=1000):
    """Ascent convention: mean over non-zero gradients of cos(c(x) - x, grad_x softplus(-D(x)))."""
    G.eval()
    with torch.no_grad():
        x = G(torch.randn(n, 64))
    G.train()
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(F.softplus(-D(x)).sum(), [x])
    x, g = x.detach().numpy().astype(np.float64), g.numpy().astype(np.float64)
    c = CENTRES[np.argmin(scipy.spatial.distance.cdist(x, CENTRES), 1)]
    t = c - x
    ng, nt = np.linalg.norm(g, axis=1), np.linalg.norm(t, axis=1)
    ok = (ng > 0) & (nt > 0)
    cos = (g[ok] * t[ok]).sum(1) / (ng[ok] * nt[ok])
    return float(cos.mean()) if ok.any() else float("nan"), int((ng == 0).sum()), x


def scores(curve):
    raw = [w for _, w, _ in curve]
    ema = [e for _, _, e in curve]
    return {
        "headline": min(raw),
        "headlineStep": curve[int(np.argmin(raw))][0],
        "startRaw": raw[0],
        "finalRaw": raw[-1],
        "finalEma": ema[-1],
        "bestAfter0Raw": min(raw[1:]),
        "bestAfter0Ema": min(ema[1:]),
    }


def train(G, D, sample_real, steps, rng, eval_set):
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ema = copy.deepcopy(G)
    curve = []
    eval_z = torch.randn(2048, 64)

    def evaluate(step):
        ws = []
        for net in (G, ema):
            net.eval()  # BatchNorm on the running statistics
            with torch.no_grad():
                ws.append(w1(net(eval_z).numpy(), eval_set))
            net.train()
        if not all(math.isfinite(w) for w in ws):
            raise RuntimeError(f"W1 not finite at step {step}: {ws}")
        curve.append((step, ws[0], ws[1]))

    evaluate(0)
    for step in range(1, steps + 1):
        for _ in range(4):
            real = torch.tensor(sample_real(64, rng), dtype=torch.float32)
            with torch.no_grad():
                fake = G(torch.randn(64, 64))  # training mode: updates the running statistics
            loss_d = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
            optD.zero_grad()
            loss_d.backward()
            optD.step()
        loss_g = F.softplus(-D(G(torch.randn(64, 64)))).mean()
        optG.zero_grad()
        loss_g.backward()
        optG.step()
        with torch.no_grad():
            # EMA over the whole state: parameters and the floating-point BatchNorm buffers.
            for pe, p in zip(ema.parameters(), G.parameters()):
                pe.mul_(0.99).add_(p, alpha=0.01)
            for be, b in zip(ema.buffers(), G.buffers()):
                if be.dtype.is_floating_point:
                    be.mul_(0.99).add_(b, alpha=0.01)
                else:
                    be.copy_(b)
        if step % 250 == 0 or step == steps:
            evaluate(step)
    return curve


def run_seed(seed, steps, src1):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sets = {"source1": source1_mixture if src1 == "mixture" else source1, "source2": source2}
    evalT = target(2048, rng)
    recallT = target(1000, rng)
    out = {"seed": seed, "runs": {}}
    trained = {}
    for run in ["source1", "source2", "finetune_source1", "finetune_source2", "finetune_random"]:
        t0 = time.time()
        rec = {}
        if run in sets:
            G, D = make_g(), make_d()
            curve = train(G, D, sets[run], steps, rng, sets[run](2048, rng))
            trained[run] = (G, D)
        else:
            src = run.replace("finetune_", "")
            if src == "random":
                G, D = make_g(), make_d()
            else:
                G, D = copy.deepcopy(trained[src][0]), copy.deepcopy(trained[src][1])
            gs, zero, x = grad_similarity(G, D)
            rec.update(recall=recall(recallT, x), gradSimilarity=gs, zeroGradient=zero)
            curve = train(G, D, target, steps, rng, evalT)
        rec.update(scores(curve), curve=[list(c) for c in curve], wallS=round(time.time() - t0, 1))
        out["runs"][run] = rec
        sc = rec
        extra = f" recall {rec['recall']:.3f} gradSim {rec['gradSimilarity']:.3f}" if "recall" in rec else ""
        print(
            f"seed {seed} {run:18s} headline {sc['headline']:.3f} final raw {sc['finalRaw']:.3f} "
            f"EMA {sc['finalEma']:.3f} best>0 raw {sc['bestAfter0Raw']:.3f} EMA {sc['bestAfter0Ema']:.3f}"
            f"{extra} ({rec['wallS']:.0f} s)",
            flush=True,
        )
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--source1", default="ring", choices=["ring", "mixture"])
    ap.add_argument("--json", default=None, help="write the results here (atomically, after every seed)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    res = {
        "protocol": "REFERENCE.md 7 (PyTorch reference)",
        "steps": a.steps,
        "source1": a.source1,
        "gradSimilarityConvention": "ascent",
        "seeds": [],
    }
    for seed in [int(s) for s in a.seeds.split(",")]:
        res["seeds"].append(run_seed(seed, a.steps, a.source1))
        if a.json:
            tmp = a.json + ".tmp"
            with open(tmp, "w") as f:
                json.dump(res, f, indent=1)
            os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
