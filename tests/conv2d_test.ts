// conv2d forward, input gradient and weight gradient against float64 references on awkward shapes
// (strides, asymmetric and caller-chosen padding, groups, kh != kw, 1x1), plus the adjoint identity
// <conv(x,w), dy> == <x, inputGrad(dy,w)> == <w, weightGrad(x,dy)>; all of it on both operand paths
// (storage loads, and operands packed into textures).
import { assertClose, gpuTest, randArray } from "./harness.ts";
import { gpu } from "../kernels/runtime.ts";
import { type GemmPath, gemmTuning } from "../kernels/gemm.ts";
import {
  conv2dFlops,
  conv2dForward,
  conv2dInputGrad,
  type Conv2dParams,
  conv2dWeightGrad,
} from "../kernels/conv2d.ts";
import { imageLayout, packImage, releasePacked, sharePacks } from "../kernels/pack_texture.ts";

function upload(data: Float32Array): GPUBuffer {
  const buf = gpu().alloc(Math.max(4, data.length * 4));
  gpu().upload(buf, data);
  return buf;
}

async function download(buf: GPUBuffer, n: number): Promise<Float32Array> {
  return new Float32Array(await gpu().read(buf, n * 4));
}

/** Calls f(xIndex, wIndex, yIndex) for every multiply-add of the convolution (in-range taps only). */
function forEachTap(p: Conv2dParams, f: (xi: number, wi: number, yi: number) => void): void {
  const cinG = p.cin / p.groups, coutG = p.cout / p.groups;
  for (let b = 0; b < p.batch; b++) {
    for (let o = 0; o < p.cout; o++) {
      const g = Math.floor(o / coutG);
      for (let oy = 0; oy < p.outH; oy++) {
        for (let ox = 0; ox < p.outW; ox++) {
          const yi = ((b * p.cout + o) * p.outH + oy) * p.outW + ox;
          for (let ci = 0; ci < cinG; ci++) {
            for (let ky = 0; ky < p.kh; ky++) {
              const iy = oy * p.strideY - p.padTop + ky;
              if (iy < 0 || iy >= p.h) continue;
              for (let kx = 0; kx < p.kw; kx++) {
                const ix = ox * p.strideX - p.padLeft + kx;
                if (ix < 0 || ix >= p.w) continue;
                const xi = ((b * p.cin + g * cinG + ci) * p.h + iy) * p.w + ix;
                f(xi, ((o * cinG + ci) * p.kh + ky) * p.kw + kx, yi);
              }
            }
          }
        }
      }
    }
  }
}

const sizes = (p: Conv2dParams) => ({
  x: p.batch * p.cin * p.h * p.w,
  w: p.cout * (p.cin / p.groups) * p.kh * p.kw,
  y: p.batch * p.cout * p.outH * p.outW,
});

function conv(base: Partial<Conv2dParams> & Pick<Conv2dParams, "cin" | "cout" | "h" | "w" | "kh" | "kw">) {
  const p: Conv2dParams = {
    batch: 2,
    strideY: 1,
    strideX: 1,
    padTop: 0,
    padLeft: 0,
    groups: 1,
    outH: 0,
    outW: 0,
    ...base,
  };
  // Default output size: symmetric "same"-style padding with the caller's top/left.
  if (!base.outH) p.outH = Math.floor((p.h + 2 * p.padTop - p.kh) / p.strideY) + 1;
  if (!base.outW) p.outW = Math.floor((p.w + 2 * p.padLeft - p.kw) / p.strideX) + 1;
  return p;
}

const CASES: Conv2dParams[] = [
  conv({ cin: 3, cout: 5, h: 9, w: 11, kh: 3, kw: 3, padTop: 1, padLeft: 1 }),
  conv({ cin: 4, cout: 6, h: 10, w: 9, kh: 3, kw: 3, strideY: 2, strideX: 2, padTop: 1, padLeft: 1 }),
  // Asymmetric padding, kh != kw, caller-chosen output size (bottom/right padding differs).
  conv({ cin: 6, cout: 4, h: 8, w: 7, kh: 2, kw: 3, padTop: 0, padLeft: 2, outH: 8, outW: 6, groups: 2 }),
  conv({
    cin: 6,
    cout: 9,
    h: 7,
    w: 7,
    kh: 3,
    kw: 1,
    strideY: 2,
    strideX: 1,
    padTop: 2,
    outH: 5,
    outW: 7,
    groups: 3,
  }),
  conv({ batch: 3, cin: 5, cout: 7, h: 6, w: 5, kh: 1, kw: 1 }),
  conv({
    batch: 1,
    cin: 8,
    cout: 4,
    h: 6,
    w: 6,
    kh: 4,
    kw: 4,
    strideY: 2,
    strideX: 2,
    padTop: 1,
    padLeft: 1,
  }),
  // Output that reads past the bottom/right edge and a stride larger than the kernel.
  conv({ cin: 2, cout: 3, h: 5, w: 6, kh: 2, kw: 2, strideY: 3, strideX: 3, outH: 3, outW: 3 }),
  // Fused modulated conv: batch 1, groups = samples, per-sample weights; vec4 weight rows (K = 36).
  conv({ batch: 1, cin: 3 * 4, cout: 3 * 5, h: 6, w: 6, kh: 3, kw: 3, padTop: 1, padLeft: 1, groups: 3 }),
];

