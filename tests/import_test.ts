// `cli.ts import`: SGA network pickles and torch.save state-dict zips become snapshots whose G_ema matches
// an independent PyTorch implementation (tests/golden/make_import_golden.py); bad files write nothing.
import assert from "node:assert";
import { importCommand, importNetworks } from "../cli/import.ts";
import { networksFromSnapshot } from "../gan/train/networks.ts";
import { disposeSnapshot, readSnapshot } from "../gan/train/snapshot.ts";
import { loadNpy } from "../nn/checkpoint.ts";
import { assertClose, gpuTest } from "./harness.ts";

const GOLD = "tests/golden/import";
const MARKERS = ["/tmp/import_golden_src_executed", "/tmp/io_golden_pwned"];

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

/** Loads the snapshot and checks G_ema(z, c) (noise const) against the PyTorch output. */
async function checkSnapshot(path: string, expectD: boolean) {
  const snap = await readSnapshot(path);
  const nets = networksFromSnapshot(snap, path);
  disposeSnapshot(snap);
  try {
    const z = await loadNpy(`${GOLD}/z.npy`), c = await loadNpy(`${GOLD}/c.npy`);
    const want = await loadNpy(`${GOLD}/img.npy`);
    const img = nets.Gema.forward(z, c, { noiseMode: "const" });
    assertClose(await img.data(), await want.data(), { rtol: 1e-4, atol: 1e-4, what: "G_ema image" });
    // G holds other weights than G_ema: the importer must not have mixed them up.
    const g = nets.G.forward(z, c, { noiseMode: "const" });
    const gd = await g.data(), wd = await want.data();
    assert(gd.some((v, i) => Math.abs(v - wd[i]) > 1e-2), "G equals G_ema: networks were mixed up");
    assert(nets.D !== null && expectD === (snap.parts.has("D")));
    for (const t of [z, c, want, img, g]) t.dispose();
  } finally {
    for (const m of [nets.G, nets.D, nets.Gema]) m.dispose();
  }
}

async function withTmp(fn: (dir: string) => Promise<void>) {
  for (const m of MARKERS) await Deno.remove(m).catch(() => {});
  const dir = await Deno.makeTempDir({ prefix: "import_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  for (const m of MARKERS) assert(!(await exists(m)), `a Python payload ran: ${m} exists`);
}

gpuTest("import: SGA network pickle through the CLI", () =>
  withTmp(async (dir) => {
    const out = `${dir}/snap.safetensors`;
    await importCommand([`${GOLD}/network-snapshot.pkl`, "--out", out, "--json"]);
    await checkSnapshot(out, true);
  }));

gpuTest("import: torch.save zip of state dicts with --arch", () =>
  withTmp(async (dir) => {
    const out = `${dir}/snap.safetensors`;
    await importCommand([`${GOLD}/state_dicts.pt`, "--out", out, "--arch", `${GOLD}/arch.json`]);
    await checkSnapshot(out, true);
  }));

gpuTest("import: a single generator state dict becomes G_ema (and G), D fresh", () =>
  withTmp(async (dir) => {
    const out = `${dir}/snap.safetensors`;
    const arch = JSON.parse(await Deno.readTextFile(`${GOLD}/arch.json`));
    const r = await importNetworks(`${GOLD}/g_ema_only.pt`, out, { G: arch.G_init_kwargs, D: null });
    assert(r.fromFile.join() === "G_ema", r.fromFile.join());
    assert(r.notes.some((n) => n.includes("freshly initialised")));
    const snap = await readSnapshot(out);
    const nets = networksFromSnapshot(snap, out);
    disposeSnapshot(snap);
    const z = await loadNpy(`${GOLD}/z.npy`), c = await loadNpy(`${GOLD}/c.npy`);
    const want = await loadNpy(`${GOLD}/img.npy`);
    for (const G of [nets.Gema, nets.G]) {
      const img = G.forward(z, c, { noiseMode: "const" });
      assertClose(await img.data(), await want.data(), { rtol: 1e-4, atol: 1e-4, what: "image" });
    }
    for (const m of [nets.G, nets.D, nets.Gema]) m.dispose();
  }));

gpuTest("import: bad input gives a clear error and writes nothing", () =>
  withTmp(async (dir) => {
    const out = `${dir}/snap.safetensors`;
    const fails = async (args: string[], pattern: RegExp) => {
      await assert.rejects(() => importCommand([...args, "--out", out]), pattern);
      assert(!(await exists(out)), `${args.join(" ")}: a snapshot was written`);
      const left = [];
      for await (const e of Deno.readDir(dir)) left.push(e.name);
      assert(left.length === 0, `files left behind: ${left.join(", ")}`);
    };
    // The architecture is not in a state-dict file.
    await fails([`${GOLD}/state_dicts.pt`], /--arch.*--preset/s);
    // Pickles that would run a command if unpickled by Python.
    await fails(["tests/golden/io/malicious_p2.pkl"], /malicious_p2\.pkl/);
    await fails(["tests/golden/io/malicious_p4.pkl"], /malicious_p4\.pkl/);
    // Truncated and corrupted network pickles.
    const bytes = await Deno.readFile(`${GOLD}/network-snapshot.pkl`);
    await Deno.writeFile(`${dir}/../import_test_trunc.pkl`, bytes.slice(0, bytes.length >> 1));
    try {
      await fails([`${dir}/../import_test_trunc.pkl`], /import_test_trunc\.pkl/);
    } finally {
      await Deno.remove(`${dir}/../import_test_trunc.pkl`);
    }
    // Wrong architecture: strict loading names the problem.
    await fails([`${GOLD}/state_dicts.pt`, "--preset", "tiny16"], /G: /);
    await fails(["tests/golden/io/f4_le.npy"], /not a network pickle or a torch\.save zip/);
    await fails([`${dir}/missing.pkl`], /cannot read/);
  }));
