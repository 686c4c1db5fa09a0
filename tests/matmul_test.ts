// matmul against a float64 reference: awkward sizes, every transpose/broadcast combination, the vec4
// load paths, each tile size, fused epilogues, and the GEMM grid folding; the same on the texture
// path (operands packed into textures), its batch wrapping and its texture pool.
import { assertClose, gpuTest, randArray } from "./harness.ts";
import { gpu } from "../kernels/runtime.ts";
import { matmul, type MatmulParams } from "../kernels/matmul.ts";
import { decodeWorkgroup, foldGrid, gemm, gemmPath, type GemmTile, gemmTuning } from "../kernels/gemm.ts";

function upload(data: Float32Array): GPUBuffer {
  const rt = gpu();
  const buf = rt.alloc(Math.max(4, data.length * 4));
  rt.upload(buf, data);
  return buf;
}

async function download(buf: GPUBuffer, n: number): Promise<Float32Array> {
  return new Float32Array(await gpu().read(buf, n * 4));
}

/** float64 reference of matmul with the same layout conventions. */
function reference(a: Float32Array, b: Float32Array, p: MatmulParams): Float64Array {
  const { batch, m, n, k } = p;
  const out = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const aOff = p.broadcastA ? 0 : z * m * k, bOff = p.broadcastB ? 0 : z * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) {
          const av = a[aOff + (p.transA ? q * m + i : i * k + q)];
          const bv = b[bOff + (p.transB ? j * k + q : q * n + j)];
          s += av * bv;
        }
        out[(z * m + i) * n + j] = s;
      }
    }
  }
  return out;
}

async function check(p: MatmulParams, seed: number): Promise<void> {
  const rt = gpu();
  const a = randArray((p.broadcastA ? 1 : p.batch) * p.m * p.k, seed);
  const b = randArray((p.broadcastB ? 1 : p.batch) * p.k * p.n, seed + 1);
  const ga = upload(a), gb = upload(b), gc = rt.alloc(p.batch * p.m * p.n * 4);
  matmul(ga, gb, gc, p);
  const got = await download(gc, p.batch * p.m * p.n);
  assertClose(got, reference(a, b, p), { rtol: 1e-4, atol: 1e-5, what: `matmul ${JSON.stringify(p)}` });
  for (const buf of [ga, gb, gc]) rt.release(buf);
}

function combos(base: MatmulParams): MatmulParams[] {
  const out: MatmulParams[] = [];
  for (let bits = 0; bits < 16; bits++) {
    out.push({
      ...base,
      transA: !!(bits & 1),
      transB: !!(bits & 2),
      broadcastA: !!(bits & 4),
      broadcastB: !!(bits & 8),
    });
  }
  return out;
}

gpuTest("matmul: odd sizes, all transpose/broadcast combinations (scalar loads)", async () => {
  let seed = 10;
  for (const p of combos({ batch: 3, m: 37, n: 29, k: 53 })) await check(p, seed++);
});

gpuTest("matmul: multiple-of-4 sizes, all combinations (vec4 loads)", async () => {
  let seed = 100;
  for (const p of combos({ batch: 2, m: 20, n: 12, k: 24 })) await check(p, seed++);
});

gpuTest("matmul: several tile shapes, partial edge tiles, vec4 and scalar paths", async () => {
  const tiles: GemmTile[] = [
    { tm: 8, tn: 8, wx: 4, wy: 2 },
    { tm: 16, tn: 4, wx: 4, wy: 4 },
    { tm: 4, tn: 16, wx: 2, wy: 4 },
    { tm: 16, tn: 16, wx: 1, wy: 8 },
  ];
  const cases: MatmulParams[] = [
    { batch: 2, m: 70, n: 131, k: 21 },
    { batch: 1, m: 44, n: 68, k: 36, transA: true },
    { batch: 1, m: 36, n: 20, k: 12, transB: true },
  ];
  // Each tile with one case (compiles are slow on the CPU adapter); the cases rotate over the paths.
  let seed = 200;
  try {
    for (const [i, tile] of tiles.entries()) {
      gemmTuning.tile = tile;
      await check(cases[i % cases.length], seed++);
    }
  } finally {
    gemmTuning.tile = null;
  }
});

gpuTest("matmul: k = 0 gives zeros, empty outputs are a no-op", async () => {
  const rt = gpu();
  const a = upload(new Float32Array(4)),
    b = upload(new Float32Array(4)),
    c = upload(new Float32Array(6).fill(7));
  matmul(a, b, c, { batch: 1, m: 2, n: 3, k: 0 });
  assertClose(await download(c, 6), new Float32Array(6), { what: "k=0" });
  matmul(a, b, c, { batch: 0, m: 2, n: 3, k: 1 });
  for (const buf of [a, b, c]) rt.release(buf);
});

