#!/usr/bin/python3
"""Writes the small golden files that tests/io_test.ts and tests/torch_import_test.ts read.

Run from the repository root with Debian's Python (which has torch and numpy):
    /usr/bin/python3 tests/golden/make_io_golden.py
Outputs go to tests/golden/io/; expected values go to tests/golden/io/expected.json.
Values are deterministic (arange-based or seeded) so the files are reproducible.
"""
import copy
import inspect
import io
import json
import math
import os
import pickle
import struct
import sys
import types

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "io")
os.makedirs(OUT, exist_ok=True)
expected = {}


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def num(v):
    """JSON-safe scalar: NaN/inf as strings, ints as ints."""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


NP_DTYPE = {"float32": "f32", "float64": "f64", "float16": "f16", "int64": "i64", "int32": "i32",
            "int16": "i16", "int8": "i8", "uint8": "u8", "bool": "bool"}
TORCH_DTYPE = {torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16",
               torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8",
               torch.uint8: "u8", torch.bool: "bool"}


def np_entry(a):
    a = np.asarray(a)
    return {"dtype": NP_DTYPE[a.dtype.name], "shape": list(a.shape), "values": [num(v) for v in a.ravel(order="C")]}


def torch_entry(t):
    t = t.detach()
    vals = t.float() if t.dtype == torch.bfloat16 else t
    return {"dtype": TORCH_DTYPE[t.dtype], "shape": list(t.shape),
            "values": [num(v) for v in vals.contiguous().reshape(-1).tolist()]}


# ---------------- npy ----------------
def save_npy(name, arr, version=None):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    write(name, buf.getvalue())
    expected[name] = np_entry(arr)


a12 = np.arange(12) / 4 - 1
save_npy("f4_le.npy", a12.astype("<f4").reshape(3, 4))
save_npy("f8_be.npy", (a12 * 1e-3).astype(">f8").reshape(2, 6))
save_npy("f2_le.npy", np.array([0, 1, -2.5, 65504, 6e-8, np.inf, -np.inf, np.nan], dtype="<f2"))
save_npy("i8_le.npy", np.array([-3, 0, 2**40, -(2**40)], dtype="<i8"))
save_npy("i4_be.npy", np.arange(-3, 3, dtype=">i4").reshape(2, 3))
save_npy("i2_le.npy", np.array([-32768, 32767, 5], dtype="<i2"))
save_npy("i1.npy", np.array([-128, 127, 0], dtype="|i1"))
save_npy("u1.npy", np.arange(250, 256, dtype="|u1").reshape(2, 3))
save_npy("b1.npy", np.array([True, False, True]))
save_npy("fortran.npy", np.asfortranarray(np.arange(24, dtype="<f4").reshape(2, 3, 4)))
save_npy("scalar.npy", np.array(2.5, dtype="<f8"))
save_npy("empty.npy", np.zeros((0, 3), dtype="<f4"))
save_npy("v2.npy", np.arange(5, dtype="<i2"), version=(2, 0))
save_npy("v3.npy", np.arange(4, dtype=">f4"), version=(3, 0))
# Refusal cases: an object array (its data is a pickle) and an unsupported dtype.
buf = io.BytesIO()
np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
write("object.npy", buf.getvalue())
buf = io.BytesIO()
np.save(buf, np.arange(3, dtype="<u2"))
write("u2.npy", buf.getvalue())

# ---------------- npz ----------------
mu = np.linspace(-1, 1, 5)
sigma = np.outer(mu, mu) + np.eye(5)
buf = io.BytesIO()
np.savez_compressed(buf, mu=mu, sigma=sigma)
write("stats_compressed.npz", buf.getvalue())
buf = io.BytesIO()
np.savez(buf, a=np.arange(6, dtype="<i4").reshape(2, 3), b=np.array([True, False]))
write("stored.npz", buf.getvalue())
expected["stats_compressed.npz"] = {"mu": np_entry(mu), "sigma": np_entry(sigma)}
expected["stored.npz"] = {"a": np_entry(np.arange(6, dtype="<i4").reshape(2, 3)), "b": np_entry([True, False])}


