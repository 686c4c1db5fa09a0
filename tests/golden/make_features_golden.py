#!/usr/bin/python3
"""Golden files for tests/features_test.ts: reduced-width feature networks in PyTorch.

Run with Debian's interpreter:  /usr/bin/python3 tests/golden/make_features_golden.py
Writes tests/golden/features/:
  inception_w32.pth        FID Inception-v3 (TF 2015-12-05 variant), every channel count divided by 32
                           (rounded up), random weights in pytorch-fid's state-dict layout (legacy torch.save)
  inception_w32_sga.pt     the same network as a TorchScript archive with SGA's tensor names
                           (layers.conv.weight/beta/mean/var, ..., output.weight), batch-norm scale folded
  vgg16_w64.pth            VGG16 with channels and fc width divided by 64, torchvision layout (zip torch.save)
  expected.json            pool3 / fc2 features of two test images, and TF1 bilinear resize cases
With --full DIR it also writes a full-width random Inception (pytorch-fid layout, ~95 MB) and its expected
features into DIR, for a manual full-size check; nothing from there is committed.

The networks are this script's own re-implementation from the architecture description (branch layout,
padding, pools), not pytorch-fid's or torchvision's code. Batch-norm statistics are calibrated on the test
images so that activations stay well scaled through the depth of the reduced network.
Test images are regenerated bit-identically on both sides from mulberry32 (as in tests/harness.ts).
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from golden_rng import mulberry32  # this folder: Python puts the script's own folder on sys.path

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "features")


def test_images(seed, n, c, h, w):
    """Mirror of testImages in features_test.ts: a diagonal ramp plus seeded noise, integers 0..255."""
    r = mulberry32(seed)
    x = np.empty((n, c, h, w), dtype=np.float32)
    for i in range(n):
        for ch in range(c):
            for y in range(h):
                for xx in range(w):
                    x[i, ch, y, xx] = (xx * 5 + y * 3 + ch * 70 + i * 40 + int(r() * 96)) % 256
    return x


def tf1_resize(x, out_h, out_w):
    """tf.image.resize_bilinear (align_corners=False, half_pixel_centers=False) in float32, as TF computes it:
    source = dst * (in/out), top = tl + (tr - tl) * dx, out = top + (bottom - top) * dy."""
    x = np.asarray(x, dtype=np.float32)
    n, c, h, w = x.shape
    sy, sx = np.float32(h / out_h), np.float32(w / out_w)

    def axis(out_len, in_len, scale):
        src = np.arange(out_len, dtype=np.float32) * scale
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, in_len - 1)
        return lo, hi, (src - lo).astype(np.float32)

    y0, y1, dy = axis(out_h, h, sy)
    x0, x1, dx = axis(out_w, w, sx)
    tl, tr = x[:, :, y0][:, :, :, x0], x[:, :, y0][:, :, :, x1]
    bl, br = x[:, :, y1][:, :, :, x0], x[:, :, y1][:, :, :, x1]
    top = tl + (tr - tl) * dx
    bottom = bl + (br - bl) * dx
    return top + (bottom - top) * dy[:, None]


# ---- Inception-v3, TF 2015-12-05 variant ----

class ConvBN(nn.Module):
    """conv (no bias) -> batch norm (eps 1e-3) -> ReLU, with pytorch-fid's `.conv` / `.bn` names."""

    def __init__(self, cin, cout, k, stride=1, pad=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=None)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg_same(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class MixedA(nn.Module):
    def __init__(self, c, cin, pool_features):
        super().__init__()
        self.branch1x1 = ConvBN(cin, c(64), 1)
        self.branch5x5_1 = ConvBN(cin, c(48), 1)
        self.branch5x5_2 = ConvBN(c(48), c(64), 5, pad=2)
        self.branch3x3dbl_1 = ConvBN(cin, c(64), 1)
        self.branch3x3dbl_2 = ConvBN(c(64), c(96), 3, pad=1)
        self.branch3x3dbl_3 = ConvBN(c(96), c(96), 3, pad=1)
        self.branch_pool = ConvBN(cin, c(pool_features), 1)
        self.out = c(64) * 2 + c(96) + c(pool_features)

    def forward(self, x):
        five = self.branch5x5_2(self.branch5x5_1(x))
        dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), five, dbl, self.branch_pool(avg_same(x))], 1)


class MixedB(nn.Module):
    def __init__(self, c, cin):
        super().__init__()
        self.branch3x3 = ConvBN(cin, c(384), 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, c(64), 1)
        self.branch3x3dbl_2 = ConvBN(c(64), c(96), 3, pad=1)
        self.branch3x3dbl_3 = ConvBN(c(96), c(96), 3, stride=2)
        self.out = c(384) + c(96) + cin

    def forward(self, x):
        dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), dbl, F.max_pool2d(x, 3, stride=2)], 1)


