// A screenshot of the page (web/) in headless chromium with a snapshot loaded, for the README:
//   deno run -A scripts/web_screenshot.ts --snapshot S --out docs/web/page.png [--direction D]
//     [--settings '{"classA":1,"mode":"interpolate","t":0.5}']
// The page draws with the given settings first; the screenshot is of the whole page.

import { parseArgs } from "node:util";
import { startServer } from "../cli/serve.ts";
import { launchChromium } from "./chromium.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    snapshot: { type: "string" },
    out: { type: "string" },
    direction: { type: "string" },
    settings: { type: "string" },
  },
});
if (!a.snapshot || !a.out) {
  console.error("usage: web_screenshot.ts --snapshot S --out PNG [--direction D] [--settings JSON]");
  Deno.exit(2);
}
const settings = JSON.parse(a.settings ?? "{}");
const server = await startServer({ snapshot: a.snapshot, direction: a.direction ?? null, port: 0 });
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 640 } });
  page.setDefaultTimeout(600_000);
  await page.goto(server.url);
  await page.evaluate(() => (globalThis as unknown as { ganPage: { ready: Promise<void> } }).ganPage.ready);
  const err = await page.evaluate(async (s) => {
    const g = globalThis as unknown as {
      ganPage: { set(s: unknown): Promise<void>; error(): string | null };
    };
    await g.ganPage.set(s);
    return g.ganPage.error();
  }, settings);
  if (err) throw new Error(`the page shows an error: ${err}`);
  await page.screenshot({ path: a.out, fullPage: true });
  console.log(`wrote ${a.out} (${await page.textContent("#adapter")}; ${await page.textContent("#timing")})`);
} finally {
  await browser.close();
  await server.close();
}
