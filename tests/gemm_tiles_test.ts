// The GPU tile autotune and its cache (cli/gemm_tiles.ts). The CPU adapter runs the real tuner on small
// shapes (its rates mean nothing here, only that every candidate ran and computed the same product) and
// the cache logic with a fake tuner, as a GPU adapter would take it.
import assert from "node:assert/strict";
import { gpuTest } from "./harness.ts";
import { gpu, onCpuAdapter } from "../kernels/runtime.ts";
import {
  currentGpuTiles,
  DEFAULT_GPU_TILES,
  GEMM_KINDS,
  type GemmTile,
  gemmTuning,
  GPU_TILE_CANDIDATES,
  type GpuTiles,
  setGpuTiles,
} from "../kernels/gemm.ts";
import {
  applyGemmTiles,
  convProblem,
  readTileCache,
  tileName,
  tuneGpuTiles,
  type TuneResult,
} from "../cli/gemm_tiles.ts";

const SMALL: GemmTile = { tm: 4, tn: 4, wx: 4, wy: 2 };
const WIDE: GemmTile = { tm: 4, tn: 8, wx: 2, wy: 4 };

/** The same two tiles for every kind. */
function everywhere(big: GemmTile, small: GemmTile): GpuTiles {
  return Object.fromEntries(GEMM_KINDS.map((k) => [k, { big, small }])) as GpuTiles;
}

gpuTest(
  "gemm tune: every candidate runs every kind's two problems and the winners come from the candidates",
  async () => {
    const big = convProblem(2, 8, 6), small = convProblem(1, 4, 3);
    const r = await tuneGpuTiles(gpu(), [SMALL, WIDE], {
      matmul: {
        big: { matmul: { batch: 1, m: 40, n: 36, k: 50 } },
        small: { matmul: { batch: 1, m: 9, n: 20, k: 300 } },
      },
      conv_fwd: { big, small },
      conv_dx: { big, small },
      conv_dw: { big, small },
    });
    for (const k of GEMM_KINDS) {
      for (const t of [SMALL, WIDE]) {
        const rates = r.gflops[k][tileName(t)];
        assert(rates.big! > 0 && rates.small! > 0, `${k} ${tileName(t)}: ${JSON.stringify(rates)}`);
      }
      assert([SMALL, WIDE].includes(r.tiles[k].big) && [SMALL, WIDE].includes(r.tiles[k].small));
    }
    assert.equal(r.clock, gpu().device.features.has("timestamp-query") ? "timestamp-query" : "wall");
    assert.deepEqual(gemmTuning.tile, null, "the tune restores the forced tile");
  },
);

gpuTest(
  "gemm tiles: a cache per adapter, tuned once, forced again, off, and a malformed file retuned",
  async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/sub/gemm-tiles.json`;
    let tunes = 0;
    const fake = (big: GemmTile, small: GemmTile) => (): Promise<TuneResult> => {
      tunes++;
      const gflops = Object.fromEntries(
        GEMM_KINDS.map((k) => [k, { [tileName(big)]: { big: 1, small: 2 } }]),
      );
      return Promise.resolve({
        tiles: everywhere(big, small),
        gflops: gflops as TuneResult["gflops"],
        clock: "wall",
        seconds: 0,
      });
    };
    const rt = gpu(), before = currentGpuTiles();
    try {
      const a = await applyGemmTiles(rt, { path, cpu: false, tune: fake(SMALL, WIDE) });
      assert.deepEqual([a.source, tunes], ["tuned", 1]);
      assert.deepEqual(currentGpuTiles(), everywhere(SMALL, WIDE));
      const cached = await readTileCache(path);
      const entry = Object.values(cached.entries)[0];
      assert.deepEqual(entry.tiles, everywhere(SMALL, WIDE));
      assert.deepEqual(entry.candidates, JSON.stringify(GPU_TILE_CANDIDATES.map(tileName)));

      setGpuTiles(null);
      const b = await applyGemmTiles(rt, { path, cpu: false, tune: fake(WIDE, WIDE) });
      assert.deepEqual([b.source, tunes], ["cache", 1], "the second start reads the cache");
      assert.deepEqual(currentGpuTiles(), everywhere(SMALL, WIDE));

      const c = await applyGemmTiles(rt, { path, mode: "force", cpu: false, tune: fake(WIDE, SMALL) });
      assert.deepEqual([c.source, tunes], ["tuned", 2]);
      assert.deepEqual(
        (await readTileCache(path)).entries[Object.keys(cached.entries)[0]].tiles.conv_dw.big,
        WIDE,
      );

      const d = await applyGemmTiles(rt, { path, mode: "0", cpu: false, tune: fake(SMALL, SMALL) });
      assert.deepEqual([d.source, tunes, currentGpuTiles()], ["default", 2, DEFAULT_GPU_TILES]);

      await Deno.writeTextFile(
        path,
        '{"version": 2, "entries": {"x": {"tiles": {"matmul": {"big": {"tm": 0}}}}}}',
      );
      const e = await applyGemmTiles(rt, { path, cpu: false, tune: fake(SMALL, SMALL) });
      assert.deepEqual([e.source, tunes], ["tuned", 3], "a malformed cache is tuned again and rewritten");
      assert.deepEqual(Object.keys((await readTileCache(path)).entries).length, 1);

      await assert.rejects(
        () => applyGemmTiles(rt, { path, mode: "yes", cpu: false, tune: fake(SMALL, SMALL) }),
        /GC_GEMM_AUTOTUNE/,
      );
      // An unwritable cache (a file where its folder should be) is reported; the tuned tiles still apply.
      const blocked = `${dir}/file`;
      await Deno.writeTextFile(blocked, "");
      const f = await applyGemmTiles(rt, {
        path: `${blocked}/gemm-tiles.json`,
        cpu: false,
        tune: fake(WIDE, WIDE),
      });
      assert.deepEqual([f.source, tunes, currentGpuTiles()], ["tuned", 4, everywhere(WIDE, WIDE)]);
      if (onCpuAdapter()) {
        const cpu = await applyGemmTiles(rt, { path, tune: fake(SMALL, SMALL) });
        assert.deepEqual([cpu.source, tunes], ["cpu", 4], "the CPU adapter keeps its modelled tiles");
      }
    } finally {
      setGpuTiles(before); // on a GPU: the tuned tiles that the other tests run with
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest("gemm tiles: setGpuTiles refuses a tile the generator cannot build", () => {
  const before = currentGpuTiles();
  assert.throws(() => setGpuTiles(everywhere({ tm: 4, tn: 6, wx: 8, wy: 8 }, SMALL)), /tn must/);
  assert.throws(
    () => setGpuTiles(everywhere(SMALL, { tm: 8, tn: 8, wx: 32, wy: 16 })),
    /unsupported tile/,
  );
  assert.deepEqual(currentGpuTiles(), before);
});
