#!/usr/bin/python3
"""Golden values for tests/metrics_test.ts from independent implementations (numpy/scipy).

Run with Debian's interpreter: /usr/bin/python3 tests/golden/make_metrics_golden.py
Inputs are regenerated bit-identically on both sides from a shared seeded generator (mulberry32, as in
tests/harness.ts), so the golden files hold only case descriptions and results.
Writes tests/golden/metrics/{w1,fid,kid,pr}.json.
"""
import json
import os

import numpy as np
import scipy.linalg
from scipy.optimize import linear_sum_assignment

from golden_rng import mulberry32  # this folder: Python puts the script's own folder on sys.path

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics")


def gen_features(seed, n, d, scale, shift, latent):
    """Mirror of genFeatures in tests/metrics_test.ts: uniform noise + a rank-1 latent + a mean shift."""
    r = mulberry32(seed)
    c = [r() - 0.5 for _ in range(d)]
    x = np.empty((n, d), dtype=np.float32)
    for i in range(n):
        w = r() - 0.5
        for j in range(d):
            x[i, j] = scale * (r() - 0.5) + latent * w * c[j] + shift * c[j]
    return x


def gen_points(seed, n, shift):
    r = mulberry32(seed)
    return np.array([[r() + shift, r()] for _ in range(n)], dtype=np.float64)


def w1_cases():
    cases = []
    for name, n, sa, sb, shift in [("uniform", 300, 1, 2, 0.0), ("shifted", 300, 3, 4, 0.3), ("small", 37, 5, 6, 0.1)]:
        a, b = gen_points(sa, n, 0.0), gen_points(sb, n, shift)
        cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
        rows, cols = linear_sum_assignment(cost)
        cases.append({"name": name, "n": n, "seedA": sa, "seedB": sb, "shift": shift,
                      "w1": float(cost[rows, cols].mean())})
    return cases


def fid_scipy(mu1, s1, mu2, s2):
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fid_eigh(mu1, s1, mu2, s2):
    """Same quantity through the symmetric PSD form, as an internal cross-check of scipy's sqrtm."""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = r @ s2 @ r
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


FID_CASES = [
    # name, d, (seed, n, scale, shift, latent) for A and B
    ("fid5_big_trace", 64, (11, 3000, 6.0, 0.0, 4.0), (12, 3000, 6.0, 0.0, 4.0)),
    ("fid27", 64, (13, 400, 3.0, 0.0, 2.0), (14, 300, 2.5, 2.0, 3.0)),
    ("fid133", 64, (13, 400, 3.0, 0.0, 2.0), (14, 300, 2.0, 5.0, 3.0)),
    ("fid350", 128, (15, 500, 2.0, 0.0, 1.0), (16, 450, 3.0, 5.5, 6.0)),
    ("rank_deficient", 64, (17, 40, 3.0, 0.0, 2.0), (18, 50, 3.5, 2.0, 3.0)),
    ("rank_deficient_small_fid", 96, (19, 60, 6.0, 0.0, 4.0), (20, 70, 6.0, 0.0, 4.0)),
]


def fid_cases():
    cases = []
    for name, d, pa, pb in FID_CASES:
        xa = gen_features(pa[0], pa[1], d, *pa[2:]).astype(np.float64)
        xb = gen_features(pb[0], pb[1], d, *pb[2:]).astype(np.float64)
        case = {"name": name, "d": d, "a": list(pa), "b": list(pb)}
        for ddof in (0, 1):
            mu1, mu2 = xa.mean(0), xb.mean(0)
            s1, s2 = np.cov(xa, rowvar=False, ddof=ddof), np.cov(xb, rowvar=False, ddof=ddof)
            case[f"fid_scipy_ddof{ddof}"] = fid_scipy(mu1, s1, mu2, s2)
            case[f"fid_eigh_ddof{ddof}"] = fid_eigh(mu1, s1, mu2, s2)
            case[f"trace1_ddof{ddof}"] = float(np.trace(s1))
            case[f"trace2_ddof{ddof}"] = float(np.trace(s2))
        cases.append(case)
    return cases


def kid_full(x, y):
    """Unbiased MMD^2 with k(x,y) = (x.y/d + 1)^3 on all samples (one subset of size n)."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m**2)


KID_CASES = [
    ("close", 64, (31, 120, 1.0, 0.0, 1.0), (32, 120, 1.0, 0.2, 1.2)),
    ("far", 37, (33, 90, 1.0, 0.0, 0.5), (34, 90, 2.0, 1.5, 2.0)),
]


def kid_cases():
    cases = []
    for name, d, pa, pb in KID_CASES:
        xa = gen_features(pa[0], pa[1], d, *pa[2:]).astype(np.float64)
        xb = gen_features(pb[0], pb[1], d, *pb[2:]).astype(np.float64)
        cases.append({"name": name, "d": d, "a": list(pa), "b": list(pb), "kid": kid_full(xa, xb)})
    return cases


def pr_stats(ref, probe, k):
    """Improved precision (share of probes inside the reference manifold) and realism scores."""
    dref = ((ref[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
    radii = np.sqrt(np.sort(dref, axis=1)[:, k])  # index 0 is the point itself
    dist = np.sqrt(((probe[:, None, :] - ref[None, :, :]) ** 2).sum(-1))
    inside = (dist <= radii[None, :]).any(1)
    realism = (radii[None, :] / (dist + 1e-5)).max(1)
    return float(inside.mean()), realism


PR_CASES = [
    ("k3", 3, 20, (41, 150, 1.0, 0.0, 1.0), (42, 130, 1.0, 0.3, 2.0)),
    ("k5", 5, 13, (43, 77, 1.0, 0.0, 1.0), (44, 91, 1.5, 0.0, 0.5)),
]


def pr_cases():
    cases = []
    for name, k, d, pa, pb in PR_CASES:
        real = gen_features(pa[0], pa[1], d, *pa[2:]).astype(np.float64)
        fake = gen_features(pb[0], pb[1], d, *pb[2:]).astype(np.float64)
        precision, realism = pr_stats(real, fake, k)
        recall, _ = pr_stats(fake, real, k)
        cases.append({"name": name, "k": k, "d": d, "real": list(pa), "fake": list(pb),
                      "precision": precision, "recall": recall, "realism": [float(v) for v in realism]})
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, fn in [("w1", w1_cases), ("fid", fid_cases), ("kid", kid_cases), ("pr", pr_cases)]:
        cases = fn()
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump({"generator": "tests/golden/make_metrics_golden.py", "numpy": np.__version__,
                       "cases": cases}, f, indent=1)
        print(name, json.dumps(cases)[:2000])


if __name__ == "__main__":
    main()