class MixedC(nn.Module):
    def __init__(self, c, cin, c7):
        super().__init__()
        self.branch1x1 = ConvBN(cin, c(192), 1)
        self.branch7x7_1 = ConvBN(cin, c(c7), 1)
        self.branch7x7_2 = ConvBN(c(c7), c(c7), (1, 7), pad=(0, 3))
        self.branch7x7_3 = ConvBN(c(c7), c(192), (7, 1), pad=(3, 0))
        self.branch7x7dbl_1 = ConvBN(cin, c(c7), 1)
        self.branch7x7dbl_2 = ConvBN(c(c7), c(c7), (7, 1), pad=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c(c7), c(c7), (1, 7), pad=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c(c7), c(c7), (7, 1), pad=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c(c7), c(192), (1, 7), pad=(0, 3))
        self.branch_pool = ConvBN(cin, c(192), 1)
        self.out = 4 * c(192)

    def forward(self, x):
        s = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), s, d, self.branch_pool(avg_same(x))], 1)


class MixedD(nn.Module):
    def __init__(self, c, cin):
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, c(192), 1)
        self.branch3x3_2 = ConvBN(c(192), c(320), 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, c(192), 1)
        self.branch7x7x3_2 = ConvBN(c(192), c(192), (1, 7), pad=(0, 3))
        self.branch7x7x3_3 = ConvBN(c(192), c(192), (7, 1), pad=(3, 0))
        self.branch7x7x3_4 = ConvBN(c(192), c(192), 3, stride=2)
        self.out = c(320) + c(192) + cin

    def forward(self, x):
        t = self.branch3x3_2(self.branch3x3_1(x))
        s = x
        for i in range(1, 5):
            s = getattr(self, f"branch7x7x3_{i}")(s)
        return torch.cat([t, s, F.max_pool2d(x, 3, stride=2)], 1)


