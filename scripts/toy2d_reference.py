"""An independent PyTorch implementation of the 2-D study protocol (REFERENCE.md 7), to check what the
protocol itself gives against our engine's `study transfer`. Run with Debian's torch/scipy:

    /usr/bin/python3 scripts/toy2d_reference.py [--steps 5000] [--seed 0] [--runs source2,source1,...]

Prints, per run, the EMA generator's W1 (exact assignment, 2048 vs 2048) every 250 generator steps.
Runs: source1 / source2 (trained from scratch on the source), then finetune_source1, finetune_source2
and finetune_random on the target (fresh Adam states, G and D copied from the source run).
"""

import argparse
import copy
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


def train(G, D, sample_real, steps, rng, eval_set):
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ema = copy.deepcopy(G)
    curve = []

    def evaluate(step):
        ema.train()  # batch statistics of the sampled batch, as the engine does
        with torch.no_grad():
            x = ema(torch.randn(2048, 64)).numpy()
        curve.append((step, w1(x, eval_set)))

    evaluate(0)
    for step in range(1, steps + 1):
        for _ in range(4):
            real = torch.tensor(sample_real(64, rng), dtype=torch.float32)
            with torch.no_grad():
                fake = G(torch.randn(64, 64))
            loss_d = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
            optD.zero_grad()
            loss_d.backward()
            optD.step()
        loss_g = F.softplus(-D(G(torch.randn(64, 64)))).mean()
        optG.zero_grad()
        loss_g.backward()
        optG.step()
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), G.parameters()):
                pe.mul_(0.99).add_(p, alpha=0.01)
            for be, b in zip(ema.buffers(), G.buffers()):
                be.copy_(b)
        if step % 250 == 0:
            evaluate(step)
    return curve


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", default="source1,source2,finetune_source1,finetune_source2,finetune_random")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    sets = {"source1": source1, "source2": source2}
    trained = {}
    evalT = target(2048, rng)
    for run in a.runs.split(","):
        t0 = time.time()
        if run in sets:
            G, D = make_g(), make_d()
            curve = train(G, D, sets[run], a.steps, rng, sets[run](2048, rng))
            trained[run] = (G, D)
        else:
            src = run.replace("finetune_", "")
            if src == "random":
                G, D = make_g(), make_d()
            else:
                if src not in trained:
                    G0, D0 = make_g(), make_d()
                    train(G0, D0, sets[src], a.steps, rng, sets[src](2048, rng))
                    trained[src] = (G0, D0)
                G, D = copy.deepcopy(trained[src][0]), copy.deepcopy(trained[src][1])
            curve = train(G, D, target, a.steps, rng, evalT)
        best = min(w for s, w in curve[1:])
        print(
            f"{run:18s} final W1 {curve[-1][1]:.3f} best {best:.3f} ({time.time() - t0:.0f} s) curve "
            + " ".join(f"{w:.2f}" for s, w in curve[:: max(1, len(curve) // 10)]),
            flush=True,
        )


if __name__ == "__main__":
    main()
