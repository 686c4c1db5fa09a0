"""CPU peers for the metric rows of bench/cases_metrics.ts, called from torch_cpu.py lambdas as
`__import__('metrics_peer').NAME(...)` (torch_cpu.py's folder is on sys.path when it runs as a script).

Each function takes the case's input tensors (seeded uniform [-1, 1) floats, the very numbers our engine
gets) and applies the same deterministic transforms as the TypeScript side, so the results are comparable.
"""

import json
import os

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

_fid_stats = {}


def fid_second_features(b):
    """Second feature set of the FID rows: column j scaled by 1 + (j % 4) / 2, shifted by 0.25 (exact in f32)."""
    d = b.shape[1]
    scale = 1.0 + (torch.arange(d) % 4).to(torch.float32) * 0.5
    return b * scale + 0.25


def _stats(x):
    x = x.cpu().numpy().astype(np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)  # ddof 1, as statsFromFeatures


def fid_scipy(a, b):
    """FID between features a and transformed b, pytorch-fid style (scipy.linalg.sqrtm of S1 S2, float64).

    The statistics are computed once per input pair (cached): the timed part is FID-from-statistics,
    as on our side (metrics/fid.ts fidFromStats)."""
    key = (id(a), id(b))
    if key not in _fid_stats:
        _fid_stats[key] = (_stats(a), _stats(fid_second_features(b)))
    (mu1, s1), (mu2, s2) = _fid_stats[key]
    try:
        covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    except TypeError:  # scipy >= 1.16 dropped disp and returns the root alone
        covmean = scipy.linalg.sqrtm(s1.dot(s2))
    covmean = covmean.real
    diff = mu1 - mu2
    fid = diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return torch.tensor([fid], dtype=torch.float32)


def knn_kth_sq(x, k, block=1000):
    """Squared distance from each row to its k-th nearest other row: torch.cdist + kthvalue in row blocks."""
    n = x.shape[0]
    out = torch.empty(n)
    for i in range(0, n, block):
        j = min(n, i + block)
        d2 = torch.cdist(x[i:j], x).square_()
        rows = torch.arange(j - i)
        d2[rows, rows + i] = float("inf")  # exclude self by index, as kernels/knn.ts does
        out[i:j] = d2.kthvalue(k, dim=1).values
    return out


_MNIST_ASSET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../assets/mnist_features.safetensors")
_mnist_weights = None


def _read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if spec["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {spec['dtype']}, expected F32")
        lo, hi = spec["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + lo : 8 + n + hi], dtype=np.float32).copy()).reshape(
            spec["shape"]
        )
    return out


def mnist_features(x):
    """mnist-cnn-128 features (metrics/features/mnist_net.ts) of 32x32 gray images given as uniform [-1, 1):
    mapped to 0..255 as our case does, scaled back to [-1, 1], four 3x3 convs + ReLU, global mean pool."""
    global _mnist_weights
    if _mnist_weights is None:
        _mnist_weights = {k: v.to(x.device) for k, v in _read_safetensors(_MNIST_ASSET).items()}
    w = _mnist_weights
    h = ((x + 1.0) * 127.5) * (1.0 / 127.5) - 1.0
    for i, stride in enumerate((1, 2, 2, 2)):
        h = F.relu(F.conv2d(h, w[f"conv{i + 1}.weight"], w[f"conv{i + 1}.bias"], stride=stride, padding=1))
    return h.mean(dim=(2, 3))
