# Golden values for pytorch-fid's resize (--fid-mode pytorch-fid): torch.nn.functional.interpolate with
# mode="bilinear", align_corners=False (pytorch-fid's InceptionV3.forward), on integer test planes.
# Inputs are a formula (no RNG) so the TypeScript test rebuilds them: x[y, x] = (y * 37 + x * 11 + 5) % 256.
# Run: /usr/bin/python3 tests/golden/make_resize_golden.py  -> tests/golden/resize/half_pixel.json
import json
import os

import torch
import torch.nn.functional as F

CASES = [(7, 5, 19, 13), (32, 32, 299, 299), (16, 16, 299, 299), (40, 30, 17, 11), (9, 9, 9, 4)]


def plane(h, w):
    return torch.tensor([[(y * 37 + x * 11 + 5) % 256 for x in range(w)] for y in range(h)], dtype=torch.float64)


out = []
for h, w, oh, ow in CASES:
    x = plane(h, w)[None, None]
    y = F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False)[0, 0]
    flat = y.flatten().tolist()
    # Big outputs: probes and the sum; small ones: every value.
    entry = {"in": [h, w], "out": [oh, ow], "sum": float(y.sum())}
    if oh * ow <= 400:
        entry["values"] = flat
    else:
        step = 997
        entry["probes"] = {str(i): flat[i] for i in range(0, len(flat), step)}
    out.append(entry)

path = os.path.join(os.path.dirname(__file__), "resize", "half_pixel.json")
with open(path, "w") as f:
    json.dump({"torch": torch.__version__, "cases": out}, f)
print("wrote", path)
