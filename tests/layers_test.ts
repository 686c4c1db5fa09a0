// Imports point down: kernels <- nn <- data, gan, metrics <- cli, web. The files that still reach past nn/
// into kernels/ are listed by name, so the list can only shrink (issue 11's "one engine path").

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** Layers a folder's files may import from (besides their own folder). */
const ALLOWED: Record<string, string[]> = {
  kernels: [],
  nn: ["kernels"],
  data: ["nn"],
  metrics: ["nn", "data"],
  gan: ["nn", "data", "metrics"],
};

/** Known exceptions (file -> the layer it may also import), to be removed, never added to. */
const EXCEPTIONS: Record<string, string> = {
  // The 2-D study's private fused path, until it trains through nn/.
  "gan/toy2d/fast_gan.ts": "kernels",
  "gan/toy2d/profile.ts": "kernels",
};

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* tsFiles(path);
    else if (e.name.endsWith(".ts")) yield path;
  }
}

/** The top-level folders a file's relative imports land in. */
function importedLayers(path: string, text: string): Set<string> {
  const layers = new Set<string>();
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
    const target = new URL(m[1], new URL(path, ROOT)).pathname.slice(ROOT.pathname.length);
    layers.add(target.split("/")[0]);
  }
  return layers;
}

Deno.test("layers: kernels, nn, data, metrics and gan import only the layers below them", async () => {
  const violations: string[] = [];
  const exceptionsUsed = new Set<string>();
  for (const layer of Object.keys(ALLOWED)) {
    for await (const path of tsFiles(layer)) {
      const text = await Deno.readTextFile(new URL(path, ROOT));
      for (const target of importedLayers(path, text)) {
        if (target === layer || ALLOWED[layer].includes(target)) continue;
        if (EXCEPTIONS[path] === target) {
          exceptionsUsed.add(path);
          continue;
        }
        violations.push(`${path} imports ${target}/`);
      }
    }
  }
  assert.deepEqual(violations, [], "imports that point up or skip nn/");
  // An exception that no longer imports past nn/ must leave the list.
  assert.deepEqual([...exceptionsUsed].sort(), Object.keys(EXCEPTIONS).sort(), "stale exceptions");
});
