#!/usr/bin/python3
"""Golden data for tests/stylegan2_test.ts.

An independent float64 PyTorch implementation of the StyleGAN2 networks, written from
/work/shared/REFERENCE.md sections 1-2 (not copied from any repository), with the state-dict names of
the reference implementation (SGA). It builds a tiny conditional G and D, perturbs every parameter and
buffer so that each one matters, and writes (float32) under tests/golden/stylegan2/:

  G.npz, D.npz       state dicts
  io.npz             inputs and expected outputs (mapping, truncation, w_avg update, images, logits,
                     gradients of the GAN losses, R1 and path-length gradients: second order)
  config.json        the architectures as SGA _init_kwargs, plus the names and shapes of the state dicts
                     of other variants (unconditional G, 'orig' D) for naming checks

Run with /usr/bin/python3 (Debian's python3-torch).
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stylegan2")

# ---------------------------------------------------------------- operators (REFERENCE.md 1)


def make_filter(taps):
    f = torch.tensor(taps, dtype=torch.float64)
    f = torch.outer(f, f)
    return f / f.sum()


def fir(x, f, up=1, down=1, pad=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """Zero-insert by `up`, pad [x0, x1, y0, y1] (negative crops), FIR filter, keep every `down`-th pixel."""
    n, c, h, w = x.shape
    if up > 1:
        z = torch.zeros(n, c, h, up, w, up, dtype=x.dtype)
        z[:, :, :, 0, :, 0] = x
        x = z.reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = pad
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0):x.shape[2] - max(-y1, 0), max(-x0, 0):x.shape[3] - max(-x1, 0)]
    k = f * gain ** (f.ndim / 2)
    if not flip_filter:
        k = torch.flip(k, [0, 1])  # a true convolution
    x = F.conv2d(x, k[None, None].expand(c, 1, *k.shape), groups=c)
    return x[:, :, ::down, ::down]


def up2(x, f):
    fw = f.shape[-1]
    p0, p1 = (fw + 1) // 2, (fw - 2) // 2
    return fir(x, f, up=2, pad=(p0, p1, p0, p1), gain=4.0)


def conv_resample(x, w, f, up=1, down=1, padding=0, groups=1, flip_weight=True):
    """SGA's conv2d_resample written plainly: resample with the FIR filter, then convolve."""
    if not flip_weight:
        w = torch.flip(w, [2, 3])
    if up > 1:
        fw = f.shape[-1]
        p0, p1 = padding + (fw + up - 1) // 2, padding + (fw - up) // 2
        x = fir(x, f, up=up, pad=(p0, p1, p0, p1), gain=up * up)
        return F.conv2d(x, w, groups=groups)
    if down > 1:
        fw = f.shape[-1]
        p0, p1 = padding + (fw - down + 1) // 2, padding + (fw - down) // 2
        x = fir(x, f, pad=(p0, p1, p0, p1))
        return F.conv2d(x, w, stride=down, groups=groups)
    return F.conv2d(x, w, padding=padding, groups=groups)


CLAMP_STATS = [0, 0]  # how many activations the clamp changed: the golden must exercise it
ACT_GAIN = {"linear": 1.0, "lrelu": math.sqrt(2)}


def bias_act(x, b, act="linear", gain=None, clamp=None):
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
    x = x * (ACT_GAIN[act] if gain is None else gain)
    if clamp is not None:
        CLAMP_STATS[0] += int((x.abs() > clamp).sum())
        CLAMP_STATS[1] += x.numel()
        x = x.clamp(-clamp, clamp)
    return x


def mod_conv(x, weight, styles, noise=None, up=1, padding=0, f=None, demodulate=True, flip_weight=True,
             fused=False):
    n = x.shape[0]
    o, i, kh, kw = weight.shape
    w = weight[None] * styles[:, None, :, None, None]
    d = (w.square().sum([2, 3, 4]) + 1e-8).rsqrt() if demodulate else None
    if fused:
        if demodulate:
            w = w * d[:, :, None, None, None]
        y = conv_resample(x.reshape(1, n * i, *x.shape[2:]), w.reshape(n * o, i, kh, kw), f, up=up,
                          padding=padding, groups=n, flip_weight=flip_weight)
        y = y.reshape(n, o, *y.shape[2:])
    else:
        y = conv_resample(x * styles[:, :, None, None], weight, f, up=up, padding=padding,
                          flip_weight=flip_weight)
        if demodulate:
            y = y * d[:, :, None, None]
    return y + noise if noise is not None else y


def norm2(x):
    return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()


