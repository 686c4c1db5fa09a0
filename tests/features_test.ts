// Feature networks: pooling kernels against a float64 reference, the TF1 bilinear resize and reduced-width
// Inception-v3 / VGG16 against PyTorch goldens (tests/golden/make_features_golden.py), weight-file errors,
// the registry, and the bundled MNIST feature network.
import { assertClose, gpuTest, randArray, rng } from "./harness.ts";
import { fromHost, scopeAsync, type Tensor } from "../nn/tensor.ts";
import { avgPool2d, maxPool2d } from "../nn/pool.ts";
import { loadStateDict } from "../nn/io/torch.ts";
import type { HostArray } from "../nn/io/host.ts";
import {
  resizeBilinear,
  resizeBilinearTF1,
  resizeBilinearTF1Ref,
  tf1BilinearMatrix,
} from "../metrics/features/resize.ts";
import { InceptionV3 } from "../metrics/features/inception.ts";
import { Vgg16 } from "../metrics/features/vgg16.ts";
import { detectFeatureKind, loadFeatureNetwork } from "../metrics/features/index.ts";
import {
  digitSubset,
  loadMnistDigits,
  loadMnistFeatureNet,
  mnistAccuracy,
  trainMnistFeatureNet,
} from "../metrics/features/mnist_net.ts";

const GOLDEN = new URL("./golden/features/", import.meta.url);
const expected = JSON.parse(Deno.readTextFileSync(new URL("expected.json", GOLDEN)));
const weights = (name: string) => loadStateDict(Deno.readFileSync(new URL(name, GOLDEN)));

/** Mirror of test_images in make_features_golden.py: a diagonal ramp plus seeded noise, integers 0..255. */
function testImages(seed: number, n: number, c: number, h: number, w: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n * c * h * w);
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let xx = 0; xx < w; xx++) {
          x[k++] = (xx * 5 + y * 3 + ch * 70 + i * 40 + Math.floor(r() * 96)) % 256;
        }
      }
    }
  }
  return x;
}

function goldenImages(): Tensor {
  const { seed, shape } = expected.images;
  return fromHost(testImages(seed, shape[0], shape[1], shape[2], shape[3]), shape, "f32");
}

// ---- pooling ----

function poolRef(
  x: Float32Array,
  [n, c, h, w]: number[],
  k: [number, number],
  s: [number, number],
  p: [number, number],
  mode: "max" | "avg",
  includePad: boolean,
): Float64Array {
  const oh = Math.floor((h + 2 * p[0] - k[0]) / s[0]) + 1, ow = Math.floor((w + 2 * p[1] - k[1]) / s[1]) + 1;
  const out = new Float64Array(n * c * oh * ow);
  let o = 0;
  for (let pl = 0; pl < n * c; pl++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let acc = mode === "max" ? -Infinity : 0, cnt = 0;
        for (let ky = 0; ky < k[0]; ky++) {
          for (let kx = 0; kx < k[1]; kx++) {
            const y = oy * s[0] - p[0] + ky, xx = ox * s[1] - p[1] + kx;
            if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
            const v = x[pl * h * w + y * w + xx];
            acc = mode === "max" ? Math.max(acc, v) : acc + v;
            cnt++;
          }
        }
        out[o++] = mode === "max" ? acc : acc / (includePad ? k[0] * k[1] : cnt);
      }
    }
  }
  return out;
}

