#!/usr/bin/python3
"""Golden files for tests/import_test.ts (`cli.ts import`).

Builds a SMALL conditional G, D and G_ema with the independent PyTorch re-implementation of
tests/golden/make_stylegan2_golden.py (imported as a module: it has a main guard), makes every module
"persistent" the way StyleGAN2-ADA's torch_utils.persistence pickles it (a call to
torch_utils.persistence._reconstruct_persistent_obj(meta), meta = {type, version, module_src, class_name,
state}, the state holding `_init_kwargs` with SGA's argument names), and writes under tests/golden/import/:

  network-snapshot.pkl   {G, D, G_ema, augment_pipe, training_set_kwargs}, like SGA's network-snapshot-*.pkl
  state_dicts.pt         torch.save({"G": ..., "D": ..., "G_ema": ...}) of the state dicts (zip format)
  g_ema_only.pt          torch.save(G_ema.state_dict()): a single generator
  arch.json              {"G_init_kwargs", "D_init_kwargs"}: what `--arch` is given for the .pt files
  z.npy, c.npy           inputs
  img.npy                G_ema(z, c) with noise_mode const, truncation psi 1 (float32)

Run from the repository root: /usr/bin/python3 tests/golden/make_import_golden.py
"""
import io
import json
import os
import pickle
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_stylegan2_golden as sg  # noqa: E402  (sets float64 as torch's default dtype)

OUT = os.path.join(HERE, "import")

# ---- stand-ins for SGA's modules, under their real names, so the pickle references the same globals ----
torch_utils = types.ModuleType("torch_utils")
persistence = types.ModuleType("torch_utils.persistence")
torch_utils.persistence = persistence
dnnlib = types.ModuleType("dnnlib")
dnnlib_util = types.ModuleType("dnnlib.util")
dnnlib.util = dnnlib_util
sys.modules.update({"torch_utils": torch_utils, "torch_utils.persistence": persistence, "dnnlib": dnnlib,
                    "dnnlib.util": dnnlib_util})


def _reconstruct_persistent_obj(meta):  # only referenced by the pickle; never called here
    raise RuntimeError("reference only")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj


class EasyDict(dict):
    pass


EasyDict.__module__ = "dnnlib.util"
dnnlib_util.EasyDict = EasyDict

# A reader that executed module_src would leave this marker behind.
MARKER = "/tmp/import_golden_src_executed"
MODULE_SRC = f"import os\nos.system('touch {MARKER}')\n"


def persistent_reduce(self):
    meta = dict(type="class", version=6, module_src=MODULE_SRC, class_name=type(self).__mro__[1].__name__,
                state=dict(self.__dict__))
    return (_reconstruct_persistent_obj, (meta,), None)


def make_persistent(net, init_kwargs):
    """Every module of net pickles as a persistent object; the top one records init_kwargs."""
    for m in net.modules():
        cls = type(m)
        m.__class__ = type(cls.__name__, (cls,), {"__reduce__": persistent_reduce})
        m._init_args = ()
        m._init_kwargs = EasyDict()
    net._init_kwargs = init_kwargs
    return net


# ---- the networks ----
A = dict(z_dim=8, c_dim=2, w_dim=8, res=8, img_ch=3, layers=2, base=64, cmax=8, clamp=256)
G_KW = EasyDict(z_dim=A["z_dim"], c_dim=A["c_dim"], w_dim=A["w_dim"], img_resolution=A["res"],
                img_channels=A["img_ch"], mapping_kwargs=EasyDict(num_layers=A["layers"]),
                synthesis_kwargs=EasyDict(channel_base=A["base"], channel_max=A["cmax"], num_fp16_res=0,
                                          conv_clamp=A["clamp"]))
D_KW = EasyDict(c_dim=A["c_dim"], img_resolution=A["res"], img_channels=A["img_ch"], architecture="resnet",
                channel_base=A["base"], channel_max=A["cmax"], num_fp16_res=0, conv_clamp=A["clamp"],
                block_kwargs=EasyDict(), mapping_kwargs=EasyDict(num_layers=2),
                epilogue_kwargs=EasyDict(mbstd_group_size=2))


def new_g(seed):
    torch.manual_seed(seed)
    g = sg.Gen(A["z_dim"], A["c_dim"], A["w_dim"], A["res"], A["img_ch"], A["layers"], A["base"], A["cmax"],
               A["clamp"])
    sg.perturb(g, torch.Generator().manual_seed(seed + 100))
    return g


def main():
    os.makedirs(OUT, exist_ok=True)
    G, G_ema = new_g(1), new_g(2)  # different weights: the test must pick G_ema
    torch.manual_seed(3)
    D = sg.Disc(A["c_dim"], A["res"], A["img_ch"], A["base"], A["cmax"], 2, 2)
    sg.perturb(D, torch.Generator().manual_seed(4))

    gen = torch.Generator().manual_seed(5)
    z = sg.f32(torch.randn(3, A["z_dim"], generator=gen))
    c = torch.eye(A["c_dim"])[[0, 1, 1]]
    with torch.no_grad():
        img = G_ema.synthesis(G_ema.mapping(z, c))  # noise: noise_const * noise_strength ("const")

    def sd32(net):
        return {k: v.detach().to(torch.float32).clone() for k, v in net.state_dict().items()}

    buf = io.BytesIO()
    torch.save({"G": sd32(G), "D": sd32(D), "G_ema": sd32(G_ema)}, buf)
    open(os.path.join(OUT, "state_dicts.pt"), "wb").write(buf.getvalue())
    buf = io.BytesIO()
    torch.save(sd32(G_ema), buf)
    open(os.path.join(OUT, "g_ema_only.pt"), "wb").write(buf.getvalue())

    # The pickle stores float32 tensors, like SGA's.
    for net in (G, D, G_ema):
        net.to(torch.float32)
    snapshot = dict(G=make_persistent(G, G_KW), D=make_persistent(D, D_KW), G_ema=make_persistent(G_ema, G_KW),
                    augment_pipe=None,
                    training_set_kwargs=EasyDict(class_name="training.dataset.ImageFolderDataset", path="data.zip",
                                                 use_labels=True, max_size=None, xflip=False, resolution=A["res"]))
    with open(os.path.join(OUT, "network-snapshot.pkl"), "wb") as f:
        pickle.dump(snapshot, f)

    json.dump({"G_init_kwargs": G_KW, "D_init_kwargs": D_KW}, open(os.path.join(OUT, "arch.json"), "w"), indent=1)
    np.save(os.path.join(OUT, "z.npy"), z.to(torch.float32).numpy())
    np.save(os.path.join(OUT, "c.npy"), c.to(torch.float32).numpy())
    np.save(os.path.join(OUT, "img.npy"), img.to(torch.float32).numpy())
    sizes = {n: os.path.getsize(os.path.join(OUT, n)) for n in sorted(os.listdir(OUT))}
    print("wrote", sizes, "total", sum(sizes.values()), "bytes; img range", float(img.min()), float(img.max()))


if __name__ == "__main__":
    main()
