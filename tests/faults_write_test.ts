// Writes that cannot happen: a missing folder, a read-only folder and a full disk give errors
// that name the destination path, never the temporary file, and leave nothing behind.

import { writeFileAtomic } from "../nn/checkpoint.ts";

async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected the write to fail");
}

Deno.test("writeFileAtomic: a missing folder is named in the error, not the temporary file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/missing/grid.png`;
  const e = await errorOf(writeFileAtomic(path, new Uint8Array(4)));
  if (
    e.constructor !== Error ||
    !e.message.startsWith(`cannot write ${path}: the folder ${dir}/missing does not exist`)
  ) {
    throw new Error(`unclear error: ${e.message}`);
  }
  if (e.message.includes(".tmp")) throw new Error(`error names the temporary file: ${e.message}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFileAtomic: an unwritable folder is named (skipped as root, which ignores permission bits)", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o500);
  const isRoot = Deno.uid() === 0; // root ignores permission bits
  if (!isRoot) {
    const e = await errorOf(writeFileAtomic(`${dir}/x.json`, "{}"));
    if (!/^cannot write .*x\.json: permission denied/.test(e.message)) throw new Error(e.message);
  }
  await Deno.chmod(dir, 0o700);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFileAtomic: a full disk (a 64 KiB tmpfs, where mounting is allowed) names the path and the cause", async () => {
  const dir = await Deno.makeTempDir();
  const mount = new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
    stderr: "null",
  });
  if (!(await mount.output()).success) {
    console.log("  (cannot mount a tmpfs here: disk-full case skipped)");
    await Deno.remove(dir);
    return;
  }
  try {
    const path = `${dir}/snapshot-000000016.safetensors`;
    const e = await errorOf(writeFileAtomic(path, new Uint8Array(1 << 20)));
    if (e.message !== `cannot write ${path}: the disk is full (no space left on device)`) {
      throw new Error(e.message);
    }
    const left = [...Deno.readDirSync(dir)];
    if (left.length) throw new Error(`files left behind: ${left.map((f) => f.name)}`);
  } finally {
    await new Deno.Command("umount", { args: [dir] }).output();
    await Deno.remove(dir, { recursive: true });
  }
});