gpuTest("max and average pooling match a float64 reference (padding, strides, awkward sizes)", async () => {
  const cases: { shape: number[]; k: [number, number]; s: [number, number]; p: [number, number] }[] = [
    { shape: [2, 3, 17, 13], k: [3, 3], s: [2, 2], p: [0, 0] },
    { shape: [1, 5, 9, 11], k: [3, 3], s: [1, 1], p: [1, 1] },
    { shape: [3, 2, 8, 7], k: [2, 2], s: [2, 2], p: [0, 0] },
    { shape: [1, 1, 10, 6], k: [3, 2], s: [2, 1], p: [1, 1] },
  ];
  for (const [i, cs] of cases.entries()) {
    const data = randArray(cs.shape.reduce((a, b) => a * b, 1), 40 + i, -3, 3);
    const x = fromHost(data, cs.shape, "f32");
    const opts = { kernel: cs.k, stride: cs.s, padding: cs.p };
    const what = `case ${i} [${cs.shape}] k${cs.k} s${cs.s} p${cs.p}`;
    const mx = maxPool2d(x, opts),
      incl = avgPool2d(x, opts),
      excl = avgPool2d(x, { ...opts, countIncludePad: false });
    assertClose(await mx.data(), poolRef(data, cs.shape, cs.k, cs.s, cs.p, "max", true), {
      what: `max ${what}`,
    });
    assertClose(await incl.data(), poolRef(data, cs.shape, cs.k, cs.s, cs.p, "avg", true), {
      what: `avg ${what}`,
    });
    assertClose(await excl.data(), poolRef(data, cs.shape, cs.k, cs.s, cs.p, "avg", false), {
      what: `avg excl ${what}`,
    });
    for (const t of [x, mx, incl, excl]) t.dispose();
  }
});

gpuTest("pooling rejects bad arguments clearly", () => {
  const x = fromHost(new Float32Array(16), [1, 1, 4, 4], "f32");
  const threw = (fn: () => unknown, re: RegExp) => {
    try {
      fn();
    } catch (e) {
      if (!re.test((e as Error).message)) throw new Error(`unexpected message: ${(e as Error).message}`);
      return;
    }
    throw new Error(`expected an error matching ${re}`);
  };
  threw(() => maxPool2d(x, { kernel: 5 }), /does not fit/);
  threw(() => avgPool2d(x, { kernel: 2, padding: 2 }), /at most half/);
  threw(() => maxPool2d(fromHost(new Float32Array(4), [4], "f32"), { kernel: 2 }), /NCHW/);
  x.dispose();
});

// ---- resize ----

gpuTest(
  "TF1 bilinear resize matches TensorFlow's formula (numpy golden) and the float64 reference",
  async () => {
    for (const cs of expected.resize) {
      const [h, w] = cs.in, [oh, ow] = cs.out;
      const data = testImages(cs.seed, 1, 1, h, w);
      const x = fromHost(data, [1, 1, h, w], "f32");
      const y = resizeBilinearTF1(x, oh, ow);
      const got = await y.data();
      const ref = resizeBilinearTF1Ref(data, h, w, oh, ow);
      assertClose(got, ref, { rtol: 1e-5, atol: 1e-3, what: `resize ${h}x${w}->${oh}x${ow} vs f64 ref` });
      if (cs.values) {
        assertClose(got, cs.values, {
          rtol: 1e-5,
          atol: 1e-3,
          what: `resize ${h}x${w} vs TF1 golden`,
        });
      } else {
        for (const [i, v] of Object.entries(cs.probes)) {
          assertClose([got[Number(i)]], [v as number], { rtol: 1e-5, atol: 1e-3, what: `probe ${i}` });
        }
        const total = got.reduce((a, b) => a + b, 0);
        assertClose([total], [cs.sum], { rtol: 1e-5, what: "sum" });
      }
      x.dispose();
      y.dispose();
    }
    // Source coordinate o * in/out without a half-pixel shift: output 0 copies input 0, upsampling by 2
    // puts odd outputs halfway between inputs, and the last output is clamped at the edge.
    const m = tf1BilinearMatrix(3, 6);
    assertClose(Array.from(m.slice(0, 3)), [1, 0, 0], { what: "row 0" });
    assertClose(Array.from(m.slice(3, 6)), [0.5, 0.5, 0], { what: "row 1" });
    assertClose(Array.from(m.slice(15, 18)), [0, 0, 1], { what: "row 5 (clamped)" });
  },
);