gpuTest("matmul: epilogue with alpha, bias along n and m, and an expression", async () => {
  const rt = gpu();
  const p: MatmulParams = { batch: 2, m: 13, n: 22, k: 7, transB: true };
  const a = randArray(2 * 13 * 7, 1), b = randArray(2 * 22 * 7, 2);
  const ga = upload(a), gb = upload(b), gc = rt.alloc(2 * 13 * 22 * 4);
  const ref = reference(a, b, p);
  for (const along of ["n", "m"] as const) {
    const bias = randArray(along === "n" ? 22 : 13, 3);
    const gbias = upload(bias);
    const expr = "select(v, 0.2 * v, v < 0.0)";
    matmul(ga, gb, gc, p, { bias: gbias, biasAlong: along, expr, alpha: 0.5 });
    const want = ref.map((v, idx) => {
      const j = idx % 22, i = Math.floor(idx / 22) % 13;
      const o = 0.5 * v + bias[along === "n" ? j : i];
      return o < 0 ? 0.2 * o : o;
    });
    assertClose(await download(gc, ref.length), want, { rtol: 1e-4, atol: 1e-5, what: `epilogue ${along}` });
    rt.release(gbias);
  }
  for (const buf of [ga, gb, gc]) rt.release(buf);
});

gpuTest("matmul: bad arguments give clear errors", () => {
  const rt = gpu();
  const small = rt.alloc(16), out = rt.alloc(1024);
  const expectThrow = (f: () => void, what: string) => {
    let msg = "";
    try {
      f();
    } catch (e) {
      msg = (e as Error).message;
    }
    if (!msg.includes(what)) throw new Error(`expected an error mentioning "${what}", got "${msg}"`);
  };
  expectThrow(() => matmul(small, small, out, { batch: 1, m: 4, n: 4, k: 4 }), "needs");
  expectThrow(() => matmul(small, small, out, { batch: 1, m: 1.5, n: 1, k: 1 }), "m must be");
  expectThrow(() => matmul(small, small, small, { batch: 1, m: 1, n: 1, k: 1 }), "must differ");
  expectThrow(
    () => matmul(small, small, out, { batch: 1, m: 1, n: 1, k: 1 }, { biasAlong: "m" }),
    "biasAlong",
  );
  rt.release(small);
  rt.release(out);
});

Deno.test("gemm grid folding: every tile, batch and split is visited exactly once", () => {
  for (
    const [tilesN, tilesM, batch, splits, maxDim] of [[3, 5, 7, 2, 20], [70000, 1, 1, 1, 65535], [
      1,
      1,
      1,
      1,
      4,
    ]]
  ) {
    const total = tilesN * tilesM * batch * splits;
    const [gx, gy] = foldGrid(total, maxDim);
    if (gx > maxDim || gy > maxDim || gx * gy < total) throw new Error(`bad grid ${gx}x${gy} for ${total}`);
    if (total > 1000) continue;
    const seen = new Set<string>();
    for (let flat = 0; flat < total; flat++) {
      const d = decodeWorkgroup(flat, tilesN, tilesM, splits);
      if (d.tileN >= tilesN || d.tileM >= tilesM || d.z >= batch || d.s >= splits) {
        throw new Error(`flat ${flat} decodes out of range: ${JSON.stringify(d)}`);
      }
      seen.add(JSON.stringify(d));
    }
    if (seen.size !== total) throw new Error(`only ${seen.size} of ${total} workgroups are distinct`);
  }
  let threw = false;
  try {
    foldGrid(65535 * 65535 + 1, 65535);
  } catch {
    threw = true;
  }
  if (!threw) throw new Error("foldGrid accepted a grid beyond the limit");
});

gpuTest("gemm: a folded 2-D grid with splits computes the same product", async () => {
  // A tiny per-dimension limit forces the folded grid and the early exit of surplus workgroups.
  const rt = gpu();
  const m = 9, n = 10, k = 27, batch = 3, splits = 3;
  const a = randArray(batch * m * k, 5), b = randArray(batch * k * n, 6);
  const ga = upload(a), gb = upload(b), gc = upload(new Float32Array(splits * batch * m * n));
  gemm({
    key: "gemm_fold_test",
    tile: { tm: 4, tn: 4, wx: 2, wy: 1 },
    bindings: [{ buffer: ga, name: "A" }, { buffer: gb, name: "B" }, { buffer: gc, name: "C", write: true }],
    uniform: [],
    loadA: {
      vec: "none",
      load: (i, kk, q) => `select(0.0, A[(z * M + m0 + ${i}u) * K + ${kk}], ${i}u < mLeft && kOk${q})`,
    },
    loadB: {
      vec: "none",
      load: (j, kk, q) => `select(0.0, B[(z * K + ${kk}) * N + n0 + ${j}u], ${j}u < nLeft && kOk${q})`,
    },
    store: () => "C[((s * batch + z) * M + m) * N + n] = v;",
    m,
    n,
    k,
    batch,
    splits,
    maxGridDim: 8,
  });
  const parts = await download(gc, splits * batch * m * n);
  const sum = new Float64Array(batch * m * n);
  for (let s = 0; s < splits; s++) for (let i = 0; i < sum.length; i++) sum[i] += parts[s * sum.length + i];
  assertClose(sum, reference(a, b, { batch, m, n, k }), { rtol: 1e-4, atol: 1e-5, what: "folded gemm" });
  for (const buf of [ga, gb, gc]) rt.release(buf);
});

