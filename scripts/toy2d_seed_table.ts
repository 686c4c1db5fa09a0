// Prints the README's table of the 2-D transfer study over seeds: our `study transfer` JSON beside the
// PyTorch reference's JSON files (scripts/toy2d_reference.py --json), mean +- sample sd over seeds and the
// per-seed values, for the headline score, final raw and EMA W1, best raw W1 after step 0, and the start
// measures (recall, gradient similarity).
//   deno run -A scripts/toy2d_seed_table.ts OURS.json [REF.json ...]

interface Scores {
  seed: number;
  headline: number;
  finalRaw: number;
  finalEma: number;
  bestAfter0Raw: number;
  recall?: number;
  gradSimilarity?: number;
}

const RUNS: [ours: string, ref: string, label: string][] = [
  ["source1", "finetune_source1", "fine-tuned from source I"],
  ["source2", "finetune_source2", "fine-tuned from source II"],
  ["random", "finetune_random", "from random init"],
  ["source1OwnDistribution", "source1", "source I, W1 to its own data"],
  ["source2OwnDistribution", "source2", "source II, W1 to its own data"],
];
const FIELDS: (keyof Scores)[] = [
  "headline",
  "finalRaw",
  "finalEma",
  "bestAfter0Raw",
  "recall",
  "gradSimilarity",
];

function summary(xs: number[], digits: number): string {
  if (xs.length === 0) return "";
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const per = xs.map((x) => x.toFixed(digits)).join(", ");
  if (xs.length === 1) return m.toFixed(digits);
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
  return `${m.toFixed(digits)} +- ${sd.toFixed(digits)} (${per})`;
}

function oursScores(path: string): Record<string, Scores[]> {
  const j = JSON.parse(Deno.readTextFileSync(path));
  const out: Record<string, Scores[]> = {};
  for (const [key] of RUNS) out[key] = j.scores[key] ?? [];
  return out;
}

function refScores(paths: string[]): Record<string, Scores[]> {
  const out: Record<string, Scores[]> = {};
  for (const [key] of RUNS) out[key] = [];
  for (const p of paths) {
    for (const s of JSON.parse(Deno.readTextFileSync(p)).seeds) {
      for (const [key, ref] of RUNS) {
        if (s.runs[ref]) out[key].push({ seed: s.seed, ...s.runs[ref] });
      }
    }
  }
  return out;
}

if (import.meta.main) {
  const [oursPath, ...refPaths] = Deno.args;
  if (!oursPath) {
    console.error("usage: deno run -A scripts/toy2d_seed_table.ts OURS.json [REF.json ...]");
    Deno.exit(2);
  }
  const sides: [string, Record<string, Scores[]>][] = [["ours", oursScores(oursPath)]];
  if (refPaths.length) sides.push(["PyTorch ref", refScores(refPaths)]);
  console.log("| run | impl | seeds | " + FIELDS.join(" | ") + " |");
  console.log("| --- | --- | --- | " + FIELDS.map(() => "---").join(" | ") + " |");
  for (const [key, , label] of RUNS) {
    for (const [name, sc] of sides) {
      const rows = sc[key].sort((a, b) => a.seed - b.seed);
      const cells = FIELDS.map((f) =>
        summary(rows.map((r) => r[f] as number).filter((v) => typeof v === "number"), 2)
      );
      console.log(`| ${label} | ${name} | ${rows.map((r) => r.seed).join(",")} | ${cells.join(" | ")} |`);
    }
  }
}