def mbstd(x, group, channels):
    n, c, h, w = x.shape
    g = min(group, n)
    y = x.reshape(g, n // g, channels, c // channels, h, w)
    y = (y - y.mean(0)).square().mean(0)
    y = (y + 1e-8).sqrt().mean([2, 3, 4])  # [n/g, channels]
    y = y.reshape(-1, channels, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], 1)


# ---------------------------------------------------------------- layers (REFERENCE.md 2)

Param = torch.nn.Parameter


class Dense(torch.nn.Module):
    def __init__(self, fin, fout, act="linear", lr_mult=1.0, bias_init=0.0):
        super().__init__()
        self.act, self.wg, self.bg = act, lr_mult / math.sqrt(fin), lr_mult
        self.weight = Param(torch.randn(fout, fin) / lr_mult)
        self.bias = Param(torch.full([fout], float(bias_init)))

    def forward(self, x):
        return bias_act(x @ (self.weight * self.wg).t(), self.bias * self.bg, self.act)


class Conv(torch.nn.Module):
    def __init__(self, cin, cout, k, bias=True, act="linear", up=1, down=1, clamp=None):
        super().__init__()
        self.act, self.up, self.down, self.clamp = act, up, down, clamp
        self.register_buffer("resample_filter", make_filter([1, 3, 3, 1]))
        self.pad, self.wg = k // 2, 1 / math.sqrt(cin * k * k)
        self.weight = Param(torch.randn(cout, cin, k, k))
        self.bias = Param(torch.zeros(cout)) if bias else None

    def forward(self, x, gain=1.0):
        x = conv_resample(x, self.weight * self.wg, self.resample_filter, up=self.up, down=self.down,
                          padding=self.pad, flip_weight=self.up == 1)
        clamp = self.clamp * gain if self.clamp is not None else None
        return bias_act(x, self.bias, self.act, ACT_GAIN[self.act] * gain, clamp)


class Mapping(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws, layers, beta=0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.num_ws, self.layers, self.beta = z_dim, c_dim, num_ws, layers, beta
        embed = w_dim if c_dim > 0 else 0
        if c_dim > 0:
            self.embed = Dense(c_dim, embed)
        dims = [z_dim + embed] + [w_dim] * layers
        for i in range(layers):
            setattr(self, f"fc{i}", Dense(dims[i], dims[i + 1], "lrelu", lr_mult=0.01))
        if num_ws is not None and beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, c, psi=1.0, cutoff=None, update=False):
        parts = []
        if self.z_dim > 0:
            parts.append(norm2(z))
        if self.c_dim > 0:
            parts.append(norm2(self.embed(c)))
        x = torch.cat(parts, 1)
        for i in range(self.layers):
            x = getattr(self, f"fc{i}")(x)
        if update:
            self.w_avg.copy_(x.detach().mean(0) + self.beta * (self.w_avg - x.detach().mean(0)))
        if self.num_ws is None:
            return x
        x = x[:, None].repeat(1, self.num_ws, 1)
        if psi != 1:
            k = self.num_ws if cutoff is None else cutoff
            head = self.w_avg + psi * (x[:, :k] - self.w_avg)
            x = torch.cat([head, x[:, k:]], 1)
        return x


class SynLayer(torch.nn.Module):
    def __init__(self, cin, cout, w_dim, res, up=1, clamp=None):
        super().__init__()
        self.res, self.up, self.clamp = res, up, clamp
        self.register_buffer("resample_filter", make_filter([1, 3, 3, 1]))
        self.affine = Dense(w_dim, cin, bias_init=1.0)
        self.weight = Param(torch.randn(cout, cin, 3, 3))
        self.register_buffer("noise_const", torch.randn(res, res))
        self.noise_strength = Param(torch.zeros([]))
        self.bias = Param(torch.zeros(cout))

    def forward(self, x, w, fused=False, gain=1.0):
        noise = (self.noise_const * self.noise_strength)[None, None]
        x = mod_conv(x, self.weight, self.affine(w), noise=noise, up=self.up, padding=1,
                     f=self.resample_filter, flip_weight=self.up == 1, fused=fused)
        clamp = self.clamp * gain if self.clamp is not None else None
        return bias_act(x, self.bias, "lrelu", ACT_GAIN["lrelu"] * gain, clamp)


