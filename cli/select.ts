// `select`: the pretrained-GAN study's checkpoint-selection recipe (REFERENCE.md 7). Each candidate's images
// are scored against the target dataset by FID, KID, precision and recall; candidates are ranked, and the
// recommendation follows the study's finding that FID and recall guide well while precision does not.

import { initGPU } from "../kernels/runtime.ts";
import { fidFromStats, statsFromFeatures } from "../metrics/fid.ts";
import { kid } from "../metrics/kid.ts";
import { precisionRecall } from "../metrics/precision_recall.ts";
import { parseFidMode } from "../metrics/features/resize.ts";
import { dirname } from "node:path";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { num, parse, report } from "./args.ts";
import {
  COMMON,
  DDOF_OPTION,
  ddofOption,
  ddofText,
  disposePlan,
  featuresOfInput,
  fidModeText,
  planMetrics,
} from "./fid.ts";
import { isGeneratorSpec, positiveCount } from "./inputs.ts";

export interface Scored {
  candidate: string;
  fid: number;
  kid: number;
  precision: number;
  recall: number;
  fidRank?: number;
  recallRank?: number;
  score?: number;
}

/** Ranks (1 = best) of values, ascending or descending. */
function ranks(values: number[], better: "low" | "high"): number[] {
  const order = values.map((v, i) => [v, i] as const).sort((
    a,
    b,
  ) => (better === "low" ? a[0] - b[0] : b[0] - a[0]));
  const r = new Array(values.length);
  order.forEach(([, i], pos) => (r[i] = pos + 1));
  return r;
}

export async function selectCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(
    args,
    "usage: cli.ts select --target DATASET --candidates GEN [GEN ...] [options]\n\n" +
      "Ranks candidate pretrained checkpoints for fine-tuning on a target dataset by FID, KID, precision and\n" +
      "recall of their samples against the target. The recommendation is the best mean of the FID rank and the\n" +
      "recall rank (the study found both useful guides, precision unreliable); ties go to the lower FID.\n" +
      "A candidate is a snapshot, a run directory (its latest snapshot), an SGA .pkl, a DCGAN snapshot or\n" +
      "PATH#CLASS. All are compared at one resolution: the smallest of the target's and the candidates'.",
    {
      target: { type: "string", help: "target dataset spec (mnist:0-4, folder:PATH, zip:PATH, ...)" },
      candidates: { type: "string", help: "first candidate generator (more follow as positional arguments)" },
      features: COMMON.features,
      "fid-mode": COMMON["fid-mode"],
      n: { type: "string", help: "images per candidate and from the target", default: "2000" },
      k: { type: "string", help: "k for precision/recall (the study used 5)", default: "5" },
      ddof: DDOF_OPTION,
      seed: { type: "string", help: "seed for the candidates' samples", default: "0" },
      json: { type: "boolean", help: "print one JSON object as the last line" },
      out: { type: "string", help: "also write the result JSON to this file (atomically)" },
    },
  );
  if (!values.target) throw new Error("select needs --target DATASET");
  const candidates = [...(values.candidates ? [String(values.candidates)] : []), ...positionals];
  if (candidates.length < 1) throw new Error("select needs at least one candidate (--candidates GEN ...)");
  const ddof = ddofOption(values.ddof);
  const k = positiveCount(num(values.k, "k"), "k");
  const target = String(values.target);
  if (isGeneratorSpec(target)) throw new Error(`--target ${target} is a generator; give a dataset spec`);
  for (const c of candidates) {
    if (!isGeneratorSpec(c)) {
      throw new Error(
        `candidate ${c} is not a generator (a .safetensors or .pkl snapshot, a run directory with ` +
          "snapshots, or PATH#CLASS)",
      );
    }
  }
  const seed = num(values.seed, "seed");
  await initGPU();
  const p = await planMetrics([target, ...candidates], {
    features: String(values.features),
    fidMode: parseFidMode(values["fid-mode"]),
    n: num(values.n, "n"),
    seed,
    need: "features",
  });
  try {
    const t = await featuresOfInput(p, p.inputs[0], seed);
    const targetStats = await statsFromFeatures(t.data, t.n, t.d, { ddof });
    const scored: Scored[] = [];
    let covariance = "";
    for (const [i, c] of candidates.entries()) {
      const f = await featuresOfInput(p, p.inputs[i + 1], seed);
      const s = await statsFromFeatures(f.data, f.n, f.d, { ddof });
      const fr = await fidFromStats(targetStats, s, f.d);
      covariance = ddofText(fr);
      const kd = (await kid(t.data, t.n, f.data, f.n, f.d, { seed })).kid;
      const pr = await precisionRecall(t.data, t.n, f.data, f.n, f.d, { k });
      scored.push({ candidate: c, fid: fr.fid, kid: kd, precision: pr.precision, recall: pr.recall });
    }
    const ranking = rankCandidates(scored);
    const net = p.net!.name;
    const result = {
      target,
      ranking,
      recommendation: ranking[0].candidate,
      rule: "best mean of FID rank and recall rank; ties to lower FID",
      featureNetwork: net,
      fidMode: p.net!.fidMode ?? null,
      resolution: p.resolution,
      covariance,
      k,
      n: p.n,
    };
    if (values.out) {
      await Deno.mkdir(dirname(String(values.out)), { recursive: true });
      await writeFileAtomic(String(values.out), JSON.stringify(result, null, 2) + "\n");
    }
    report(
      result,
      !!values.json,
      selectionText(
        ranking,
        `target ${t.what}; feature network ${net}; FID mode ${fidModeText(p)}; ` +
          `resolution ${p.resolutionNote}; covariance ${covariance}; k ${k}`,
      ),
    );
  } finally {
    disposePlan(p);
  }
}

/** Ranks scored candidates by the mean of their FID rank and recall rank (ties to the lower FID). */
export function rankCandidates(scored: Scored[]): Scored[] {
  const out = scored.map((s) => ({ ...s }));
  const fr = ranks(out.map((s) => s.fid), "low"), rr = ranks(out.map((s) => s.recall), "high");
  out.forEach((s, i) => Object.assign(s, { fidRank: fr[i], recallRank: rr[i], score: (fr[i] + rr[i]) / 2 }));
  return out.sort((a, b) => a.score! - b.score! || a.fid - b.fid);
}

/** The ranking as select prints it. */
export function selectionText(ranking: Scored[], details: string): string {
  const rows = ranking.map((s, i) =>
    `${String(i + 1).padStart(2)}. ${s.candidate}\n      FID ${s.fid.toFixed(2)}  KID ${
      s.kid.toExponential(2)
    }  ` +
    `precision ${s.precision.toFixed(3)}  recall ${
      s.recall.toFixed(3)
    }  (FID rank ${s.fidRank}, recall rank ${s.recallRank})`
  );
  return `${rows.join("\n")}\n\nrecommended starting checkpoint: ${ranking[0].candidate}\n` +
    `(rule: best mean of FID rank and recall rank; ${details})`;
}