async function checkCase(p: Conv2dParams, seed: number, withEpilogue: boolean): Promise<void> {
  const rt = gpu();
  const n = sizes(p);
  const x = randArray(n.x, seed), w = randArray(n.w, seed + 1), dy = randArray(n.y, seed + 2);
  const bias = randArray(p.cout, seed + 3);
  const gx = upload(x), gw = upload(w), gdy = upload(dy), gbias = upload(bias);
  const gy = rt.alloc(n.y * 4), gdx = rt.alloc(n.x * 4), gdw = rt.alloc(n.w * 4);
  const y = new Float64Array(n.y), dx = new Float64Array(n.x), dw = new Float64Array(n.w);
  forEachTap(p, (xi, wi, yi) => {
    y[yi] += x[xi] * w[wi];
    dx[xi] += dy[yi] * w[wi];
    dw[wi] += dy[yi] * x[xi];
  });
  const what = JSON.stringify(p);
  if (withEpilogue) {
    conv2dForward(gx, gw, gy, p, { bias: gbias, expr: "select(v, 0.2 * v, v < 0.0)" });
    const plane = p.outH * p.outW;
    const want = y.map((v, i) => {
      const o = v + bias[Math.floor(i / plane) % p.cout];
      return o < 0 ? 0.2 * o : o;
    });
    assertClose(await download(gy, n.y), want, { rtol: 1e-4, atol: 1e-5, what: `forward+epilogue ${what}` });
  }
  conv2dForward(gx, gw, gy, p);
  conv2dInputGrad(gdy, gw, gdx, p);
  conv2dWeightGrad(gx, gdy, gdw, p);
  assertClose(await download(gy, n.y), y, { rtol: 1e-4, atol: 1e-5, what: `forward ${what}` });
  assertClose(await download(gdx, n.x), dx, { rtol: 1e-4, atol: 1e-5, what: `inputGrad ${what}` });
  assertClose(await download(gdw, n.w), dw, { rtol: 1e-4, atol: 1e-5, what: `weightGrad ${what}` });
  for (const b of [gx, gw, gdy, gbias, gy, gdx, gdw]) rt.release(b);
}

/**
 * Runs `fn` with every GEMM forced onto `path`; on the texture path the small cases share one tile,
 * so each conv pass compiles once (CPU-adapter compiles take seconds).
 */
async function onPath(path: GemmPath, fn: () => Promise<void>, oneTile = path === "texture"): Promise<void> {
  gemmTuning.path = path;
  if (oneTile) gemmTuning.tile = { tm: 8, tn: 8, wx: 4, wy: 2 };
  try {
    await fn();
  } finally {
    gemmTuning.path = null;
    gemmTuning.tile = null;
  }
}

for (const path of ["storage", "texture"] as const) {
  gpuTest(
    `conv2d [${path}]: forward, input grad and weight grad match float64 on awkward shapes`,
    async () => {
      let seed = 1;
      await onPath(path, async () => {
        for (const p of CASES) await checkCase(p, seed += 10, seed === 11);
      });
    },
  );

  gpuTest(`conv2d [${path}]: bias + leaky-relu epilogue on a grouped strided conv`, async () => {
    await onPath(path, () => checkCase(CASES[3], 500, true));
  });

  gpuTest(`conv2d [${path}]: inputGrad and weightGrad are the adjoints of forward`, async () => {
    await onPath(path, () => checkAdjoints([CASES[1], CASES[2], CASES[3], CASES[6]]));
  });
}

gpuTest("conv2d [storage]: bigger shapes use larger tiles, split-K weight grads and vec4 loads", async () => {
  // 12x12 images (outH*outW % 4 == 0) give vec4 dy rows in the weight grad; K = 1152 splits it.
  await onPath("storage", async () => {
    await checkCase(
      conv({ batch: 8, cin: 16, cout: 24, h: 12, w: 12, kh: 3, kw: 3, padTop: 1, padLeft: 1 }),
      900,
      false,
    );
    await checkCase(
      conv({ batch: 2, cin: 4, cout: 70, h: 13, w: 11, kh: 3, kw: 2, padTop: 1, padLeft: 0 }),
      950,
      false,
    );
  });
});