// ---- the texture path (operands packed into rgba32float textures, read with textureLoad) ----

/** Runs `fn` with every GEMM forced onto `path` (and optionally one tile). */
async function onPath(path: "storage" | "texture", fn: () => Promise<void>, tile?: GemmTile): Promise<void> {
  gemmTuning.path = path;
  gemmTuning.tile = tile ?? null;
  try {
    await fn();
  } finally {
    gemmTuning.path = null;
    gemmTuning.tile = null;
  }
}

gpuTest("matmul texture path: odd sizes, all transpose/broadcast combinations", async () => {
  await onPath("texture", async () => {
    let seed = 1000;
    for (const p of combos({ batch: 3, m: 37, n: 29, k: 53 })) await check(p, seed++);
  });
});

gpuTest("matmul texture path: 256-byte rows (buffer-to-texture copies) and mixed packs", async () => {
  await onPath("texture", async () => {
    let seed = 1100;
    // k = 64 and n = 128 rows are copied; transposed operands (20 or 36 wide) go through the kernel.
    for (const p of combos({ batch: 2, m: 20, n: 128, k: 64 }).filter((_, i) => i % 3 === 0)) {
      await check(p, seed++);
    }
    await check({ batch: 1, m: 36, n: 64, k: 128, transA: true, transB: true }, seed++);
  });
});

gpuTest("matmul texture path: several tiles, partial edge tiles", async () => {
  const tiles: GemmTile[] = [
    { tm: 16, tn: 16, wx: 2, wy: 4 },
    { tm: 4, tn: 8, wx: 4, wy: 2 },
    { tm: 8, tn: 16, wx: 4, wy: 2 },
  ];
  const cases: MatmulParams[] = [
    { batch: 2, m: 70, n: 131, k: 21 },
    { batch: 1, m: 44, n: 68, k: 37, transA: true },
    { batch: 2, m: 9, n: 5, k: 130, transB: true, broadcastA: true },
  ];
  let seed = 1200;
  for (const [i, tile] of tiles.entries()) await onPath("texture", () => check(cases[i], seed++), tile);
});

gpuTest("matmul texture path: batches wrap into side-by-side texture columns", async () => {
  // 20 batches of 1001 rows exceed the 16384-row limit stacked: the layout wraps them into 2 columns.
  await onPath("texture", () => check({ batch: 20, m: 1001, n: 5, k: 7 }, 1300));
});

gpuTest("matmul texture path: epilogue with alpha, bias and an expression", async () => {
  const rt = gpu();
  const p: MatmulParams = { batch: 2, m: 13, n: 22, k: 7, transA: true };
  const a = randArray(2 * 13 * 7, 11), b = randArray(2 * 22 * 7, 12);
  const ga = upload(a), gb = upload(b), gc = rt.alloc(2 * 13 * 22 * 4);
  const ref = reference(a, b, p);
  const bias = randArray(13, 13), gbias = upload(bias);
  await onPath("texture", async () => {
    matmul(ga, gb, gc, p, { bias: gbias, biasAlong: "m", expr: "select(v, 0.2 * v, v < 0.0)", alpha: -1.5 });
    const want = ref.map((v, idx) => {
      const o = -1.5 * v + bias[Math.floor(idx / 22) % 13];
      return o < 0 ? 0.2 * o : o;
    });
    assertClose(await download(gc, ref.length), want, { rtol: 1e-4, atol: 1e-5, what: "texture epilogue" });
  });
  for (const buf of [ga, gb, gc, gbias]) rt.release(buf);
});

gpuTest("matmul texture path: textures go back to the pool, the pool stops growing", async () => {
  const rt = gpu();
  const p: MatmulParams = { batch: 1, m: 33, n: 40, k: 19 };
  const a = upload(randArray(33 * 19, 1)), b = upload(randArray(19 * 40, 2)), c = rt.alloc(33 * 40 * 4);
  // Textures released in a batch are reused after its submit: a repeated pattern stops allocating.
  const step = async () => {
    for (let i = 0; i < 3; i++) matmul(a, b, c, p);
    await rt.sync();
  };
  await onPath("texture", async () => {
    const live = rt.liveTextures;
    await step();
    const created = rt.createdTextures;
    for (let i = 0; i < 3; i++) await step();
    if (rt.liveTextures !== live) throw new Error(`texture leak: ${rt.liveTextures - live} live`);
    if (rt.createdTextures !== created) throw new Error(`pool grew by ${rt.createdTextures - created}`);
    if (rt.pooledTextures < 2) throw new Error(`expected pooled textures, got ${rt.pooledTextures}`);
  });
  for (const buf of [a, b, c]) rt.release(buf);
});

gpuTest("gemmPath: forced paths and the size threshold", async () => {
  await onPath("storage", () => {
    if (gemmPath(2 ** 40) !== "storage") throw new Error("forced storage ignored");
    return Promise.resolve();
  });
  await onPath("texture", () => {
    if (gemmPath(1) !== "texture") throw new Error("forced texture ignored");
    return Promise.resolve();
  });
});