# ---------------- safetensors (written by hand: an independent writer) ----------------
def safetensors_bytes(tensors, metadata):
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": {"f32": "F32", "f16": "F16", "bf16": "BF16", "i64": "I64", "bool": "BOOL",
                                  "u8": "U8"}[TORCH_DTYPE[t.dtype]],
                        "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


st = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 8, "h": torch.tensor([1.5, -2.0], dtype=torch.float16),
      "bf": torch.tensor([1.0, 3.140625, -0.5], dtype=torch.bfloat16), "idx": torch.tensor([7, -1]),
      "mask": torch.tensor([True, False, True]), "none": torch.zeros(0, 4)}
write("tensors.safetensors", safetensors_bytes(st, {"format": "pt", "note": "golden"}))
expected["tensors.safetensors"] = {"tensors": {k: torch_entry(v) for k, v in st.items()},
                                   "metadata": {"format": "pt", "note": "golden"}}

# ---------------- plain pickles, protocols 0..5 ----------------
shared = [1, 2]
data = {"int": 1, "neg": -5, "sizes": [255, 256, 65535, 65536, -1, 2**31 - 1, -(2**31)], "big": 2**70,
        "negbig": -(2**65), "float": 1.5, "tiny": 1e-300, "str": "h\u00e9llo \u2713 \\ \n", "bytes": b"\x00\x01\xff",
        "bytearray": bytearray(b"ab"), "list": [1, [2, 3]], "tuple": (1, "a"), "none": None, "bools": [True, False],
        "set": {1, 2}, "frozenset": frozenset({3}), "shared": [shared, shared], "long": "x" * 300,
        (1, 2): "tuple key", 7: "int key"}


