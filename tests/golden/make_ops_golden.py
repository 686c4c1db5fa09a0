#!/usr/bin/python3
"""Golden values for tests/stylegan_ops_test.ts: an independent float64 PyTorch implementation of the
StyleGAN2 operators, written from /work/shared/REFERENCE.md section 1.

Run with Debian's interpreter: /usr/bin/python3 tests/golden/make_ops_golden.py
Writes one stored (uncompressed) .npz per case to tests/golden/ops/: the float32 inputs, a float32 upstream
gradient `gy`, the output `y` and the gradients `d<input>` (both float64, computed by torch autograd).
Independence: everything runs on torch's own conv2d / conv_transpose2d; upsampling convolutions use a
transposed strided convolution with paddings derived here (the TypeScript tests separately check that form
against REFERENCE.md's zero-insert, filter, then valid convolution).
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops")
torch.set_default_dtype(torch.float64)
rng = np.random.RandomState(1234)


def rand(*shape, lo=-1.0, hi=1.0):
    """float32 values (what the TS side uploads) held as float64 leaves."""
    a = rng.uniform(lo, hi, size=shape).astype(np.float32)
    return torch.tensor(a.astype(np.float64), requires_grad=True)


def fir(taps):
    """1-D taps -> outer product, normalised to sum 1."""
    t = torch.tensor(taps, dtype=torch.float64)
    f = torch.outer(t, t) if t.ndim == 1 else t
    return f / f.sum()


def upfirdn(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """Zero-insert, pad [x0, x1, y0, y1] (negative crops), FIR (true convolution unless flip_filter), keep
    every down-th pixel; per channel."""
    n, c, h, w = x.shape
    ux, uy = up
    z = x.new_zeros(n, c, h * uy, w * ux)
    z[:, :, ::uy, ::ux] = x
    z = F.pad(z, list(pad))
    k = f * gain
    if not flip_filter:
        k = torch.flip(k, [0, 1])  # conv2d correlates: flipping makes it a true convolution
    z = F.conv2d(z, k[None, None].repeat(c, 1, 1, 1), groups=c)
    return z[:, :, :: down[1], :: down[0]]


def conv_resample(x, w, f, up=1, down=1, padding=0, flip_weight=True):
    """conv2d_resample per REFERENCE.md, for one group; f is a 2-D filter."""
    fh, fw = f.shape
    kh, kw = w.shape[2:]
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    if up > 1:
        assert not flip_weight and down == 1, "golden covers the SGA layer case"
        # Upsample + true convolution with w == conv_transpose2d (stride up); the filter runs after, with
        # its leading pad shifted by the kernel's reach: b0 = P0 - (k - 1) + a, b1 = P1 - (k - up) + a.
        ax = max(min(kw - 1 - px0, kw - up - px1), 0)
        ay = max(min(kh - 1 - py0, kh - up - py1), 0)
        t = F.conv_transpose2d(x, w.transpose(0, 1), stride=up, padding=(ay, ax))
        bx0, bx1 = px0 - (kw - 1) + ax, px1 - (kw - up) + ax
        by0, by1 = py0 - (kh - 1) + ay, py1 - (kh - up) + ay
        return upfirdn(t, f, pad=(bx0, bx1, by0, by1), gain=up * up)
    wc = w if flip_weight else torch.flip(w, [2, 3])
    if down > 1:
        # Filter (no subsampling), full-resolution valid correlation, then keep every down-th pixel.
        y = F.conv2d(upfirdn(x, f, pad=(px0, px1, py0, py1)), wc)
        return y[:, :, ::down, ::down]
    return F.conv2d(F.pad(x, [px0, px1, py0, py1]), wc)


def modconv(x, weight, styles, f, noise, up=1, padding=0, demodulate=True, flip_weight=True):
    """Per-sample weights, demodulated, one sample at a time."""
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n][None, :, None, None]
        if demodulate:
            w = w * (w.square().sum(dim=[1, 2, 3]) + 1e-8).rsqrt()[:, None, None, None]
        outs.append(conv_resample(x[n : n + 1], w, f, up=up, padding=padding, flip_weight=flip_weight))
    y = torch.cat(outs, 0)
    return y + noise if noise is not None else y


def bias_act(x, b, act, alpha, gain, clamp):
    z = x + b.reshape(1, -1, *([1] * (x.ndim - 2)))
    funcs = {
        "linear": lambda v: v,
        "lrelu": lambda v: torch.where(v > 0, v, v * alpha),
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "elu": lambda v: torch.where(v >= 0, v, torch.expm1(torch.clamp(v, max=0))),
        "selu": lambda v: 1.0507009873554805
        * torch.where(v >= 0, v, 1.6732632423543772 * torch.expm1(torch.clamp(v, max=0))),
        "softplus": lambda v: torch.log1p(torch.exp(-v.abs())) + v.clamp(min=0),
        "swish": lambda v: v * torch.sigmoid(v),
        "relu": lambda v: v.clamp(min=0),
    }
    y = funcs[act](z) * gain
    return y.clamp(-clamp, clamp) if clamp is not None else y


def mbstd(x, group, chans):
    n, c, h, w = x.shape
    g = min(group, n)
    y = x.reshape(g, n // g, chans, c // chans, h, w)
    y = ((y - y.mean(0)).square().mean(0) + 1e-8).sqrt()  # [n/g, F, c/F, H, W]
    y = y.mean(dim=[2, 3, 4])  # [n/g, F]
    idx = torch.arange(n) % (n // g)  # sample i sits in group i mod n/g
    return torch.cat([x, y[idx][:, :, None, None].expand(n, chans, h, w)], 1)


def save(name, inputs, fn, consts=None):
    y = fn(**inputs)
    gy = rand(*y.shape).detach()
    wrt = [k for k, v in inputs.items() if isinstance(v, torch.Tensor) and v.requires_grad]
    grads = torch.autograd.grad(y, [inputs[k] for k in wrt], gy)
    arrays = {k: v.detach().numpy().astype(np.float32) for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    arrays["gy"] = gy.numpy().astype(np.float32)
    arrays["y"] = y.detach().numpy()
    for k, g in zip(wrt, grads):
        arrays["d" + k] = g.numpy()
    for k, v in (consts or {}).items():
        arrays[k] = np.asarray(v, dtype=np.float64)
    np.savez(os.path.join(OUT, name + ".npz"), **arrays)


def main():
    os.makedirs(OUT, exist_ok=True)
    f4 = fir([1, 3, 3, 1])
    # upfirdn2d: the helpers' paddings, an odd mixed case with a non-separable filter, and a flipped one.
    save("upfirdn_up2", {"x": rand(2, 3, 5, 7)}, lambda x: upfirdn(x, f4, up=(2, 2), pad=(2, 1, 2, 1), gain=4.0))
    save("upfirdn_down2", {"x": rand(2, 3, 8, 9)}, lambda x: upfirdn(x, f4, down=(2, 2), pad=(1, 1, 1, 1)))
    fodd = torch.tensor(rng.uniform(-1, 1, size=(3, 4)).astype(np.float32).astype(np.float64))
    save(
        "upfirdn_odd",
        {"x": rand(1, 2, 6, 5)},
        lambda x: upfirdn(x, fodd, up=(3, 2), down=(2, 3), pad=(3, -1, 2, 0), flip_filter=True, gain=1.7),
        {"f": fodd.numpy()},
    )
    f3 = fir([1, 2, 3])
    save(
        "upfirdn_flip",
        {"x": rand(2, 2, 5, 6)},
        lambda x: upfirdn(x, f3, up=(2, 2), pad=(1, 2, 0, 3), flip_filter=True, gain=2.0),
    )
    # bias_act: lrelu with clamp (SGA synthesis layers), and the other activations without.
    save(
        "biasact_lrelu_clamp",
        {"x": rand(3, 4, 5, 2, lo=-2, hi=2), "b": rand(4)},
        lambda x, b: bias_act(x, b, "lrelu", 0.2, np.sqrt(2), 0.8),
    )
    for act, gain in [("tanh", 1), ("sigmoid", 1), ("elu", 1), ("selu", 1), ("softplus", 1), ("swish", np.sqrt(2))]:
        save(
            "biasact_" + act,
            {"x": rand(2, 3, 4, lo=-3, hi=3), "b": rand(3)},
            lambda x, b, act=act, gain=gain: bias_act(x, b, act, 0, gain, None),
        )
    # modulated conv: synthesis conv0 (3x3, up 2, flip_weight False, noise), conv1 (3x3), toRGB (1x1).
    save(
        "modconv_up2",
        {"x": rand(2, 3, 5, 6), "weight": rand(4, 3, 3, 3), "styles": rand(2, 3, lo=0.2, hi=1.5),
         "noise": rand(2, 1, 10, 12)},
        lambda x, weight, styles, noise: modconv(x, weight, styles, f4, noise, up=2, padding=1, flip_weight=False),
    )
    save(
        "modconv_3x3",
        {"x": rand(2, 3, 5, 6), "weight": rand(4, 3, 3, 3), "styles": rand(2, 3, lo=0.2, hi=1.5),
         "noise": rand(2, 1, 5, 6)},
        lambda x, weight, styles, noise: modconv(x, weight, styles, f4, noise, padding=1),
    )
    save(
        "modconv_torgb",
        {"x": rand(2, 4, 5, 3), "weight": rand(3, 4, 1, 1), "styles": rand(2, 4, lo=-1, hi=1)},
        lambda x, weight, styles: modconv(x, weight, styles, f4, None, demodulate=False),
    )
    # conv2d_resample with down 2: discriminator conv1 (3x3, padding 1) and skip (1x1, no padding).
    save(
        "conv_down2",
        {"x": rand(2, 3, 8, 7), "w": rand(4, 3, 3, 3)},
        lambda x, w: conv_resample(x, w, f4, down=2, padding=1),
    )
    save("conv_skip_down2", {"x": rand(2, 3, 8, 6), "w": rand(4, 3, 1, 1)}, lambda x, w: conv_resample(x, w, f4, down=2))
    # minibatch std: group 4 of a batch of 8, two statistic channels.
    save("mbstd", {"x": rand(8, 6, 3, 4)}, lambda x: mbstd(x, 4, 2))
    total = sum(os.path.getsize(os.path.join(OUT, p)) for p in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
