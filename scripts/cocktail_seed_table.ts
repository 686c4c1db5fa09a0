// Per-seed rows and mean +- sample standard deviation over seeds of `compare` reports (report.json files,
// one or more per seed; a method's row comes from whichever report holds it), as a markdown table.
// usage: deno run -A scripts/cocktail_seed_table.ts SEED=REPORT[,REPORT...] ...

interface ClassScores {
  fid: number;
  fidelity?: number;
  digitSetShare?: number;
}
interface MethodScores {
  unionFid: number;
  union: { kid: number; precision: number; recall: number };
  perClass: ClassScores[];
  real?: { fid: number };
}

const NAMES: Record<string, string> = {
  cocktail: "cocktail",
  transfer: "TransferGAN",
  ewc: "EWC",
  freezed: "Freeze-D",
  scratch: "from scratch",
  realdata: "real-data bound",
};

const rows: { seed: string; method: string; values: number[] }[] = [];
for (const arg of Deno.args) {
  const [seed, files] = arg.split("=");
  if (!files) throw new Error(`expected SEED=REPORT[,REPORT], got '${arg}'`);
  for (const f of files.split(",")) {
    const rep = JSON.parse(Deno.readTextFileSync(f)) as {
      seed: number;
      methods: Record<string, MethodScores>;
    };
    if (String(rep.seed) !== seed) throw new Error(`${f} is seed ${rep.seed}, not ${seed}`);
    for (const [m, x] of Object.entries(rep.methods)) {
      const [c0, c1] = x.perClass;
      rows.push({
        seed,
        method: m,
        values: [
          x.unionFid,
          c0.fid,
          c1.fid,
          c0.fidelity ?? NaN,
          c1.fidelity ?? NaN,
          x.real?.fid ?? NaN,
          x.union.kid,
          x.union.precision,
          x.union.recall,
        ],
      });
    }
  }
}

const HEAD = [
  "union FID",
  "FID c0",
  "FID c1",
  "fidelity c0",
  "fidelity c1",
  "FID vs real",
  "KID",
  "prec",
  "rec",
];
const DIGITS = [1, 1, 1, 3, 3, 1, 2, 3, 3];
const fmt = (v: number, i: number) => Number.isNaN(v) ? "-" : v.toFixed(DIGITS[i]);
console.log(`| method | seed | ${HEAD.join(" | ")} |`);
console.log(`| --- | --- | ${HEAD.map(() => "---").join(" | ")} |`);
const methods = [...new Set(rows.map((r) => r.method))];
for (const m of methods) {
  const mine = rows.filter((r) => r.method === m).sort((a, b) => a.seed.localeCompare(b.seed));
  for (const r of mine) console.log(`| ${NAMES[m] ?? m} | ${r.seed} | ${r.values.map(fmt).join(" | ")} |`);
  if (mine.length < 2) continue;
  const stats = HEAD.map((_, i) => {
    const v = mine.map((r) => r.values[i]), mu = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - mu) ** 2, 0) / (v.length - 1));
    return `${fmt(mu, i)} +- ${fmt(sd, i)}`;
  });
  console.log(`| **${NAMES[m] ?? m}** | mean +- sd (${mine.length}) | ${stats.join(" | ")} |`);
}