gpuTest(
  "pytorch-fid resize (half-pixel bilinear) matches torch.nn.functional.interpolate goldens",
  async () => {
    const gold = JSON.parse(Deno.readTextFileSync(new URL("../resize/half_pixel.json", GOLDEN)));
    for (const cs of gold.cases) {
      const [h, w] = cs.in, [oh, ow] = cs.out;
      const data = new Float32Array(h * w);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = (y * 37 + x * 11 + 5) % 256;
      const got = await scopeAsync(async () =>
        await resizeBilinear(fromHost(data, [1, 1, h, w], "f32"), oh, ow, "pytorch-fid").data()
      );
      const what = `pytorch-fid resize ${h}x${w}->${oh}x${ow}`;
      if (cs.values) assertClose(got, cs.values, { rtol: 1e-5, atol: 1e-3, what });
      else {
        for (const [i, v] of Object.entries(cs.probes)) {
          assertClose([got[Number(i)]], [v as number], {
            rtol: 1e-5,
            atol: 1e-3,
            what: `${what} probe ${i}`,
          });
        }
      }
      assertClose([got.reduce((a, b) => a + b, 0)], [cs.sum], { rtol: 1e-5, what: `${what} sum` });
      // The tf mode is the TF1 resize (tested against its golden above), and the two differ.
      if (oh !== h || ow !== w) {
        const tf = await scopeAsync(async () =>
          await resizeBilinear(fromHost(data, [1, 1, h, w], "f32"), oh, ow, "tf").data()
        );
        assertClose(tf, resizeBilinearTF1Ref(data, h, w, oh, ow), {
          rtol: 1e-5,
          atol: 1e-3,
          what: `tf ${what}`,
        });
        if (!tf.some((v, i) => Math.abs(v - got[i]) > 1e-2)) throw new Error(`${what}: the modes coincide`);
      }
    }
  },
);

// ---- Inception-v3 ----

gpuTest("Inception-v3 (width/32, pytorch-fid layout) pool3 features equal PyTorch's", async () => {
  const net = new InceptionV3(weights("inception_w32.pth"), { widthDivisor: 32 });
  const gold = expected.inception_w32;
  if (net.dim !== gold.dim) throw new Error(`dim ${net.dim} != ${gold.dim}`);
  if (!net.name.includes("pytorch-fid")) throw new Error(`name ${net.name}`);
  const images = goldenImages();
  const f = net.extract(images);
  if (f.shape.join() !== `2,${gold.dim}`) throw new Error(`features shape [${f.shape}]`);
  assertClose(await f.data(), gold.features, { rtol: 1e-4, atol: 1e-5, what: "inception features" });
  // Chunked extraction gives the same rows.
  const f1 = net.extract(images, { batchSize: 1 });
  // (the GEMM tiling, hence the summation order, depends on the batch: equal to f32 rounding)
  assertClose(await f1.data(), await f.data(), { rtol: 1e-5, atol: 1e-6, what: "batchSize 1" });
  for (const t of [images, f, f1]) t.dispose();
  net.dispose();
});

gpuTest("Inception-v3 from an SGA-named TorchScript archive gives the same features", async () => {
  const net = new InceptionV3(weights("inception_w32_sga.pt"), { widthDivisor: 32 });
  if (!net.name.includes("SGA")) throw new Error(`name ${net.name}`);
  const images = goldenImages();
  const f = net.extract(images);
  assertClose(await f.data(), expected.inception_w32.features, {
    rtol: 1e-4,
    atol: 1e-5,
    what: "sga features",
  });
  images.dispose();
  f.dispose();
  net.dispose();
});

gpuTest("grayscale images give the features of their 3-channel repetition", async () => {
  const net = new InceptionV3(weights("inception_w32.pth"), { widthDivisor: 32 });
  const data = testImages(3, 2, 1, 30, 26);
  const gray = fromHost(data, [2, 1, 30, 26], "f32");
  const rgbData = new Float32Array(2 * 3 * 30 * 26);
  for (let i = 0; i < 2; i++) {
    for (let c = 0; c < 3; c++) rgbData.set(data.subarray(i * 780, (i + 1) * 780), (i * 3 + c) * 780);
  }
  const rgb = fromHost(rgbData, [2, 3, 30, 26], "f32");
  const a = net.extract(gray), b = net.extract(rgb);
  assertClose(await a.data(), await b.data(), { rtol: 1e-5, atol: 1e-6, what: "gray vs rgb" });
  for (const t of [gray, rgb, a, b]) t.dispose();
  net.dispose();
});

