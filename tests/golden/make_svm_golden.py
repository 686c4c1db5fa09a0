#!/usr/bin/python3
"""Golden values for gan/edit/svm.ts from an independent float64 solver.

The same problem as svm.ts (hinge loss, bias as the weight of a constant feature B = 1, so the dual is
min 1/2 a'Qa - sum a with 0 <= a <= C), solved differently: scipy's L-BFGS-B on the dual, then polished
by an exact linear solve on the free set (0 < a < C) with the bounded variables held fixed.
The unique primal solution w~ = sum a_i y_i x~_i is the golden value. Run:
  /usr/bin/python3 tests/golden/make_svm_golden.py   (writes tests/golden/edit/svm.json)
"""
import json
import os

import numpy as np
from scipy.optimize import minimize


def solve(x, y, C):
    xt = np.hstack([x, np.ones((len(x), 1))])
    z = xt * y[:, None]
    Q = z @ z.T
    f = lambda a: (0.5 * a @ Q @ a - a.sum(), Q @ a - 1)
    r = minimize(f, np.zeros(len(y)), jac=True, method="L-BFGS-B", bounds=[(0, C)] * len(y),
                 options={"ftol": 1e-16, "gtol": 1e-13, "maxiter": 100000, "maxcor": 50})
    a = np.clip(r.x, 0, C)
    for _ in range(20):  # polish: fix the bounded set, solve the free set exactly, repeat until stable
        eps = 1e-7 * C
        free = (a > eps) & (a < C - eps)
        a[a <= eps] = 0
        a[a >= C - eps] = C
        if free.any():
            rhs = 1 - Q[np.ix_(free, ~free)] @ a[~free]
            a[free] = np.linalg.lstsq(Q[np.ix_(free, free)], rhs, rcond=None)[0]
        g = Q @ a - 1
        viol = np.concatenate([-np.minimum(g[a == 0], 0), np.maximum(g[a == C], 0), np.abs(g[free])])
        if viol.max(initial=0) < 1e-12 and (a >= 0).all() and (a <= C).all():
            break
    wt = z.T @ a
    m = y * (xt @ wt)
    primal = 0.5 * wt @ wt + C * np.maximum(0, 1 - m).sum()
    dual = a.sum() - 0.5 * wt @ wt
    return wt[:-1], wt[-1], primal, dual, float(viol.max(initial=0))


def case(name, n, d, sep, C, seed):
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    x = rng.normal(size=(n, d)) + sep * y[:, None] * direction[None, :] + 0.3
    w, b, primal, dual, viol = solve(x, y, C)
    margins = y * (x @ w + b)
    print(f"{name}: n={n} d={d} C={C} min margin {margins.min():.3f} gap {primal - dual:.2e} kkt {viol:.1e}")
    return {"name": name, "n": n, "d": d, "C": C, "x": x.ravel().tolist(), "y": y.tolist(),
            "w": w.tolist(), "b": float(b), "primal": float(primal), "separable": bool(margins.min() > 0)}


cases = [
    case("separable", 40, 5, 4.0, 10.0, 1),  # wide gap: hard margin, few support vectors
    case("overlapping", 60, 4, 0.7, 1.0, 2),  # classes overlap: many alphas at C
    case("overlapping-small-C", 50, 6, 0.5, 0.05, 3),
]
out = os.path.join(os.path.dirname(__file__), "edit", "svm.json")
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump({"made_by": "tests/golden/make_svm_golden.py", "cases": cases}, f)
print("wrote", out)
