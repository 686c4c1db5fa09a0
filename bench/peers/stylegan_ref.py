"""PyTorch-CPU peers for bench/cases_stylegan.ts: the StyleGAN2 operators and one training iteration,
written with tests/golden/make_stylegan2_golden.py (an independent re-implementation of SGA) in float32.

torch_cpu.py runs from this folder, so case expressions reach this module with __import__("stylegan_ref").
"""

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden"))
import make_stylegan2_golden as ref  # noqa: E402

# The golden script switches the default dtype to float64 on import; the benchmark runs in float32.
torch.set_default_dtype(torch.float32)

FILTER = ref.make_filter([1, 3, 3, 1]).float()


def _bias_act(x, b, act="linear", gain=None, clamp=None):
    """The golden's bias_act without its clamp statistics (a reduction per call that is no part of the op)."""
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
    x = x * (ref.ACT_GAIN[act] if gain is None else gain)
    return x.clamp(-clamp, clamp) if clamp is not None else x


ref.bias_act = _bias_act  # the golden's layers look it up at call time


def up2(x):
    """SGA upsample2d by 2 with the [1,3,3,1] filter."""
    return ref.up2(x, FILTER)


def down2(x):
    """SGA downsample2d by 2 with the [1,3,3,1] filter (padding 1 on each side)."""
    return ref.fir(x, FILTER, down=2, pad=(1, 1, 1, 1))


def bias_act(x, b, clamp):
    return _bias_act(x, b, "lrelu", clamp=clamp)


def mod_conv(x, w, s, up=1, fused=False):
    return ref.mod_conv(x, w, s, up=up, padding=1, f=FILTER, flip_weight=up == 1, fused=fused)


def mbstd(x, group=4, channels=1):
    return ref.mbstd(x, group, channels)


def training_step(res, base, cmax=64, batch=8, z_dim=64, w_dim=64, seed=0):
    """A function real -> placeholder that runs one G step and one D step (Adam, SGA's non-saturating
    logistic losses, no regularisers, constant noise) of the golden networks on `real` [batch, 3, res, res].
    The networks and optimisers persist across calls. The result is a constant zero: nothing to compare."""
    torch.manual_seed(seed)
    G = ref.Gen(z_dim, 0, w_dim, res, 3, 2, base, cmax, 256).float()
    D = ref.Disc(0, res, 3, base, cmax, 4, 2).float()
    adam = dict(lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
    opt_g = torch.optim.Adam(G.parameters(), **adam)
    opt_d = torch.optim.Adam(D.parameters(), **adam)

    def synth(z):
        return G.synthesis(G.mapping(z, None))

    def step(real):
        if tuple(real.shape) != (batch, 3, res, res):
            raise ValueError(f"training_step: real must be [{batch}, 3, {res}, {res}], got {list(real.shape)}")
        with torch.enable_grad():  # torch_cpu.py times everything under no_grad
            # G step: D's weights get no gradients.
            D.requires_grad_(False)
            G.requires_grad_(True)
            loss = F.softplus(-D(synth(torch.randn(batch, z_dim)), None)).mean()
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            # D step: G runs without a graph.
            G.requires_grad_(False)
            D.requires_grad_(True)
            with torch.no_grad():
                fake = synth(torch.randn(batch, z_dim))
            loss = F.softplus(D(fake, None)).mean() + F.softplus(-D(real, None)).mean()
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
        return torch.zeros(1)

    return step


if __name__ == "__main__":  # smoke test: shapes of every peer
    x = torch.rand(2, 8, 16, 16) * 2 - 1
    print(up2(x).shape, down2(x).shape, bias_act(x, torch.zeros(8), 1.0).shape)
    w, s = torch.randn(8, 8, 3, 3), torch.randn(2, 8)
    print(mod_conv(x, w, s).shape, mod_conv(x, w, s, up=2, fused=True).shape, mbstd(torch.randn(8, 16, 4, 4)).shape)
    st = training_step(32, 512)
    print(st(torch.rand(8, 3, 32, 32) * 2 - 1))