gpuTest(
  "conv2d [storage]: split-K forward and input grad (few tiles, long K); the epilogue runs once",
  async () => {
    // 4x4 images, cout 8, K = 64*9 = 576: one output tile, so the forward splits K in two and the sum
    // pass adds the bias, scales by alpha and applies the activation.
    const p = conv({ batch: 1, cin: 64, cout: 8, h: 4, w: 4, kh: 3, kw: 3, padTop: 1, padLeft: 1 });
    await onPath("storage", async () => {
      await checkCase(p, 970, true);
      // The input gradient with cout 64: K = 576 there, one phase (stride 1), so it splits too.
      const q = conv({ batch: 1, cin: 8, cout: 64, h: 4, w: 4, kh: 3, kw: 3, padTop: 1, padLeft: 1 });
      await checkCase(q, 980, false);
      const rt = gpu(), n = sizes(p);
      const x = randArray(n.x, 971), w = randArray(n.w, 972), bias = randArray(p.cout, 973);
      const gx = upload(x), gw = upload(w), gb = upload(bias), gy = rt.alloc(n.y * 4);
      const y = new Float64Array(n.y);
      forEachTap(p, (xi, wi, yi) => y[yi] += x[xi] * w[wi]);
      conv2dForward(gx, gw, gy, p, { bias: gb, alpha: 0.5, expr: "v * v" });
      const plane = p.outH * p.outW;
      const want = y.map((v, i) => (0.5 * v + bias[Math.floor(i / plane) % p.cout]) ** 2);
      assertClose(await download(gy, n.y), want, { rtol: 1e-4, atol: 1e-5, what: "split-K forward, alpha" });
      for (const b of [gx, gw, gb, gy]) rt.release(b);
    });
  },
);

gpuTest(
  "conv2d [texture]: bigger shapes, split-K weight grads with and without a ragged last chunk",
  async () => {
    await onPath("texture", async () => {
      // K = 8*144 = 1152 pixels (whole chunks of 4), split over workgroups.
      await checkCase(
        conv({ batch: 8, cin: 16, cout: 24, h: 12, w: 12, kh: 3, kw: 3, padTop: 1, padLeft: 1 }),
        1900,
        true,
      );
      // K = 5*121 = 605 pixels: the last chunk is masked; 70 output channels, kh != kw, 5 input channels.
      await checkCase(
        conv({ batch: 5, cin: 5, cout: 70, h: 11, w: 11, kh: 3, kw: 2, padTop: 1, padLeft: 0, outW: 11 }),
        1950,
        false,
      );
    }, false);
  },
);

gpuTest("conv2d [texture]: a stride-2 grouped conv with wide padding", async () => {
  // Padding 3 around a 4x4 kernel at stride 2 exercises the dy frame of the input gradient.
  await onPath("texture", () =>
    checkCase(
      conv({
        batch: 2,
        cin: 12,
        cout: 18,
        h: 9,
        w: 10,
        kh: 4,
        kw: 4,
        strideY: 2,
        strideX: 2,
        padTop: 3,
        padLeft: 3,
        groups: 3,
      }),
      2100,
      true,
    ));
});

gpuTest("conv2d [texture]: wide images whose channel quads wrap into several texture bands", async () => {
  // 50 channel quads of a 332-texel-wide frame do not fit side by side in 16384 texels: 2 bands
  // (x in forward and weight grad, dy in input grad).
  await onPath("texture", async () => {
    await checkCase(
      conv({ batch: 1, cin: 200, cout: 200, h: 1, w: 330, kh: 1, kw: 3, padLeft: 1 }),
      2200,
      false,
    );
    // 260 quads of 64-pixel unframed dy rows: the block-transposing pack, wrapped into 2 bands.
    await checkCase(conv({ batch: 1, cin: 4, cout: 1040, h: 1, w: 64, kh: 1, kw: 1 }), 2300, false);
  });
});

gpuTest("sharePacks: an identical pack shares its texture, others pack again, all freed at the end", () => {
  const rt = gpu();
  const a = upload(randArray(2 * 5 * 6 * 7, 1)), b = upload(randArray(2 * 5 * 6 * 7, 2));
  const view = {
    batch: 2,
    groups: 1,
    channelsPerGroup: 5,
    h: 6,
    w: 7,
    bStride: 210,
    cStride: 42,
    yStride: 7,
    xStride: 1,
    padTop: 1,
    padLeft: 1,
  };
  const layout = imageLayout(2, 5, 8, 9)!;
  const live = rt.liveTextures;
  const outside = [packImage(a, view, layout), packImage(a, view, layout)];
  if (outside[0] === outside[1]) throw new Error("outside a scope every pack is its own texture");
  for (const t of outside) releasePacked(t);
  sharePacks(() => {
    const first = packImage(a, view, layout);
    const again = packImage(a, { ...view }, { ...layout });
    const other = packImage(b, view, layout);
    const shifted = packImage(a, { ...view, padLeft: 0 }, layout);
    if (again !== first) throw new Error("the identical pack was not shared");
    if (other === first || shifted === first) throw new Error("a different source or view shared a texture");
    releasePacked(first); // kept: the scope owns shared textures
    if (rt.liveTextures !== live + 3) throw new Error(`live textures ${rt.liveTextures - live}, want 3`);
    sharePacks(() => {
      if (packImage(a, view, layout) !== first) throw new Error("a nested scope did not join the outer one");
    });
  });
  if (rt.liveTextures !== live) throw new Error(`${rt.liveTextures - live} textures left after the scope`);
  rt.release(a);
  rt.release(b);
});