function expectError(fn: () => unknown, ...patterns: RegExp[]): void {
  let msg = "";
  try {
    fn();
  } catch (e) {
    msg = (e as Error).message;
  }
  if (!msg) throw new Error("expected an error");
  for (const re of patterns) if (!re.test(msg)) throw new Error(`message lacks ${re}:\n${msg}`);
}

gpuTest("truncated, mis-shaped and foreign weight files fail with the names listed", () => {
  const full = weights("inception_w32.pth");
  const truncated = new Map([...full].filter(([k]) => !k.startsWith("Mixed_7c")));
  expectError(
    () => new InceptionV3(truncated, { widthDivisor: 32 }),
    /missing tensors \(\d+\)/,
    /Mixed_7c\.branch1x1\.conv\.weight/,
    /truncated/,
  );
  const reshaped = new Map(full);
  const w = full.get("Mixed_5b.branch1x1.conv.weight")!;
  reshaped.set(
    "Mixed_5b.branch1x1.conv.weight",
    { ...w, shape: [w.shape[1], w.shape[0], 1, 1] } as HostArray,
  );
  expectError(() => new InceptionV3(reshaped, { widthDivisor: 32 }), /wrong shape/, /Mixed_5b\.branch1x1/);
  // The full-width network against the reduced file: every conv is reported with both shapes.
  expectError(
    () => new InceptionV3(full),
    /Conv2d_1a_3x3\.conv\.weight: file has \[1,3,3,3\], expected \[32,3,3,3\]/,
  );
  const vgg = weights("vgg16_w64.pth");
  expectError(() => new InceptionV3(vgg), /not an FID Inception-v3 weight file/, /features\.0\.weight/);
  expectError(() => new Vgg16(full, { widthDivisor: 64 }), /none of the expected names/, /Conv2d_1a_3x3/);
  // torchvision's ImageNet Inception has the same conv names but 1000 classes.
  const imagenet = new Map(full);
  imagenet.set("fc.weight", { dtype: "f32", shape: [1000, 64], data: new Float32Array(64000) });
  imagenet.set("fc.bias", { dtype: "f32", shape: [1000], data: new Float32Array(1000) });
  expectError(() => new InceptionV3(imagenet, { widthDivisor: 32 }), /torchvision's ImageNet Inception-v3/);
});

// ---- VGG16 ----

gpuTest("VGG16 (width/64, torchvision layout) fc2 features equal PyTorch's", async () => {
  const net = new Vgg16(weights("vgg16_w64.pth"), { widthDivisor: 64 });
  const gold = expected.vgg16_w64;
  if (net.dim !== gold.dim) throw new Error(`dim ${net.dim} != ${gold.dim}`);
  const images = goldenImages();
  const f = net.extract(images);
  assertClose(await f.data(), gold.features, { rtol: 1e-4, atol: 1e-4, what: "vgg16 features" });
  // fc weights split into row slices (as the real 411 MB fc1 is) give the same features.
  const sliced = new Vgg16(weights("vgg16_w64.pth"), { widthDivisor: 64, fcSliceFloats: 5000 });
  const g = sliced.extract(images);
  assertClose(await g.data(), await f.data(), { rtol: 1e-6, atol: 1e-6, what: "sliced fc" });
  for (const t of [images, f, g]) t.dispose();
  net.dispose();
  sliced.dispose();
});

// ---- registry and the MNIST network ----

gpuTest("registry: specs, detection by tensor names and clear errors", async () => {
  if (detectFeatureKind(weights("inception_w32_sga.pt")) !== "inception") throw new Error("sga not detected");
  if (detectFeatureKind(weights("vgg16_w64.pth")) !== "vgg16") throw new Error("vgg not detected");
  const net = await loadFeatureNetwork("mnist");
  if (net.name !== "mnist-cnn-128 (project weights)" || net.dim !== 128) {
    throw new Error(`${net.name} ${net.dim}`);
  }
  net.dispose();
  const rejects = async (spec: string, re: RegExp) => {
    try {
      (await loadFeatureNetwork(spec)).dispose();
    } catch (e) {
      if (!re.test((e as Error).message)) {
        throw new Error(`${spec}: unexpected message ${(e as Error).message}`);
      }
      return;
    }
    throw new Error(`${spec}: expected an error`);
  };
  await rejects("inception", /needs a weight file/);
  await rejects("inception:/nonexistent/pt_inception.pth", /cannot read inception weight file/);
  // The full-size network from the reduced test file: a clear shape report, not garbage features.
  await rejects(`inception:${new URL("inception_w32.pth", GOLDEN).pathname}`, /wrong shape/);
  const tmp = await Deno.makeTempFile({ suffix: ".bin" });
  await Deno.writeFile(tmp, new Uint8Array([1, 2, 3, 4, 5]));
  await rejects(tmp, /could not be read/);
  await Deno.remove(tmp);
});

gpuTest("bundled mnist-cnn-128 classifies held-out MNIST digits; features are 128-d", async () => {
  const net = await loadMnistFeatureNet();
  // 500 of the 1,500 held-out digits (every third) keep the test fast on a CPU adapter.
  const test = digitSubset((await loadMnistDigits()).test, 500);
  const acc = await mnistAccuracy(net, test);
  console.log(`mnist-cnn-128 held-out accuracy (500 digits): ${acc}`);
  if (!(acc > 0.94)) throw new Error(`held-out accuracy ${acc}`);
  const images = fromHost(test.pixels.subarray(0, 5 * 784), [5, 1, 28, 28], "f32");
  const f = net.extract(images);
  if (f.shape.join() !== "5,128") throw new Error(`features shape [${f.shape}]`);
  const v = await f.data({ checkFinite: true });
  if (!v.some((x) => x > 0)) throw new Error("all features are zero");
  // 28x28 digits are zero-padded to 32x32, as the project's MNIST dataset stores them: the padded RGB
  // version of a digit has the same features.
  const padded = new Float32Array(5 * 3 * 32 * 32);
  for (let i = 0; i < 5; i++) {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 28; y++) {
        const src = test.pixels.subarray(i * 784 + y * 28, i * 784 + y * 28 + 28);
        padded.set(src, ((i * 3 + c) * 32 + y + 2) * 32 + 2);
      }
    }
  }
  const rgb = fromHost(padded, [5, 3, 32, 32], "f32");
  const g = net.extract(rgb);
  assertClose(await g.data(), v, { rtol: 1e-5, atol: 1e-5, what: "padded RGB vs 28x28 gray" });
  for (const t of [images, f, rgb, g]) t.dispose();
  net.dispose();
});

gpuTest("trainMnistFeatureNet runs, saves safetensors + JSON atomically, and reloads", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/net.safetensors`;
  const losses: number[] = [];
  const r = await trainMnistFeatureNet({
    out,
    steps: 2,
    batchSize: 8,
    seed: 3,
    logEvery: 1,
    log: (_s, l) => losses.push(l),
    evalImages: 50,
  });
  if (losses.length !== 2 || !losses.every(Number.isFinite)) throw new Error(`losses ${losses}`);
  if (!(r.testAccuracy >= 0 && r.testAccuracy <= 1) || r.testSize !== 50) throw new Error(JSON.stringify(r));
  const info = JSON.parse(await Deno.readTextFile(`${out}.json`));
  if (info.arch !== "mnist-cnn-128" || info.steps !== 2) throw new Error(JSON.stringify(info));
  const net = await loadMnistFeatureNet(out);
  net.dispose();
  const leftovers = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp"));
  if (leftovers.length) throw new Error(`temporary files left: ${leftovers.map((e) => e.name)}`);
  await Deno.remove(dir, { recursive: true });
});
