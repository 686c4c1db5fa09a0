// The GPU tile autotune and its cache (cli/gemm_tiles.ts). The CPU adapter runs the real tuner on small
// shapes (its rates mean nothing here, only that every candidate ran and computed the same product) and
// the cache logic with a fake tuner, as a GPU adapter would take it.
import assert from "node:assert/strict";
import { gpuTest } from "./harness.ts";
import { gpu, onCpuAdapter } from "../kernels/runtime.ts";
import {
  currentGpuTiles,
  DEFAULT_GPU_TILES,
  type GemmTile,
  gemmTuning,
  GPU_TILE_CANDIDATES,
  setGpuTiles,
} from "../kernels/gemm.ts";
import { applyGemmTiles, readTileCache, tileName, tuneGpuTiles, type TuneResult } from "../cli/gemm_tiles.ts";

const SMALL: GemmTile = { tm: 4, tn: 4, wx: 4, wy: 2 };
const WIDE: GemmTile = { tm: 4, tn: 8, wx: 2, wy: 4 };

gpuTest(
  "gemm tune: every candidate runs on both shapes and the winners come from the candidates",
  async () => {
    const r = await tuneGpuTiles(gpu(), [SMALL, WIDE], {
      big: { m: 40, n: 36, k: 50 },
      small: { m: 9, n: 20, k: 300 },
    });
    for (const t of [SMALL, WIDE]) {
      const rates = r.gflops[tileName(t)];
      assert(rates.big! > 0 && rates.small! > 0, `${tileName(t)}: ${JSON.stringify(rates)}`);
    }
    assert([SMALL, WIDE].includes(r.big) && [SMALL, WIDE].includes(r.small));
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
      return Promise.resolve({ big, small, gflops: { [tileName(big)]: { big: 1, small: 2 } }, seconds: 0 });
    };
    const rt = gpu(), before = currentGpuTiles();
    try {
      const a = await applyGemmTiles(rt, { path, cpu: false, tune: fake(SMALL, WIDE) });
      assert.deepEqual([a.source, tunes], ["tuned", 1]);
      assert.deepEqual(currentGpuTiles(), { big: SMALL, small: WIDE });
      const cached = await readTileCache(path);
      const entry = Object.values(cached.entries)[0];
      assert.deepEqual([entry.big, entry.small], [SMALL, WIDE]);
      assert.deepEqual(entry.candidates, JSON.stringify(GPU_TILE_CANDIDATES.map(tileName)));

      setGpuTiles(null);
      const b = await applyGemmTiles(rt, { path, cpu: false, tune: fake(WIDE, WIDE) });
      assert.deepEqual([b.source, tunes], ["cache", 1], "the second start reads the cache");
      assert.deepEqual(currentGpuTiles(), { big: SMALL, small: WIDE });

      const c = await applyGemmTiles(rt, { path, mode: "force", cpu: false, tune: fake(WIDE, SMALL) });
      assert.deepEqual([c.source, tunes], ["tuned", 2]);
      assert.deepEqual((await readTileCache(path)).entries[Object.keys(cached.entries)[0]].big, WIDE);

      const d = await applyGemmTiles(rt, { path, mode: "0", cpu: false, tune: fake(SMALL, SMALL) });
      assert.deepEqual([d.source, tunes, currentGpuTiles()], ["default", 2, DEFAULT_GPU_TILES]);

      await Deno.writeTextFile(path, '{"version": 1, "entries": {"x": {"big": {"tm": 0}}}}');
      const e = await applyGemmTiles(rt, { path, cpu: false, tune: fake(SMALL, SMALL) });
      assert.deepEqual([e.source, tunes], ["tuned", 3], "a malformed cache is tuned again and rewritten");
      assert.deepEqual(Object.keys((await readTileCache(path)).entries).length, 1);

      await assert.rejects(
        () => applyGemmTiles(rt, { path, mode: "yes", cpu: false, tune: fake(SMALL, SMALL) }),
        /GC_GEMM_AUTOTUNE/,
      );
      if (onCpuAdapter()) {
        const cpu = await applyGemmTiles(rt, { path, tune: fake(SMALL, SMALL) });
        assert.deepEqual([cpu.source, tunes], ["cpu", 3], "the CPU adapter keeps its modelled tiles");
      }
    } finally {
      setGpuTiles(before); // on a GPU: the tuned tiles that the other tests run with
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest("gemm tiles: setGpuTiles refuses a tile the generator cannot build", () => {
  const before = currentGpuTiles();
  assert.throws(() => setGpuTiles({ big: { tm: 4, tn: 6, wx: 8, wy: 8 }, small: SMALL }), /tn must/);
  assert.throws(
    () => setGpuTiles({ big: SMALL, small: { tm: 8, tn: 8, wx: 32, wy: 16 } }),
    /unsupported tile/,
  );
  assert.deepEqual(currentGpuTiles(), before);
});
