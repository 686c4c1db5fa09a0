// The page: loads a snapshot (from `cli.ts serve --snapshot`, or a file chosen here), runs its G_ema on the
// browser's WebGPU through the same kernels/, nn/ and gan/stylegan2 code Deno runs, and redraws as the
// controls move. No Deno API anywhere below this file (tests/web_test.ts walks the import graph).
/// <reference lib="dom" />

import { setGemmPathSetting } from "../kernels/gemm.ts";
import { gpu, initGPU } from "../kernels/runtime.ts";
import { add } from "../nn/ops.ts";
import { fromHost } from "../nn/tensor.ts";
import { generatorFromSnapshotBytes } from "../gan/train/snapshot_bytes.ts";
import type { Generator } from "../gan/stylegan2/generator.ts";
import { directionFromJson, type SavedDirection } from "../gan/edit/direction.ts";
import { benchGenerate, DEFAULT_SETTINGS, directionEdit, renderRgba, type RenderSettings } from "./render.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let G: Generator | null = null;
let settings: RenderSettings = { ...DEFAULT_SETTINGS };
/** The loaded `edit direction` result; the slider moves ws along its normal. */
let direction: SavedDirection | null = null;
let rendering: Promise<void> | null = null;
let dirty = false;
/** The loaded snapshot, kept so a precision change rebuilds G from the file's f32 values. */
let loaded: { bytes: Uint8Array; name: string } | null = null;
/** The precision G runs in, and why f16 cannot be chosen here (null where it can). */
let precision: "f32" | "f16" = "f32";
let f16Unavailable: string | null = "not probed yet";