class MixedE(nn.Module):
    def __init__(self, c, cin, pool):
        super().__init__()
        self.pool = pool
        self.branch1x1 = ConvBN(cin, c(320), 1)
        self.branch3x3_1 = ConvBN(cin, c(384), 1)
        self.branch3x3_2a = ConvBN(c(384), c(384), (1, 3), pad=(0, 1))
        self.branch3x3_2b = ConvBN(c(384), c(384), (3, 1), pad=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, c(448), 1)
        self.branch3x3dbl_2 = ConvBN(c(448), c(384), 3, pad=1)
        self.branch3x3dbl_3a = ConvBN(c(384), c(384), (1, 3), pad=(0, 1))
        self.branch3x3dbl_3b = ConvBN(c(384), c(384), (3, 1), pad=(1, 0))
        self.branch_pool = ConvBN(cin, c(192), 1)
        self.out = c(320) + 4 * c(384) + c(192)

    def forward(self, x):
        t = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        p = avg_same(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([
            self.branch1x1(x), self.branch3x3_2a(t), self.branch3x3_2b(t),
            self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(p)], 1)


class FidInception(nn.Module):
    def __init__(self, div):
        super().__init__()

        def c(n):
            return -(-n // div)

        self.Conv2d_1a_3x3 = ConvBN(3, c(32), 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(c(32), c(32), 3)
        self.Conv2d_2b_3x3 = ConvBN(c(32), c(64), 3, pad=1)
        self.Conv2d_3b_1x1 = ConvBN(c(64), c(80), 1)
        self.Conv2d_4a_3x3 = ConvBN(c(80), c(192), 3)
        ch = c(192)
        blocks = [
            ("Mixed_5b", lambda i: MixedA(c, i, 32)), ("Mixed_5c", lambda i: MixedA(c, i, 64)),
            ("Mixed_5d", lambda i: MixedA(c, i, 64)), ("Mixed_6a", lambda i: MixedB(c, i)),
            ("Mixed_6b", lambda i: MixedC(c, i, 128)), ("Mixed_6c", lambda i: MixedC(c, i, 160)),
            ("Mixed_6d", lambda i: MixedC(c, i, 160)), ("Mixed_6e", lambda i: MixedC(c, i, 192)),
            ("Mixed_7a", lambda i: MixedD(c, i)), ("Mixed_7b", lambda i: MixedE(c, i, "avg")),
            ("Mixed_7c", lambda i: MixedE(c, i, "max")),
        ]
        self.block_names = [n for n, _ in blocks]
        for name, make in blocks:
            m = make(ch)
            setattr(self, name, m)
            ch = m.out
        self.fc = nn.Linear(ch, c(1008))
        self.dim = ch

    def forward(self, images):
        """pool3 features of 0..255 NCHW images (1 or 3 channels)."""
        x = torch.from_numpy(tf1_resize(images.numpy(), 299, 299))
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = (x - 128) / 128
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in self.block_names:
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))


def randomize_and_calibrate(model, images, gen):
    """Random BN scale/shift, then running statistics from one training-mode pass over the test images."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=gen) * 0.8 + 0.6)
                m.bias.copy_(torch.rand(m.num_features, generator=gen) * 0.6 - 0.3)
                m.reset_running_stats()
        model.train()
        model(images)
        model.eval()


# SGA TorchScript names: stem convs, then mixed..mixed_10 with tower / tower_1 / tower_2 sub-modules.
SGA_STEM = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2",
            "Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4"}
SGA_BLOCK = {"Mixed_5b": "mixed", "Mixed_5c": "mixed_1", "Mixed_5d": "mixed_2", "Mixed_6a": "mixed_3",
             "Mixed_6b": "mixed_4", "Mixed_6c": "mixed_5", "Mixed_6d": "mixed_6", "Mixed_6e": "mixed_7",
             "Mixed_7a": "mixed_8", "Mixed_7b": "mixed_9", "Mixed_7c": "mixed_10"}
SGA_BRANCH = {
    "A": {"branch1x1": "conv", "branch5x5_1": "tower.conv", "branch5x5_2": "tower.conv_1",
          "branch3x3dbl_1": "tower_1.conv", "branch3x3dbl_2": "tower_1.conv_1",
          "branch3x3dbl_3": "tower_1.conv_2", "branch_pool": "tower_2.conv"},
    "B": {"branch3x3": "conv", "branch3x3dbl_1": "tower.conv", "branch3x3dbl_2": "tower.conv_1",
          "branch3x3dbl_3": "tower.conv_2"},
    "C": {"branch1x1": "conv", "branch7x7_1": "tower.conv", "branch7x7_2": "tower.conv_1",
          "branch7x7_3": "tower.conv_2", "branch7x7dbl_1": "tower_1.conv", "branch7x7dbl_2": "tower_1.conv_1",
          "branch7x7dbl_3": "tower_1.conv_2", "branch7x7dbl_4": "tower_1.conv_3",
          "branch7x7dbl_5": "tower_1.conv_4", "branch_pool": "tower_2.conv"},
    "D": {"branch3x3_1": "tower.conv", "branch3x3_2": "tower.conv_1", "branch7x7x3_1": "tower_1.conv",
          "branch7x7x3_2": "tower_1.conv_1", "branch7x7x3_3": "tower_1.conv_2", "branch7x7x3_4": "tower_1.conv_3"},
    "E": {"branch1x1": "conv", "branch3x3_1": "tower_conv", "branch3x3_2a": "tower_mixed_conv",
          "branch3x3_2b": "tower_mixed_conv_1", "branch3x3dbl_1": "tower_1_conv",
          "branch3x3dbl_2": "tower_1_conv_1", "branch3x3dbl_3a": "tower_1_mixed_conv",
          "branch3x3dbl_3b": "tower_1_mixed_conv_1", "branch_pool": "tower_2_conv"},
}


class Holder(nn.Module):
    """A named container, so that TorchScript stores tensors under dotted attribute paths."""

    def forward(self, x):
        return x


class SgaConv(nn.Module):
    """SGA's conv unit: weight, beta, mean, var (the TF graph's batch norm has no scale)."""

    def __init__(self, unit):
        super().__init__()
        g = unit.bn.weight.detach()
        # gamma (x - m) / s + b = (gamma x - gamma m) / s + b: fold gamma into the weight and mean.
        self.weight = nn.Parameter(unit.conv.weight.detach() * g[:, None, None, None])
        self.register_buffer("beta", unit.bn.bias.detach().clone())
        self.register_buffer("mean", unit.bn.running_mean * g)
        self.register_buffer("var", unit.bn.running_var.clone())

    def forward(self, x):
        return x


def to_sga(model):
    root = Holder()
    layers = Holder()
    root.add_module("layers", layers)
    for fid, sga in SGA_STEM.items():
        layers.add_module(sga, SgaConv(getattr(model, fid)))
    kinds = {"Mixed_5b": "A", "Mixed_5c": "A", "Mixed_5d": "A", "Mixed_6a": "B", "Mixed_6b": "C",
             "Mixed_6c": "C", "Mixed_6d": "C", "Mixed_6e": "C", "Mixed_7a": "D", "Mixed_7b": "E", "Mixed_7c": "E"}
    for fid, sga in SGA_BLOCK.items():
        block = Holder()
        layers.add_module(sga, block)
        for branch, path in SGA_BRANCH[kinds[fid]].items():
            parent = block
            parts = path.split(".")
            for p in parts[:-1]:
                if not hasattr(parent, p):
                    parent.add_module(p, Holder())
                parent = getattr(parent, p)
            parent.add_module(parts[-1], SgaConv(getattr(getattr(model, fid), branch)))
    out = nn.Linear(model.fc.in_features, model.fc.out_features)
    out.load_state_dict(model.fc.state_dict())
    root.add_module("output", out)
    return torch.jit.script(root)


# ---- VGG16 (torchvision layout) ----

VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class Vgg16Fc2(nn.Module):
    def __init__(self, div):
        super().__init__()

        def c(n):
            return -(-n // div)

        layers, cin = [], 3
        for v in VGG_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, c(v), 3, padding=1), nn.ReLU()]
                cin = c(v)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(cin * 49, c(4096)), nn.ReLU(), nn.Dropout(),
            nn.Linear(c(4096), c(4096)), nn.ReLU(), nn.Dropout(), nn.Linear(c(4096), 1000))

    def forward(self, images, calibrate=False, gen=None):
        x = torch.from_numpy(tf1_resize(images.numpy(), 224, 224))
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        x = (x / 255 - mean) / std
        modules = list(self.features) + [None] + list(self.classifier)[:5]
        for m in modules:
            if m is None:
                x = F.adaptive_avg_pool2d(x, 7).flatten(1)
                continue
            if calibrate and isinstance(m, (nn.Conv2d, nn.Linear)):
                # One scale and shift per layer (not per unit: the batch holds only two images) to unit
                # pre-activation std, plus a random per-unit offset so that most units are active.
                with torch.no_grad():
                    y = m(x)
                    s = float(y.std()) + 1e-6
                    m.weight.div_(s)
                    m.bias.sub_(float(y.mean())).div_(s)
                    m.bias.add_(torch.rand(m.bias.shape, generator=gen) * 0.8)
            x = m(x)
        return x


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    images = torch.from_numpy(test_images(7, 2, 3, 37, 45))
    expected = {"images": {"seed": 7, "shape": [2, 3, 37, 45]}}

    # Inception, width / 32.
    inc = FidInception(32)
    randomize_and_calibrate(inc, images, gen)
    with torch.no_grad():
        inc.fc.weight.normal_(0, 0.05, generator=gen)
        feats = inc(images)
    torch.save(inc.state_dict(), os.path.join(OUT, "inception_w32.pth"), _use_new_zipfile_serialization=False)
    to_sga(inc).save(os.path.join(OUT, "inception_w32_sga.pt"))
    expected["inception_w32"] = {"divisor": 32, "dim": inc.dim, "features": feats.flatten().tolist()}

    # VGG16, width / 64.
    vgg = Vgg16Fc2(64).eval()
    with torch.no_grad():
        vgg(images, calibrate=True, gen=gen)
        feats = vgg(images)
    state = vgg.state_dict()
    del state["classifier.6.weight"], state["classifier.6.bias"]  # unused by fc2 features; 1000 x 64 is big
    torch.save(state, os.path.join(OUT, "vgg16_w64.pth"))
    expected["vgg16_w64"] = {"divisor": 64, "dim": feats.shape[1], "features": feats.flatten().tolist()}

    # Resize cases: small planes, upsampling and downsampling, non-square.
    cases = []
    for seed, (h, w, oh, ow) in enumerate([(6, 7, 13, 5), (13, 11, 4, 6), (37, 45, 299, 299)]):
        x = test_images(100 + seed, 1, 1, h, w)
        y = tf1_resize(x, oh, ow)
        case = {"seed": 100 + seed, "in": [h, w], "out": [oh, ow]}
        if oh * ow <= 100:
            case["values"] = y.flatten().tolist()
        else:  # large output: a few probes and the sum
            idx = [0, 1, ow - 1, ow * 7 + 3, oh * ow // 2 + 5, oh * ow - 1]
            case["probes"] = {str(i): float(y.flatten()[i]) for i in idx}
            case["sum"] = float(y.astype(np.float64).sum())
        cases.append(case)
    expected["resize"] = cases
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f)
    print("wrote", OUT)

    if "--full" in sys.argv:
        full_dir = sys.argv[sys.argv.index("--full") + 1]
        os.makedirs(full_dir, exist_ok=True)
        full = FidInception(1)
        randomize_and_calibrate(full, images, gen)
        with torch.no_grad():
            feats = full(images)
        torch.save(full.state_dict(), os.path.join(full_dir, "inception_full.pth"))
        with open(os.path.join(full_dir, "inception_full.json"), "w") as f:
            json.dump({"dim": full.dim, "features": feats.flatten().tolist()}, f)
        print("wrote", full_dir)


if __name__ == "__main__":
    main()
