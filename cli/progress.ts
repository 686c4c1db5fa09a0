// A one-line progress bar on stderr: done/total, rate, ETA and free-form stats. Redraws at most every 100 ms;
// on a non-terminal (CI logs) it prints a plain line every 10%.

export class Progress {
  private start = performance.now();
  private lastDraw = 0;
  private lastDecile = -1;
  private readonly tty = Deno.stderr.isTerminal();
  private readonly enc = new TextEncoder();

  constructor(readonly label: string, readonly total: number, readonly unit = "it") {}

  update(done: number, stats: Record<string, string | number> = {}): void {
    const now = performance.now();
    // Work done in whole batches can pass the total; the display never goes above 100%.
    done = Math.min(Math.max(done, 0), this.total);
    const frac = this.total > 0 ? Math.min(done / this.total, 1) : 0;
    const decile = Math.floor(frac * 10);
    if (this.tty ? now - this.lastDraw < 100 && done < this.total : decile === this.lastDecile) return;
    this.lastDraw = now;
    this.lastDecile = decile;
    const secs = (now - this.start) / 1000;
    const rate = done / Math.max(secs, 1e-9);
    const eta = rate > 0 ? Math.max(0, this.total - done) / rate : 0;
    const width = 24;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, ".");
    const extra = Object.entries(stats).map(([k, v]) => `${k} ${typeof v === "number" ? fmt(v) : v}`).join(
      "  ",
    );
    const line = `${this.label} [${bar}] ${done}/${this.total} ${fmt(rate)} ${this.unit}/s ETA ${
      clock(eta)
    } ${extra}`;
    Deno.stderr.writeSync(this.enc.encode(this.tty ? `\r\x1b[K${line}` : `${line}\n`));
  }

  done(stats: Record<string, string | number> = {}): void {
    this.update(this.total, stats);
    if (this.tty) Deno.stderr.writeSync(this.enc.encode("\n"));
  }
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/** Seconds as m:ss, or XhYYm from an hour on; rounded to whole seconds first (17:59.6 is 18:00, not 17:60). */
export function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(Math.max(seconds, 0));
  const m = Math.floor(s / 60), r = s % 60;
  return m >= 60
    ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`
    : `${m}:${String(r).padStart(2, "0")}`;
}
