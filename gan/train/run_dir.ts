// A training run's directory: config.json (the full configuration), stats.jsonl (one line per tick),
// sample grids (reals.png, fakes-NIMG.png) and snapshots (snapshot-NIMG.safetensors, see snapshot.ts).

import { writeFileAtomic } from "../../nn/checkpoint.ts";

const SNAPSHOT_RE = /^snapshot-(\d+)\.safetensors$/;

/** The fields of a stats.jsonl tick line that are not loss means (gan/train/loop.ts writes them). */
const TICK_FIELDS = new Set([
  "tick",
  "step",
  "kimg",
  "secPerTick",
  "secPerKimg",
  "imagesPerSecond",
  "snapshot",
  "liveMiB",
  "time",
]);

/** Paths and small files of one run. */
export class RunDir {
  constructor(readonly path: string) {}

  /** Creates the directory (and parents) if needed. */
  static async open(path: string): Promise<RunDir> {
    if (!path) throw new Error("run directory: no path given");
    await Deno.mkdir(path, { recursive: true });
    return new RunDir(path);
  }

  file(name: string): string {
    return `${this.path}/${name}`;
  }

  snapshotPath(nimg: number): string {
    return this.file(`snapshot-${String(nimg).padStart(9, "0")}.safetensors`);
  }

  gridPath(nimg: number): string {
    return this.file(`fakes-${String(nimg).padStart(9, "0")}.png`);
  }

  async writeConfig(config: unknown): Promise<void> {
    await writeFileAtomic(this.file("config.json"), JSON.stringify(config, null, 2) + "\n");
  }

  async readConfig(): Promise<Record<string, unknown> | null> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.file("config.json"));
    } catch {
      return null;
    }
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`${this.file("config.json")}: not valid JSON (${(e as Error).message})`);
    }
  }

  /**
   * Prepares a fresh run: refuses a directory that already holds snapshots (resume it or pick another),
   * and drops the stats of an earlier attempt that never reached a snapshot.
   */
  async startFresh(): Promise<void> {
    if (this.listSnapshots().length) {
      throw new Error(
        `${this.path} already holds a training run's snapshots: resume it, or choose another directory`,
      );
    }
    await Deno.remove(this.file("stats.jsonl")).catch(() => {});
  }

  /** Appends one JSON line to stats.jsonl. */
  async appendStats(line: Record<string, unknown>): Promise<void> {
    await Deno.writeTextFile(this.file("stats.jsonl"), JSON.stringify(line) + "\n", { append: true });
  }

  /** stats.jsonl lines (empty if none). */
  async readStats(): Promise<Record<string, unknown>[]> {
    let text = "";
    try {
      text = await Deno.readTextFile(this.file("stats.jsonl"));
    } catch {
      return [];
    }
    return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  }

  /**
   * The per-tick loss means of the newest tick line of stats.jsonl ({} if none): a finished run that is
   * resumed trains no tick, yet its summary should report what its last tick measured.
   */
  async lastTickStats(): Promise<Record<string, number>> {
    const line = (await this.readStats()).findLast((l) => !("diverged" in l));
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(line ?? {})) {
      if (!TICK_FIELDS.has(k) && typeof v === "number") out[k] = v;
    }
    return out;
  }

  /** Snapshots in this run, oldest first. */
  listSnapshots(): { path: string; nimg: number }[] {
    const out: { path: string; nimg: number }[] = [];
    try {
      for (const e of Deno.readDirSync(this.path)) {
        const m = e.isFile ? SNAPSHOT_RE.exec(e.name) : null;
        if (m) out.push({ path: this.file(e.name), nimg: Number(m[1]) });
      }
    } catch {
      return [];
    }
    return out.sort((a, b) => a.nimg - b.nimg);
  }

  latestSnapshot(): string | null {
    const all = this.listSnapshots();
    return all.length ? all[all.length - 1].path : null;
  }

  /** Deletes all but the newest `keep` snapshots (keep 0 = keep all). */
  async pruneSnapshots(keep: number): Promise<void> {
    if (keep <= 0) return;
    const all = this.listSnapshots();
    for (const s of all.slice(0, Math.max(0, all.length - keep))) await Deno.remove(s.path).catch(() => {});
  }
}
