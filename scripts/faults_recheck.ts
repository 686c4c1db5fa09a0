// Recompares the final numbers of a finished `deno task faults` work directory (after a change to what
// counts as a number in tests/faults_lib.ts): deno run -A scripts/faults_recheck.ts WORK_DIR
import { checkRunDir, finalNumbers, sameNumbers } from "../tests/faults_lib.ts";

const work = Deno.args[0];
if (!work) throw new Error("usage: faults_recheck.ts WORK_DIR");
const results = { train: "train", study: "transfer.json", compare: "report.json" } as const;
for (const [key, result] of Object.entries(results)) {
  let want: unknown;
  try {
    want = await finalNumbers(`${work}/${key}-reference`, result);
  } catch {
    continue;
  }
  const runs = [...Deno.readDirSync(work)].map((e) => e.name).filter((n) => n.startsWith(`${key}-kill`));
  for (const name of runs.sort()) {
    const dir = `${work}/${name}`;
    let same = false;
    try {
      same = sameNumbers(await finalNumbers(dir, result), want);
    } catch { /* unfinished */ }
    console.log(JSON.stringify({ run: name, same, broken: await checkRunDir(dir) }));
  }
}
