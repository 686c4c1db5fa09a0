// `select`: the pretrained-GAN study's checkpoint-selection recipe (REFERENCE.md 7). Each candidate's images
// are scored against the target dataset by FID, KID, precision and recall; candidates are ranked, and the
// recommendation follows the study's finding that FID and recall guide well while precision does not.

import { initGPU } from "../kernels/runtime.ts";
import { fidFromStats, statsFromFeatures } from "../metrics/fid.ts";
import { kid } from "../metrics/kid.ts";
import { precisionRecall } from "../metrics/precision_recall.ts";
import { dirname } from "node:path";
import { writeFileAtomic } from "../nn/checkpoint.ts";
import { num, parse, report } from "./args.ts";
import { featuresOf, lazyNet } from "./fid.ts";

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
    "usage: cli.ts select --target DATASET --candidates SNAP [SNAP ...] [options]\n\n" +
      "Ranks candidate pretrained checkpoints for fine-tuning on a target dataset by FID, KID, precision and\n" +
      "recall of their samples against the target. The recommendation is the best mean of the FID rank and the\n" +
      "recall rank (the study found both useful guides, precision unreliable); ties go to the lower FID.",
    {
      target: { type: "string", help: "target dataset spec (mnist:0-4, folder:PATH, zip:PATH, ...)" },
      candidates: { type: "string", help: "first candidate snapshot (more follow as positional arguments)" },
      features: { type: "string", help: "feature network", default: "mnist" },
      n: { type: "string", help: "images per candidate and from the target", default: "2000" },
      k: { type: "string", help: "k for precision/recall (the study used 5)", default: "5" },
      seed: { type: "string", help: "seed for the candidates' samples", default: "0" },
      json: { type: "boolean", help: "print one JSON object as the last line" },
      out: { type: "string", help: "also write the result JSON to this file (atomically)" },
    },
  );
  if (!values.target) throw new Error("select needs --target DATASET");
  const candidates = [...(values.candidates ? [String(values.candidates)] : []), ...positionals];
  if (candidates.length < 1) throw new Error("select needs at least one candidate (--candidates SNAP ...)");
  await initGPU();
  const net = lazyNet(String(values.features));
  const n = num(values.n, "n"), k = num(values.k, "k"), seed = num(values.seed, "seed");
  const target = await featuresOf(String(values.target), net.get, n, seed);
  const targetStats = await statsFromFeatures(target.data, target.n, target.d, { ddof: 1 });
  const scored: Scored[] = [];
  for (const c of candidates) {
    const f = await featuresOf(c, net.get, n, seed);
    const s = await statsFromFeatures(f.data, f.n, f.d, { ddof: 1 });
    const fid = (await fidFromStats(targetStats, s, f.d)).fid;
    const kd = (await kid(target.data, target.n, f.data, f.n, f.d, { seed })).kid;
    const pr = await precisionRecall(target.data, target.n, f.data, f.n, f.d, { k });
    scored.push({ candidate: c, fid, kid: kd, precision: pr.precision, recall: pr.recall });
  }
  const ranking = rankCandidates(scored);
  const result = {
    target: values.target,
    ranking,
    recommendation: ranking[0].candidate,
    rule: "best mean of FID rank and recall rank; ties to lower FID",
    featureNetwork: net.name(),
    covariance: "N-1",
    k,
    n,
  };
  if (values.out) {
    await Deno.mkdir(dirname(String(values.out)), { recursive: true });
    await writeFileAtomic(String(values.out), JSON.stringify(result, null, 2) + "\n");
  }
  report(result, !!values.json, selectionText(ranking, net.name(), k));
}

/** Ranks scored candidates by the mean of their FID rank and recall rank (ties to the lower FID). */
export function rankCandidates(scored: Scored[]): Scored[] {
  const out = scored.map((s) => ({ ...s }));
  const fr = ranks(out.map((s) => s.fid), "low"), rr = ranks(out.map((s) => s.recall), "high");
  out.forEach((s, i) => Object.assign(s, { fidRank: fr[i], recallRank: rr[i], score: (fr[i] + rr[i]) / 2 }));
  return out.sort((a, b) => a.score! - b.score! || a.fid - b.fid);
}

/** The ranking as select prints it. */
export function selectionText(ranking: Scored[], featureNetwork: string, k: number): string {
  const rows = ranking.map((s, i) =>
    `${String(i + 1).padStart(2)}. ${s.candidate}\n      FID ${s.fid.toFixed(2)}  KID ${
      s.kid.toExponential(2)
    }  ` +
    `precision ${s.precision.toFixed(3)}  recall ${
      s.recall.toFixed(3)
    }  (FID rank ${s.fidRank}, recall rank ${s.recallRank})`
  );
  return `${rows.join("\n")}\n\nrecommended starting checkpoint: ${ranking[0].candidate}\n` +
    `(rule: best mean of FID rank and recall rank; feature network ${featureNetwork}; covariance N-1; k ${k})`;
}
