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
      assert.equal(json.checkpoints.length, 3);
      json.checkpoints.forEach((c: CheckpointResult, i: number) => {
        assert.equal(c.index, i + 1);
        assert.equal(c.sourceStep, 2 * (i + 1));
        assert.ok(c.recall >= 0 && c.recall <= 1, `recall ${c.recall}`);
        assert.ok(c.gradSimilarity >= -1 && c.gradSimilarity <= 1, `gradSimilarity ${c.gradSimilarity}`);
        assert.ok(c.finalW1 > 0 && Number.isFinite(c.finalW1), `finalW1 ${c.finalW1}`);
        assert.ok(c.bestW1 <= c.finalW1, `best ${c.bestW1} > final ${c.finalW1}`);
        assert.ok(c.timing && c.timing.dispatches > 0, "checkpoint timing recorded");
      });
      assert.ok(json.config.protocol.lr === 2e-4 && json.config.checkpoints === 3, "config recorded");
      assert.ok(json.phases.sourceMs > 0);
      assert.equal(json.phases.finetuneMs, whole.checkpoints.reduce((a, c) => a + c.wallMs, 0));
      const lines = (await Deno.readTextFile(whole.files.jsonl)).trim().split("\n");
      assert.equal(lines.length, 3);
      await assertPng(whole.files.png);

      const kills = [
        ["source", killAt("train source I", 2)], // after checkpoint 1 of 3 was written
        ["finetune", killAt("finetune checkpoint 2/3", 2)], // checkpoint 1 recorded, 2 at its last step
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
      const base = { ...SMALL, gSteps: 2 };
      const whole = await runTransferStudy({ ...base, out: `${dir}/whole` });
      const json = JSON.parse(await Deno.readTextFile(whole.files.json));
      for (const key of ["w1", "bestW1", "recall", "gradSimilarity"]) {
        assert.deepEqual(Object.keys(json[key]).sort(), ["random", "source1", "source2"], key);
      }
      for (const w of Object.values(json.w1) as number[]) assert.ok(w > 0 && Number.isFinite(w), `w1 ${w}`);
      assert.equal(json.runs.finetune_random.timing.gSteps, 2);
      await assertPng(whole.files.png);

      const out = `${dir}/killed`;
      await assert.rejects(
        runTransferStudy({ ...base, out, onProgress: killAt("finetune from source2", 2) }),
        Killed,
      );
      const resumed = await runTransferStudy({ ...base, out });
      for (
        const key of ["w1", "bestW1", "startW1", "recall", "precision", "gradSimilarity", "sources"] as const
      ) {
        assert.deepEqual(resumed[key], whole[key], key);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