class ToRGB(torch.nn.Module):
    def __init__(self, cin, cout, w_dim, clamp=None):
        super().__init__()
        self.clamp, self.wg = clamp, 1 / math.sqrt(cin)
        self.affine = Dense(w_dim, cin, bias_init=1.0)
        self.weight = Param(torch.randn(cout, cin, 1, 1))
        self.bias = Param(torch.zeros(cout))

    def forward(self, x, w, fused=False):
        x = mod_conv(x, self.weight, self.affine(w) * self.wg, demodulate=False, fused=fused)
        return bias_act(x, self.bias, "linear", clamp=self.clamp)


class SynBlock(torch.nn.Module):
    def __init__(self, cin, cout, w_dim, res, img_ch, clamp):
        super().__init__()
        self.cin = cin
        self.register_buffer("resample_filter", make_filter([1, 3, 3, 1]))
        if cin == 0:
            self.const = Param(torch.randn(cout, res, res))
        else:
            self.conv0 = SynLayer(cin, cout, w_dim, res, up=2, clamp=clamp)
        self.conv1 = SynLayer(cout, cout, w_dim, res, clamp=clamp)
        self.torgb = ToRGB(cout, img_ch, w_dim, clamp=clamp)
        self.num_conv = 1 if cin == 0 else 2

    def forward(self, x, img, ws, fused):
        i = 0
        if self.cin == 0:
            x = self.const[None].repeat(ws.shape[0], 1, 1, 1)
        else:
            x = self.conv0(x, ws[:, 0], fused)
            i = 1
        x = self.conv1(x, ws[:, i], fused)
        y = self.torgb(x, ws[:, i + 1], fused)
        img = y if img is None else up2(img, self.resample_filter) + y
        return x, img