def plain(v):
    if isinstance(v, dict):
        return {(k if isinstance(k, str) else json.dumps(plain(k), separators=(",", ":"))): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted(plain(x) for x in v)
    if isinstance(v, (bytes, bytearray)):
        return list(v)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v if abs(v) <= 2**53 - 1 else str(v)
    return num(v)


for proto in range(6):
    write(f"data_p{proto}.pkl", pickle.dumps(data, protocol=proto))
expected["data.pkl"] = plain(data)

# numpy arrays inside pickles (protocol 2 uses _reconstruct + BUILD; protocol 5 uses _frombuffer).
npd = {"a": np.arange(6, dtype=">i4").reshape(2, 3), "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
       "s": np.float64(2.5), "h": np.array([0.5, -1], dtype="<f2")}
write("numpy_p2.pkl", pickle.dumps(npd, protocol=2))
write("numpy_p5.pkl", pickle.dumps(npd, protocol=5))
expected["numpy.pkl"] = {"a": np_entry(npd["a"]), "f": np_entry(npd["f"]), "s": 2.5, "h": np_entry(npd["h"])}


# Malicious pickles: each would run a command if unpickled by Python. Our reader must stay inert.
class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/io_golden_pwned",))


class EvilEval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch /tmp/io_golden_pwned')",))


write("malicious_p2.pkl", pickle.dumps({"x": Evil()}, protocol=2))
write("malicious_p4.pkl", pickle.dumps([EvilEval(), Evil()], protocol=4))

# ---------------- torch.save: zip, legacy ----------------
base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8 - 1
sd = {"w": base, "wt": base.t(), "sliced": base[1:, 1::2], "param": torch.nn.Parameter(torch.tensor([0.25, -0.75])),
      "half": torch.tensor([1.0, -0.5, 2.0], dtype=torch.float16), "bf16": torch.tensor([0.5, 3.0], dtype=torch.bfloat16),
      "long": torch.tensor([[1, -2], [3, 2**40]]), "mask": torch.tensor([True, False]), "scalar": torch.tensor(3.5),
      "int8": torch.tensor([-7, 7], dtype=torch.int8), "nested": {"inner": torch.tensor([9.0])}}
buf = io.BytesIO()
torch.save(sd, buf)
write("state_zip.pt", buf.getvalue())
buf = io.BytesIO()
torch.save(sd, buf, _use_new_zipfile_serialization=False)
write("state_legacy.pt", buf.getvalue())
flat = {k: v for k, v in sd.items() if k != "nested"}
flat["nested.inner"] = sd["nested"]["inner"]
expected["state.pt"] = {k: torch_entry(v) for k, v in flat.items()}

# A storage saved alone as a zip (what newer _load_from_bytes blobs look like).
buf = io.BytesIO()
torch.save(torch.tensor([1.0, 2.0, 3.0]).storage(), buf)
write("storage_zip.pt", buf.getvalue())

# A whole (non-scripted) module saved with torch.save: names must match its state_dict().
torch.manual_seed(0)
seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
seq.register_buffer("scratch", torch.ones(2), persistent=False)
buf = io.BytesIO()
torch.save(seq, buf)
write("module_zip.pt", buf.getvalue())
expected["module_zip.pt"] = {k: torch_entry(v) for k, v in seq.state_dict().items()}


# ---------------- TorchScript ----------------
class ScriptSub(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("buf", torch.arange(4.0))

    def forward(self, x):
        return self.lin(x) + self.buf[:2]


class ScriptTop(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.sub = ScriptSub()
        self.scale = torch.nn.Parameter(torch.tensor([2.0, -1.0]))
        self.k = 3

    def forward(self, x):
        return self.sub(x) * self.scale * self.k


torch.manual_seed(1)
scripted = torch.jit.script(ScriptTop())
buf = io.BytesIO()
torch.jit.save(scripted, buf)
write("script.pt", buf.getvalue())
expected["script.pt"] = {k: torch_entry(v) for k, v in scripted.state_dict().items()}

# A traced module: the captured tensor goes to the constants table (code reads it as CONSTANTS.c0).
captured = torch.tensor([0.5, 1.0, -2.0])


class Traced(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(x) * captured


torch.manual_seed(3)
traced = torch.jit.trace(Traced(), torch.zeros(1, 3))
buf = io.BytesIO()
torch.jit.save(traced, buf)
write("traced.pt", buf.getvalue())
expected["traced.pt"] = {k: torch_entry(v) for k, v in traced.state_dict().items()}
expected["traced.pt"]["CONSTANTS.c0"] = torch_entry(captured)

# ---------------- a fake SGA network pickle ----------------
# Mimic torch_utils.persistence and dnnlib.util under their real module names, so the pickle has the
# same globals and structure as a real network-snapshot-*.pkl.
torch_utils = types.ModuleType("torch_utils")
persistence = types.ModuleType("torch_utils.persistence")
torch_utils.persistence = persistence
dnnlib = types.ModuleType("dnnlib")
dnnlib_util = types.ModuleType("dnnlib.util")
dnnlib.util = dnnlib_util
sys.modules.update({"torch_utils": torch_utils, "torch_utils.persistence": persistence, "dnnlib": dnnlib,
                    "dnnlib.util": dnnlib_util})


def _reconstruct_persistent_obj(meta):
    raise RuntimeError("only used as a pickle reference")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj


class EasyDict(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)


EasyDict.__module__ = "dnnlib.util"
EasyDict.__qualname__ = "EasyDict"
dnnlib_util.EasyDict = EasyDict

# module_src is text readers must never execute: it would leave a marker file behind.
MODULE_SRC = "import os\nos.system('touch /tmp/io_golden_src_executed')\n"


class Persistent(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self._init_args = ()
        self._init_kwargs = copy.deepcopy(kwargs)

    def __reduce__(self):
        fields = list(super().__reduce__())
        fields += [None] * max(3 - len(fields), 0)
        meta = dict(type="class", version=6, module_src=MODULE_SRC + inspect.getsource(type(self)),
                    class_name=type(self).__name__, state=fields[2])
        return (_reconstruct_persistent_obj, (meta,), None)


class FC(Persistent):
    def __init__(self, i, o):
        super().__init__(i=i, o=o)
        self.weight = torch.nn.Parameter(torch.randn(o, i))
        self.bias = torch.nn.Parameter(torch.randn(o))


class Mapping(Persistent):
    def __init__(self, z_dim, w_dim, num_layers):
        super().__init__(z_dim=z_dim, w_dim=w_dim, num_layers=num_layers)
        for i in range(num_layers):
            setattr(self, f"fc{i}", FC(z_dim if i == 0 else w_dim, w_dim))
        self.register_buffer("w_avg", torch.randn(w_dim))
        self.register_buffer("scratch", torch.zeros(3), persistent=False)


class Layer(Persistent):
    def __init__(self, cin, cout, transposed=False):
        super().__init__(cin=cin, cout=cout)
        w = torch.randn(cin, cout, 3, 3)
        # A non-contiguous parameter: its pickled storage is viewed with permuted strides.
        self.weight = torch.nn.Parameter(w.permute(1, 0, 2, 3) if transposed else w.transpose(0, 1).contiguous())
        self.bias = torch.nn.Parameter(torch.randn(cout))
        self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", torch.tensor([1.0, 3, 3, 1]).outer(torch.tensor([1.0, 3, 3, 1])) / 64)


class Synthesis(Persistent):
    def __init__(self, w_dim, img_resolution, img_channels):
        super().__init__(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels)
        self.b4 = torch.nn.Module()
        self.b4.const = torch.nn.Parameter(torch.randn(2, 4, 4))
        self.b4.conv1 = Layer(2, 2)
        self.b8 = torch.nn.Module()
        self.b8.conv0 = Layer(2, 3, transposed=True)
        self.b8.torgb = FC(3, img_channels)


class Generator(Persistent):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs, synthesis_kwargs):
        super().__init__(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                         img_channels=img_channels, mapping_kwargs=mapping_kwargs, synthesis_kwargs=synthesis_kwargs)
        self.synthesis = Synthesis(w_dim, img_resolution, img_channels)
        self.mapping = Mapping(z_dim, w_dim, **mapping_kwargs)


class Discriminator(Persistent):
    def __init__(self, c_dim, img_resolution, img_channels, channel_base):
        super().__init__(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                         channel_base=channel_base, block_kwargs={}, epilogue_kwargs={"mbstd_group_size": 4})
        self.b8 = Layer(img_channels, 2)
        self.out = torch.nn.Linear(2, 1)  # a plain torch module inside a persistent one


def make_generator():
    torch.manual_seed(2)
    return Generator(z_dim=4, c_dim=0, w_dim=4, img_resolution=8, img_channels=3,
                     mapping_kwargs=EasyDict(num_layers=2), synthesis_kwargs=EasyDict(channel_base=64, conv_clamp=None))


G = make_generator()
D = Discriminator(c_dim=0, img_resolution=8, img_channels=3, channel_base=64)
G_ema = make_generator()  # (copy.deepcopy would go through __reduce__)
with torch.no_grad():
    for p in G_ema.parameters():
        p.mul_(0.5)
snapshot = dict(G=G, D=D, G_ema=G_ema, augment_pipe=None,
                training_set_kwargs=EasyDict(class_name="training.dataset.ImageFolderDataset", path="data.zip",
                                             resolution=8, use_labels=False, max_size=10, xflip=False))
write("sga_snapshot.pkl", pickle.dumps(snapshot))


def kwargs_plain(d):
    return json.loads(json.dumps(d))


expected["sga_snapshot.pkl"] = {
    name: {"className": type(net).__name__, "initKwargs": kwargs_plain(net._init_kwargs),
           "state": {k: torch_entry(v) for k, v in net.state_dict().items()}}
    for name, net in (("G", G), ("D", D), ("G_ema", G_ema))}
expected["sga_snapshot.pkl"]["training_set_kwargs"] = kwargs_plain(snapshot["training_set_kwargs"])

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=None, separators=(",", ":"), sort_keys=True)
total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {OUT}")