gpuTest(
  "conv2d [texture]: inside sharePacks the two gradients pack dy once, bit-identical results",
  async () => {
    const rt = gpu();
    await onPath("texture", async () => {
      for (const [i, p] of [CASES[0], CASES[2]].entries()) {
        const n = sizes(p);
        const gx = upload(randArray(n.x, 40 + i)), gw = upload(randArray(n.w, 50 + i));
        const gdy = upload(randArray(n.y, 60 + i));
        const run = async (shared: boolean) => {
          const dx = rt.alloc(n.x * 4), dw = rt.alloc(n.w * 4), d0 = rt.totalDispatches;
          const both = () => {
            conv2dInputGrad(gdy, gw, dx, p);
            conv2dWeightGrad(gx, gdy, dw, p);
          };
          if (shared) sharePacks(both);
          else both();
          const dispatches = rt.totalDispatches - d0;
          const out = { dispatches, dx: await download(dx, n.x), dw: await download(dw, n.w) };
          rt.release(dx);
          rt.release(dw);
          return out;
        };
        const plain = await run(false), shared = await run(true);
        const what = JSON.stringify(p);
        if (shared.dispatches !== plain.dispatches - 1) {
          throw new Error(`${what}: ${shared.dispatches} dispatches shared, ${plain.dispatches} not`);
        }
        assertClose(shared.dx, plain.dx, { rtol: 0, atol: 0, what: `dx ${what}` });
        assertClose(shared.dw, plain.dw, { rtol: 0, atol: 0, what: `dw ${what}` });
        for (const b of [gx, gw, gdy]) rt.release(b);
      }
    });
  },
);

async function checkAdjoints(cases: Conv2dParams[]): Promise<void> {
  const rt = gpu();
  for (const [ci, p] of cases.entries()) {
    const n = sizes(p);
    const x = randArray(n.x, 70 + ci), w = randArray(n.w, 80 + ci), dy = randArray(n.y, 90 + ci);
    const gx = upload(x), gw = upload(w), gdy = upload(dy);
    const gy = rt.alloc(n.y * 4), gdx = rt.alloc(n.x * 4), gdw = rt.alloc(n.w * 4);
    conv2dForward(gx, gw, gy, p);
    conv2dInputGrad(gdy, gw, gdx, p);
    conv2dWeightGrad(gx, gdy, gdw, p);
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i] * b[i];
      return s;
    };
    const lhs = dot(await download(gy, n.y), dy);
    const viaX = dot(x, await download(gdx, n.x));
    const viaW = dot(w, await download(gdw, n.w));
    assertClose([viaX, viaW], [lhs, lhs], { rtol: 1e-4, atol: 1e-4, what: `adjoint ${JSON.stringify(p)}` });
    for (const b of [gx, gw, gdy, gy, gdx, gdw]) rt.release(b);
  }
}

gpuTest("conv2d: bad parameters give clear errors", () => {
  const rt = gpu();
  const buf = rt.alloc(4096), out = rt.alloc(4096);
  const p = conv({ cin: 3, cout: 4, h: 4, w: 4, kh: 3, kw: 3, padTop: 1, padLeft: 1 });
  const expectThrow = (f: () => void, what: string) => {
    let msg = "";
    try {
      f();
    } catch (e) {
      msg = (e as Error).message;
    }
    if (!msg.includes(what)) throw new Error(`expected an error mentioning "${what}", got "${msg}"`);
  };
  expectThrow(() => conv2dForward(buf, buf, out, { ...p, groups: 2 }), "multiples of groups");
  expectThrow(() => conv2dForward(buf, buf, out, { ...p, strideY: 0 }), "strideY");
  expectThrow(() => conv2dForward(buf, buf, buf, p), "must differ");
  expectThrow(() => conv2dWeightGrad(buf, buf, out, { ...p, cin: 300 }), "needs");
  if (conv2dFlops(p) !== 2 * 2 * 4 * 16 * 3 * 9) throw new Error("conv2dFlops");
  rt.release(buf);
  rt.release(out);
});
