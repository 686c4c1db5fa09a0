// The command line end to end: each metric command on small files, its --json line checked against the
// float64 references, and clear errors for bad input.

import { clock } from "../cli/progress.ts";
import { encodeNpy } from "../nn/io/npy.ts";
import { fidRef, meanCov } from "../metrics/linalg64.ts";
import { precisionRecallRef } from "../metrics/precision_recall.ts";
import { w1 } from "../metrics/w1.ts";
import { assertClose, randArray } from "./harness.ts";

const deno = Deno.execPath();

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = await new Deno.Command(deno, {
    args: ["run", "-A", "cli.ts", ...args],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: p.code, out: dec.decode(p.stdout), err: dec.decode(p.stderr) };
}

function lastJson(out: string): Record<string, number> {
  const lines = out.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

async function npy(dir: string, name: string, data: Float32Array, shape: number[]): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, encodeNpy({ dtype: "f32", shape, data }));
  return path;
}

Deno.test({
  name: "cli: w1, fid, kid and pr --json agree with float64 references",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const n = 120, d = 6;
    const a = randArray(n * d, 1), b = randArray(n * d, 2).map((v) => v * 1.3 + 0.2);
    const fa = await npy(dir, "a.npy", a, [n, d]), fb = await npy(dir, "b.npy", b, [n, d]);
    const pa = await npy(dir, "pa.npy", a.slice(0, 80), [40, 2]),
      pb = await npy(dir, "pb.npy", b.slice(0, 80), [40, 2]);

    const rw = await cli("w1", pa, pb, "--json");
    assertClose([lastJson(rw.out).w1], [w1(a.slice(0, 80), b.slice(0, 80), 40)], { rtol: 1e-9, what: "w1" });

    const rf = await cli("fid", fa, fb, "--json");
    const sa = meanCov(a, n, d, 1), sb = meanCov(b, n, d, 1);
    const ref = fidRef(sa.mu, sa.sigma, sb.mu, sb.sigma, d).fid;
    assertClose([lastJson(rf.out).fid], [ref], { rtol: 1e-4, what: "fid" });

    const rp = await cli("pr", fa, fb, "--k", "3", "--json");
    const pr = precisionRecallRef(a, n, b, n, d, { k: 3 });
    const got = lastJson(rp.out);
    assertClose([got.precision, got.recall], [pr.precision, pr.recall], { rtol: 0, atol: 1e-9, what: "pr" });

    const rk = await cli("kid", fa, fb, "--subsets", "1", "--subset-size", "1000", "--json");
    if (!(lastJson(rk.out).kid > 0)) throw new Error(`kid: ${rk.out} ${rk.err}`);

    const bad = await cli("fid", fa, pa);
    if (bad.code === 0 || !/feature dimensions differ/.test(bad.err)) {
      throw new Error(`expected a clear error: ${bad.err}`);
    }
    const missing = await cli("w1", `${dir}/nope.npy`, pb);
    if (missing.code === 0 || !/nope\.npy/.test(missing.err)) {
      throw new Error(`expected a file error: ${missing.err}`);
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "cli: select ranks candidates; the same network imported twice scores the same",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const pkl = "tests/golden/import/network-snapshot.pkl";
    const snap = `${dir}/imported.safetensors`;
    const imp = await cli("import", pkl, "--out", snap);
    if (imp.code !== 0) throw new Error(`import failed: ${imp.err}`);
    const r = await cli("select", "--target", "mnist:0-4", "--candidates", pkl, snap, "--n", "32", "--json");
    if (r.code !== 0) throw new Error(`select failed: ${r.err}`);
    const out = JSON.parse(r.out.trim().split("\n").pop()!);
    if (out.ranking.length !== 2 || out.recommendation !== pkl) throw new Error(`ranking: ${r.out}`);
    const [a, b] = out.ranking;
    assertClose([a.fid, a.recall, a.precision], [b.fid, b.recall, b.precision], {
      rtol: 1e-6,
      what: "same network",
    });
    if (!/mnist-cnn-128/.test(out.featureNetwork)) {
      throw new Error(`feature network not named: ${out.featureNetwork}`);
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("progress ETA: whole seconds first, so 59.6 s of a minute carries (17:60 was printed)", () => {
  const cases: [number, string][] = [
    [0, "0:00"],
    [59.4, "0:59"],
    [59.6, "1:00"],
    [1079.6, "18:00"],
    [3599.6, "1h00m"],
    [8580, "2h23m"],
    [Infinity, "?"],
  ];
  for (const [s, want] of cases) {
    if (clock(s) !== want) throw new Error(`clock(${s}) = ${clock(s)}, expected ${want}`);
  }
});
