// Debian's chromium with WebGPU on, driven headlessly by playwright-core: the browser test
// (tests/web_test.ts) and the README's screenshot (scripts/web_screenshot.ts) launch it the same way.

import { chromium } from "playwright-core";

/** The chromium binary (CHROMIUM overrides /usr/bin/chromium). */
export const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";

/** WebGPU on SwiftShader (chromium's CPU Vulkan) where there is no GPU; a GPU's adapter where there is. */
export const WEBGPU_FLAGS = [
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-angle=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--no-sandbox", // root in containers
];

export function hasChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

/** A headless chromium with WebGPU; the caller closes it. */
export function launchChromium(): ReturnType<typeof chromium.launch> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: WEBGPU_FLAGS });
}