def channels(base, cmax, res):
    return min(base // res, cmax)


class Synthesis(torch.nn.Module):
    def __init__(self, w_dim, res, img_ch, base, cmax, clamp):
        super().__init__()
        self.res_list = [2 ** i for i in range(2, int(math.log2(res)) + 1)]
        self.num_ws = 0
        for r in self.res_list:
            cin = channels(base, cmax, r // 2) if r > 4 else 0
            b = SynBlock(cin, channels(base, cmax, r), w_dim, r, img_ch, clamp)
            setattr(self, f"b{r}", b)
            self.num_ws += b.num_conv
        self.num_ws += 1

    def forward(self, ws, fused=False):
        x = img = None
        i = 0
        for r in self.res_list:
            b = getattr(self, f"b{r}")
            x, img = b(x, img, ws[:, i:i + b.num_conv + 1], fused)
            i += b.num_conv
        return img


class Gen(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, res, img_ch, layers, base, cmax, clamp):
        super().__init__()
        self.synthesis = Synthesis(w_dim, res, img_ch, base, cmax, clamp)
        self.mapping = Mapping(z_dim, c_dim, w_dim, self.synthesis.num_ws, layers)


class DBlock(torch.nn.Module):
    def __init__(self, cin, tmp, cout, img_ch, arch):
        super().__init__()
        self.cin, self.arch = cin, arch
        self.register_buffer("resample_filter", make_filter([1, 3, 3, 1]))
        if cin == 0:
            self.fromrgb = Conv(img_ch, tmp, 1, act="lrelu")
        self.conv0 = Conv(tmp, tmp, 3, act="lrelu")
        self.conv1 = Conv(tmp, cout, 3, act="lrelu", down=2)
        if arch == "resnet":
            self.skip = Conv(tmp, cout, 1, bias=False, down=2)

    def forward(self, x, img):
        if self.cin == 0:
            x = self.fromrgb(img)
        if self.arch == "resnet":
            s = math.sqrt(0.5)
            return self.skip(x, gain=s) + self.conv1(self.conv0(x), gain=s)
        return self.conv1(self.conv0(x))


class Epilogue(torch.nn.Module):
    def __init__(self, cin, cmap_dim, group):
        super().__init__()
        self.cmap_dim, self.group = cmap_dim, group
        self.conv = Conv(cin + 1, cin, 3, act="lrelu")
        self.fc = Dense(cin * 16, cin, "lrelu")
        self.out = Dense(cin, cmap_dim if cmap_dim > 0 else 1)

    def forward(self, x, cmap):
        x = self.conv(mbstd(x, self.group, 1))
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x


class Disc(torch.nn.Module):
    def __init__(self, c_dim, res, img_ch, base, cmax, group, map_layers, arch="resnet"):
        super().__init__()
        self.c_dim = c_dim
        self.res_list = [2 ** i for i in range(int(math.log2(res)), 2, -1)]
        for r in self.res_list:
            cin = channels(base, cmax, r) if r < res else 0
            setattr(self, f"b{r}", DBlock(cin, channels(base, cmax, r), channels(base, cmax, r // 2), img_ch, arch))
        cmap = channels(base, cmax, 4) if c_dim > 0 else 0
        if c_dim > 0:
            self.mapping = Mapping(0, c_dim, cmap, None, map_layers, beta=None)
        self.b4 = Epilogue(channels(base, cmax, 4), cmap, group)

    def forward(self, img, c):
        x = None
        for r in self.res_list:
            x = getattr(self, f"b{r}")(x, img)
        return self.b4(x, self.mapping(None, c) if self.c_dim > 0 else None)


# ---------------------------------------------------------------- the golden data

ARCH = dict(z_dim=16, c_dim=3, w_dim=16, res=16, img_ch=3, layers=2, base=128, cmax=16, clamp=1.5)
D_ARCH = dict(c_dim=3, res=16, img_ch=3, base=128, cmax=16, group=2, map_layers=2)
N = 4


def f32(t):
    return t.detach().to(torch.float32).to(torch.float64)


def perturb(module, gen):
    """Random values everywhere (biases, noise strengths, w_avg too), rounded to float32."""
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if name.endswith("resample_filter"):
                continue
            if name.endswith("noise_strength"):
                t.copy_(0.3 * torch.randn([], generator=gen))
            elif name.endswith("bias") or name.endswith("w_avg"):
                t.add_(0.2 * torch.randn(t.shape, generator=gen))
            t.copy_(f32(t))


def state(module):
    return {k: v.detach().to(torch.float32).numpy() for k, v in module.state_dict().items()}


def names_shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def grads(loss, module, create_graph=False):
    named = list(module.named_parameters())
    gs = torch.autograd.grad(loss, [p for _, p in named], create_graph=create_graph, allow_unused=True)
    return {k: torch.zeros_like(p) if g is None else g for (k, p), g in zip(named, gs)}


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(2)
    a = ARCH
    G = Gen(a["z_dim"], a["c_dim"], a["w_dim"], a["res"], a["img_ch"], a["layers"], a["base"], a["cmax"], a["clamp"])
    d = D_ARCH
    D = Disc(d["c_dim"], d["res"], d["img_ch"], d["base"], d["cmax"], d["group"], d["map_layers"])
    perturb(G, gen)
    perturb(D, gen)
    np.savez(os.path.join(OUT, "G.npz"), **state(G))
    np.savez(os.path.join(OUT, "D.npz"), **state(D))

    io = {}
    z = f32(torch.randn(N, a["z_dim"], generator=gen))
    c = torch.eye(a["c_dim"])[[0, 2, 1, 2]]
    x_real = f32(torch.rand(N, a["img_ch"], a["res"], a["res"], generator=gen) * 2 - 1)
    pl_y = f32(torch.randn(N, a["img_ch"], a["res"], a["res"], generator=gen) / a["res"])
    io.update(z=z, c=c, x_real=x_real, pl_y=pl_y)

    # Mapping, truncation and the tracked average of w.
    ws = G.mapping(z, c)
    io["ws"] = ws
    io["ws_trunc"] = G.mapping(z, c, psi=0.7, cutoff=3)
    io["ws_trunc_all"] = G.mapping(z, c, psi=0.5)
    w_avg0 = G.mapping.w_avg.clone()
    G.mapping(z, c, update=True)
    io["w_avg_updated"] = G.mapping.w_avg.clone()
    with torch.no_grad():
        G.mapping.w_avg.copy_(w_avg0)

    # Synthesis (noise const), both modulated-conv paths.
    img = G.synthesis(ws)
    img_fused = G.synthesis(ws, fused=True)
    assert torch.allclose(img, img_fused, rtol=1e-10, atol=1e-12)
    io["img"] = img
    print("activations clamped in G: %d of %d" % tuple(CLAMP_STATS))

    # Discriminator logits.
    io["logits_fake"] = D(img, c)
    io["logits_real"] = D(x_real, c)

    # Generator loss: softplus(-D(G(z))) summed; gradients for every G parameter.
    loss_g = F.softplus(-D(G.synthesis(G.mapping(z, c)), c)).sum()
    io["loss_g"] = loss_g
    for k, g in grads(loss_g, G).items():
        io[f"gG/{k}"] = g
    # Discriminator loss on detached fakes and reals; gradients for every D parameter.
    loss_d = F.softplus(D(img.detach(), c)).sum() + F.softplus(-D(x_real, c)).sum()
    io["loss_d"] = loss_d
    gd = grads(loss_d, D)
    for k in ["b16.fromrgb.weight", "b16.conv1.weight", "b16.skip.weight", "b8.conv0.bias", "b4.conv.weight",
              "b4.fc.weight", "b4.out.weight", "b4.out.bias", "mapping.embed.weight", "mapping.fc1.bias"]:
        io[f"gD/{k}"] = gd[k]

    # R1: sum over the batch and CHW of (d sum D(x) / dx)^2; its gradient needs second order.
    xr = x_real.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad(D(xr, c).sum(), [xr], create_graph=True)
    r1 = gx.square().sum()
    io["r1"] = r1
    io["r1_grad_x"] = gx
    for k, g in grads(r1, D).items():
        io[f"gR1/{k}"] = g

    # Path length: g = d sum(img * y) / d ws; L = sqrt(mean_ws sum_wdim g^2); penalty sum (L - 0.5)^2.
    wsg = G.mapping(z, c)
    (gw,) = torch.autograd.grad((G.synthesis(wsg) * pl_y).sum(), [wsg], create_graph=True)
    lengths = gw.square().sum(2).mean(1).sqrt()
    pl = (lengths - 0.5).square().sum()
    io["pl_lengths"] = lengths
    io["pl"] = pl
    keep = ["mapping.fc0.weight", "mapping.embed.weight", "synthesis.b4.const", "synthesis.b4.conv1.weight",
            "synthesis.b8.conv0.weight", "synthesis.b8.conv0.affine.weight", "synthesis.b16.conv1.noise_strength",
            "synthesis.b16.torgb.weight", "synthesis.b16.torgb.affine.bias"]
    gpl = grads(pl, G)
    for k in keep:
        io[f"gPL/{k}"] = gpl[k]

    np.savez_compressed(os.path.join(OUT, "io.npz"), **{k: v.detach().to(torch.float32).numpy() for k, v in io.items()})

    # Names and shapes of other variants: unconditional G; unconditional and 'orig' D (default 8 mapping layers).
    g_unc = Gen(32, 0, 32, 32, 3, 8, 512, 64, None)
    d_unc = Disc(0, 32, 3, 512, 64, 4, 8)
    d_orig = Disc(10, 32, 3, 512, 64, 32, 8, arch="orig")
    config = {
        "G_init_kwargs": {
            "z_dim": a["z_dim"], "c_dim": a["c_dim"], "w_dim": a["w_dim"], "img_resolution": a["res"],
            "img_channels": a["img_ch"], "mapping_kwargs": {"num_layers": a["layers"]},
            "synthesis_kwargs": {"channel_base": a["base"], "channel_max": a["cmax"], "num_fp16_res": 0,
                                 "conv_clamp": a["clamp"]},
        },
        "D_init_kwargs": {
            "c_dim": d["c_dim"], "img_resolution": d["res"], "img_channels": d["img_ch"], "architecture": "resnet",
            "channel_base": d["base"], "channel_max": d["cmax"], "num_fp16_res": 0, "conv_clamp": None,
            "block_kwargs": {}, "mapping_kwargs": {"num_layers": d["map_layers"]},
            "epilogue_kwargs": {"mbstd_group_size": d["group"]},
        },
        "batch": N,
        "variants": {
            "G_uncond_32": {
                "init_kwargs": {"z_dim": 32, "c_dim": 0, "w_dim": 32, "img_resolution": 32, "img_channels": 3,
                                "mapping_kwargs": {"num_layers": 8},
                                "synthesis_kwargs": {"channel_base": 512, "channel_max": 64}},
                "state": names_shapes(g_unc),
            },
            "D_uncond_32": {
                "init_kwargs": {"c_dim": 0, "img_resolution": 32, "img_channels": 3, "channel_base": 512,
                                "channel_max": 64, "epilogue_kwargs": {"mbstd_group_size": 4}},
                "state": names_shapes(d_unc),
            },
            "D_orig_cond_32": {
                "init_kwargs": {"c_dim": 10, "img_resolution": 32, "img_channels": 3, "architecture": "orig",
                                "channel_base": 512, "channel_max": 64, "epilogue_kwargs": {"mbstd_group_size": 32}},
                "state": names_shapes(d_orig),
            },
        },
    }
    with open(os.path.join(OUT, "config.json"), "w") as fh:
        json.dump(config, fh, indent=1)
    sizes = {f: os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT)}
    print("wrote", sizes, "total", sum(sizes.values()))
    print("loss_g", float(loss_g), "loss_d", float(loss_d), "r1", float(r1), "pl", float(pl))


if __name__ == "__main__":
    main()