function showError(message: string): void {
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError(): void {
  $("error").textContent = "";
  $("error").hidden = true;
}

/** Reads the controls into the settings. */
function readControls(): RenderSettings {
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  const mode = (document.querySelector("input[name=mode]:checked") as HTMLInputElement).value;
  return {
    seed: Math.max(0, Math.trunc(num("seed"))),
    classA: num("classA"),
    classB: num("classB"),
    psi: num("psi"),
    noiseMode: $<HTMLSelectElement>("noise").value as RenderSettings["noiseMode"],
    mode: mode as RenderSettings["mode"],
    t: num("t"),
    cutoff: num("cutoff"),
    direction: num("direction"),
  };
}

/** Writes settings into the controls (the test and the URL set them this way). */
function writeControls(s: RenderSettings): void {
  $<HTMLInputElement>("seed").value = String(s.seed);
  $<HTMLSelectElement>("classA").value = String(s.classA);
  $<HTMLSelectElement>("classB").value = String(s.classB);
  $<HTMLInputElement>("psi").value = String(s.psi);
  $<HTMLSelectElement>("noise").value = s.noiseMode;
  (document.querySelector(`input[name=mode][value=${s.mode}]`) as HTMLInputElement).checked = true;
  $<HTMLInputElement>("t").value = String(s.t);
  $<HTMLInputElement>("cutoff").value = String(s.cutoff);
  $<HTMLInputElement>("direction").value = String(s.direction);
  showValues(s);
}

function showValues(s: RenderSettings): void {
  $("psiValue").textContent = s.psi.toFixed(2);
  $("tValue").textContent = s.t.toFixed(2);
  $("cutoffValue").textContent = `${s.cutoff} of ${G?.numWs ?? "?"}`;
  $("directionValue").textContent = `${s.direction >= 0 ? "+" : ""}${s.direction.toFixed(2)} std`;
}

async function draw(): Promise<void> {
  if (!G) return;
  const t0 = performance.now();
  const edit = direction ? directionEdit(direction, settings.direction) : null;
  const { width, height, rgba } = await renderRgba(G, settings, edit);
  const canvas = $<HTMLCanvasElement>("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d")!.putImageData(
    new ImageData(rgba as Uint8ClampedArray<ArrayBuffer>, width, height),
    0,
    0,
  );
  $("timing").textContent = `${(performance.now() - t0).toFixed(0)} ms`;
}

/** Redraws now, or once more after the draw in flight; resolves when the latest settings are drawn. */
function redraw(): Promise<void> {
  if (rendering) {
    dirty = true;
    return rendering;
  }
  rendering = (async () => {
    try {
      do {
        dirty = false;
        await draw();
      } while (dirty);
      clearError();
    } catch (e) {
      showError((e as Error).message);
    } finally {
      rendering = null;
    }
  })();
  return rendering;
}

/** Builds the generator from snapshot bytes; a bad file leaves the previous model and shows why. */
function loadSnapshot(bytes: Uint8Array, name: string): Promise<void> {
  let next: ReturnType<typeof generatorFromSnapshotBytes>;
  try {
    next = generatorFromSnapshotBytes(bytes, name);
  } catch (e) {
    showError(`cannot load ${name}: ${(e as Error).message}`);
    return Promise.resolve();
  }
  G?.dispose();
  G = next.G;
  loaded = { bytes, name };
  if (precision === "f16") G.toPrecision("f16");
  if (direction && direction.normal.length !== G.wDim) setDirection(null, "");
  const names = next.state.classNames ?? [];
  const options = Array.from(
    { length: G.cDim },
    (_, k) => `<option value="${k}">${k}${names[k] ? `: ${names[k]}` : ""}</option>`,
  )
    .join("");
  $("classA").innerHTML = options;
  $("classB").innerHTML = options;
  const conditional = G.cDim > 0;
  for (const id of ["classes", "modes"]) $(id).hidden = !conditional;
  $<HTMLInputElement>("cutoff").max = String(G.numWs);
  settings = {
    ...settings,
    classA: 0,
    classB: Math.min(1, Math.max(0, G.cDim - 1)),
    mode: conditional ? settings.mode : "sample",
  };
  settings.cutoff = Math.min(settings.cutoff, G.numWs);
  writeControls(settings);
  $("model").textContent = `${name}: ${G.imgResolution}x${G.imgResolution}, ${G.imgChannels} channel(s), ` +
    (conditional ? `${G.cDim} classes` : "unconditional") + `, ${G.numWs} ws, ${precision}`;
  clearError();
  return new URLSearchParams(location.search).has("noautodraw") ? Promise.resolve() : redraw();
}

/**
 * Runs the generator in f16 (weights and activations; f32 arithmetic in the kernels) or f32. Where the
 * adapter lacks a working shader-f16 the page says why and stays f32. G is rebuilt from the snapshot,
 * so going back to f32 restores the file's values rather than their f16 roundings.
 */
async function setPrecision(p: "f32" | "f16"): Promise<void> {
  if (p === "f16" && f16Unavailable) {
    $("precisionInfo").textContent = `f16 is not available here (${f16Unavailable}): running f32`;
    p = "f32";
  } else {
    $("precisionInfo").textContent = p === "f16" ? "f16 storage, f32 arithmetic inside kernels" : "";
  }
  $<HTMLSelectElement>("precision").value = p;
  if (p === precision) return;
  precision = p;
  if (loaded) await loadSnapshot(loaded.bytes, loaded.name);
}

/** Shows (or clears) the direction the slider moves along. */
function setDirection(d: SavedDirection | null, name: string): void {
  direction = d;
  $<HTMLInputElement>("direction").disabled = !d;
  $("directionInfo").textContent = d
    ? `${name}: ${d.attribute}, learned on class ${d.trainClass} (1 step = ${
      d.projectionStd.toFixed(3)
    } in W)`
    : "no direction loaded: choose the JSON of cli.ts edit direction";
}

/** Loads an `edit direction` JSON for the slider; a bad file keeps the previous one and shows why. */
function loadDirection(text: string, name: string): Promise<void> {
  if (!G) {
    showError(`cannot load ${name}: load a model first`);
    return Promise.resolve();
  }
  try {
    setDirection(directionFromJson(text, name, G.wDim), name);
  } catch (e) {
    showError(`cannot load ${name}: ${(e as Error).message}`);
    return Promise.resolve();
  }
  clearError();
  return redraw();
}

/** Sets some controls and resolves when the image shows them (tests and scripts drive the page so). */
async function set(partial: Partial<RenderSettings>): Promise<void> {
  settings = { ...settings, ...partial };
  writeControls(settings);
  await redraw();
}

async function loadFromServer(): Promise<void> {
  const res = await fetch("config.json").catch(() => null);
  if (!res?.ok) return;
  const config = await res.json() as { snapshot: string | null; direction?: string | null };
  if (!config.snapshot) return;
  const snap = await fetch("snapshot");
  if (!snap.ok) {
    showError(`cannot load ${config.snapshot}: the server answered ${snap.status}`);
    return;
  }
  await loadSnapshot(new Uint8Array(await snap.arrayBuffer()), config.snapshot);
  if (!config.direction) return;
  const dir = await fetch("direction");
  if (!dir.ok) showError(`cannot load ${config.direction}: the server answered ${dir.status}`);
  else await loadDirection(await dir.text(), config.direction);
}

async function start(): Promise<void> {
  if (!("gpu" in navigator) || !navigator.gpu) {
    throw new Error(
      "This browser has no WebGPU, so the generator cannot run here. Use a browser with WebGPU " +
        "enabled (Chrome or Edge 113+, or chromium with --enable-unsafe-webgpu).",
    );
  }
  // ?gemm=storage|texture: the page's GC_GEMM_PATH.
  setGemmPathSetting(new URLSearchParams(location.search).get("gemm") ?? undefined);
  await initGPU();
  const info = gpu().info;
  $("adapter").textContent = `WebGPU adapter: ${
    [info.vendor, info.architecture, info.description]
      .filter((s) => s).join(" / ") || "(no adapter info)"
  }${info.isFallbackAdapter ? " (fallback)" : ""}; ` +
    `shader-f16 ${info.features.includes("shader-f16") ? "offered" : "not offered"}`;
  const probe = await gpu().probeShaderF16();
  f16Unavailable = probe.ok ? null : probe.detail;
  if (f16Unavailable) $<HTMLSelectElement>("precision").options[1].disabled = true;
  $<HTMLSelectElement>("precision").addEventListener("change", (ev) => {
    void setPrecision((ev.target as HTMLSelectElement).value === "f16" ? "f16" : "f32");
  });
  // ?precision=f16 asks for f16 from the start (f32, with the reason shown, where it is unavailable).
  if (new URLSearchParams(location.search).get("precision") === "f16") await setPrecision("f16");
  // File inputs and the precision select load a model or direction themselves: a redraw from their input
  // event would race that load and clear the error a bad file shows.
  const live = "#controls input:not([type=file]), #controls select:not(#precision)";
  for (const el of document.querySelectorAll(live)) {
    el.addEventListener("input", () => {
      settings = readControls();
      showValues(settings);
      void redraw();
    });
  }
  $<HTMLInputElement>("file").addEventListener("change", async (ev) => {
    const f = (ev.target as HTMLInputElement).files?.[0];
    if (f) await loadSnapshot(new Uint8Array(await f.arrayBuffer()), f.name);
  });
  $<HTMLInputElement>("directionFile").addEventListener("change", async (ev) => {
    const f = (ev.target as HTMLInputElement).files?.[0];
    if (f) await loadDirection(await f.text(), f.name);
  });
  setDirection(null, "");
  await loadFromServer();
}

/** The page's handle for tests and the console. */
const api = {
  ready: start().catch((e) => showError((e as Error).message)),
  set,
  loadSnapshot,
  loadDirection,
  setPrecision,
  /** The precision G runs in now. */
  precision: () => precision,
  bench: (batch: number, reps: number) => {
    if (!G) throw new Error("no model loaded");
    return benchGenerate(G, batch, reps);
  },
  error: () => ($("error").hidden ? null : $("error").textContent),
  /** A one-dispatch round trip (x + 1 read back): tells an engine fault from a slow model. */
  roundTrip: async () => {
    const x = fromHost(Float32Array.from([1, 2, 3]), [3], "f32");
    const y = add(x, x);
    const out = Array.from(await y.data());
    x.dispose();
    y.dispose();
    return out;
  },
  /** The mapping network alone on one z, read back: narrows a fault to mapping or synthesis. */
  mappingOnly: async () => {
    if (!G) throw new Error("no model loaded");
    const z = fromHost(new Float32Array(G.zDim).fill(0.5), [1, G.zDim], "f32");
    const c = G.cDim ? fromHost(new Float32Array(G.cDim).fill(1 / G.cDim), [1, G.cDim], "f32") : null;
    const ws = G.mapping.forward(z, c);
    const out = Array.from((await ws.data()).slice(0, 4));
    for (const t of [z, c, ws]) t?.dispose();
    return out;
  },
  /** Engine counters: whether a slow draw is still making progress. */
  stats: () => ({
    dispatches: gpu().totalDispatches,
    submits: gpu().totalSubmits,
    buffers: gpu().createdBuffers,
  }),
};
(globalThis as unknown as { ganPage: typeof api }).ganPage = api;
