// The study commands end to end at a tiny budget: the result JSON the issue names, the figures, and a run
// killed at any point resuming to exactly the numbers of an uninterrupted run.
import assert from "node:assert/strict";
import { type CheckpointResult, runDissectStudy, runTransferStudy } from "../gan/toy2d/study.ts";
import type { Progress } from "../gan/toy2d/train.ts";
import { decodeImage, isPng } from "../data/image_io.ts";
import { gpuTest } from "./harness.ts";

// Tiny budget (test time): the protocol's networks and losses, fewer and smaller steps.
const SMALL = { batch: 16, dSteps: 1, evalEvery: 2, evalSamples: 64 };

class Killed extends Error {}

/** A progress callback that "kills" the run the first time `stage` reaches `step`. */
function killAt(stage: string, step: number): (p: Progress) => void {
  return (p) => {
    if (p.stage.startsWith(stage) && p.step >= step) throw new Killed(`killed at ${p.stage} step ${p.step}`);
  };
}

/** The figure is a PNG that decodes, with pixels (decodeImage throws otherwise). */
async function assertPng(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  assert.ok(isPng(bytes), `${path} is not a PNG`);
  decodeImage(bytes, path);
}

/** The measured numbers of a checkpoint (its timings differ from run to run). */
const numbers = (rs: CheckpointResult[]) => rs.map(({ wallMs: _w, timing: _t, ...r }) => r);

gpuTest(
  "study dissect: result JSON and figure; killed in either phase, it resumes to the same numbers",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "gc-dissect-" });
    try {
      const base = { ...SMALL, checkpoints: 3, every: 2, finetuneSteps: 2 };
      const whole = await runDissectStudy({ ...base, out: `${dir}/whole` });

      const json = JSON.parse(await Deno.readTextFile(whole.files.json));
      assert.deepEqual(Object.keys(json.pearson).sort(), ["gradSimilarity", "recall"]);
      assert.deepEqual(Object.keys(json.pearsonFinal).sort(), ["gradSimilarity", "recall"]);
      assert.equal(json.gradSimilarityConvention, "ascent");
      assert.equal(json.checkpoints.length, 3);
      json.checkpoints.forEach((c: CheckpointResult, i: number) => {
        assert.equal(c.index, i); // checkpoint 0 is source I's random initialisation
        assert.equal(c.sourceStep, 2 * i);
        assert.ok(c.recall >= 0 && c.recall <= 1, `recall ${c.recall}`);
        assert.ok(c.gradSimilarity >= -1 && c.gradSimilarity <= 1, `gradSimilarity ${c.gradSimilarity}`);
        assert.ok(c.finalW1 > 0 && Number.isFinite(c.finalW1), `finalW1 ${c.finalW1}`);
        assert.equal(c.finalW1, c.scores.finalRaw);
        assert.ok(c.headline <= c.finalW1 && c.headline <= c.scores.startRaw, `headline ${c.headline}`);
        assert.ok(c.timing && c.timing.dispatches > 0, "checkpoint timing recorded");
      });
      assert.ok(json.config.protocol.lr === 2e-4 && json.config.checkpoints === 3, "config recorded");
      assert.ok(json.phases.sourceMs > 0);
      assert.equal(json.phases.finetuneMs, whole.checkpoints.reduce((a, c) => a + c.wallMs, 0));
      const lines = (await Deno.readTextFile(whole.files.jsonl)).trim().split("\n");
      assert.equal(lines.length, 3);
      await assertPng(whole.files.png);

      const kills = [
        ["source", killAt("train source I", 2)], // after checkpoints 0 and 1 of 0..2 were written
        ["finetune", killAt("finetune checkpoint 2/2", 2)], // checkpoints 0, 1 recorded, 2 at its last step
      ] as const;
      for (const [name, onProgress] of kills) {
        const out = `${dir}/killed-${name}`;
        await assert.rejects(runDissectStudy({ ...base, out, onProgress }), Killed);
        const resumed = await runDissectStudy({ ...base, out });
        assert.deepEqual(
          numbers(resumed.checkpoints),
          numbers(whole.checkpoints),
          `resumed after a kill in ${name}`,
        );
        assert.deepEqual(resumed.pearson, whole.pearson);
        assert.deepEqual(resumed.pearsonFinal, whole.pearsonFinal);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

gpuTest(
  "study transfer: result JSON and figure; killed mid-way, it resumes to the same numbers",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "gc-transfer-" });
    try {
      const base = { ...SMALL, gSteps: 2, seeds: 2 };
      const whole = await runTransferStudy({ ...base, out: `${dir}/whole` });
      const json = JSON.parse(await Deno.readTextFile(whole.files.json));
      assert.deepEqual(json.seeds, [0, 1]);
      assert.deepEqual(Object.keys(json.w1).sort(), ["random", "source1", "source2"]);
      assert.equal(json.gradSimilarityConvention, "ascent");
      for (const init of ["source1", "source2", "random"]) {
        const per = json.scores[init];
        assert.equal(per.length, 2, init);
        // The top-level w1 is the headline score averaged over the seeds.
        const mean = (per[0].headline + per[1].headline) / 2;
        assert.ok(Math.abs(json.w1[init] - mean) < 1e-4 * mean, `${init}: w1 ${json.w1[init]} vs ${mean}`);
        for (const p of per) {
          for (const k of ["headline", "finalRaw", "finalEma", "bestAfter0Raw", "bestAfter0Ema", "recall"]) {
            assert.ok(Number.isFinite(p[k]) && p[k] >= 0, `${init} seed ${p.seed} ${k} ${p[k]}`);
          }
          assert.ok(p.headline <= Math.min(p.startRaw, p.bestAfter0Raw, p.finalRaw), `${init} headline`);
        }
      }
      for (const n of ["source1OwnDistribution", "source2OwnDistribution"]) {
        assert.equal(json.scores[n].length, 2, n);
        assert.ok(json.scores[n][0].finalRaw > 0, n);
      }
      // Different seeds, different runs.
      assert.notEqual(json.scores.random[0].finalRaw, json.scores.random[1].finalRaw);
      assert.equal(json.runs.seed1.finetune_random.timing.gSteps, 2);
      assert.equal(json.config.source1, "ring");
      await assertPng(whole.files.png);

      const out = `${dir}/killed`;
      await assert.rejects(
        runTransferStudy({ ...base, out, onProgress: killAt("seed 1 finetune source2", 2) }),
        Killed,
      );
      const resumed = await runTransferStudy({ ...base, out });
      assert.deepEqual(resumed.perSeed, whole.perSeed);
      assert.deepEqual(resumed.w1, whole.w1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
