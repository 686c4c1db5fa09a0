// `serve`: the web page (web/) on 127.0.0.1, with the snapshot given on the command line. The page's bundle
// is built first by Deno's own bundler (the `web` task does the same), so it always matches the source.

import { parse, report } from "./args.ts";

const USAGE = `usage: cli.ts serve [--snapshot S] [--direction D] [--port P]

Serves the web page on http://127.0.0.1:P/ (localhost only). The page runs the snapshot's G_ema on the
browser's WebGPU with this project's kernels; without --snapshot, choose a .safetensors file on the page.
--direction: the JSON of \`cli.ts edit direction\`, for the page's direction slider.`;

const OPTIONS = {
  snapshot: { type: "string", help: "snapshot (.safetensors) the page loads at start" },
  direction: { type: "string", help: "edit direction JSON the page's slider loads at start" },
  port: { type: "string", help: "port on 127.0.0.1 (0: any free port)", default: "8000" },
  json: { type: "boolean", help: "print the address as JSON" },
} as const;

const WEB_DIR = new URL("../web/", import.meta.url);
export const BUNDLE = new URL("dist/app.js", WEB_DIR);

/** Bundles web/main.ts into web/dist/app.js with `deno bundle` (browser platform). */
export async function buildBundle(): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "-o",
      BUNDLE.pathname,
      new URL("main.ts", WEB_DIR).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno bundle of web/main.ts failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}

export interface WebServer {
  url: string;
  close(): Promise<void>;
}

/** Starts the page's server on 127.0.0.1 (port 0: a free one). */
export async function startServer(
  { snapshot = null, direction = null, port = 8000, build = true }: {
    snapshot?: string | null;
    direction?: string | null;
    port?: number;
    build?: boolean;
  },
): Promise<WebServer> {
  if (snapshot !== null) {
    const st = await Deno.stat(snapshot).catch((e) => {
      throw new Error(`--snapshot ${snapshot}: ${(e as Error).message}`);
    });
    if (!st.isFile) throw new Error(`--snapshot ${snapshot}: not a file`);
  }
  if (direction !== null) {
    if (snapshot === null) throw new Error("--direction needs --snapshot (the direction is in its W)");
    const st = await Deno.stat(direction).catch((e) => {
      throw new Error(`--direction ${direction}: ${(e as Error).message}`);
    });
    if (!st.isFile) throw new Error(`--direction ${direction}: not a file`);
  }
  if (build) await buildBundle();
  const file = (url: URL, type: string) => async () =>
    new Response(await Deno.readFile(url), {
      headers: { "content-type": type, "cache-control": "no-store" },
    });
  const routes: Record<string, () => Promise<Response>> = {
    "/": file(new URL("index.html", WEB_DIR), "text/html; charset=utf-8"),
    "/app.js": file(BUNDLE, "text/javascript; charset=utf-8"),
    "/config.json": () =>
      Promise.resolve(Response.json({
        snapshot: snapshot === null ? null : snapshot.split("/").pop(),
        direction: direction === null ? null : direction.split("/").pop(),
      })),
    "/snapshot": snapshot === null
      ? () => Promise.resolve(new Response("no snapshot given to serve", { status: 404 }))
      : file(new URL(`file://${Deno.realPathSync(snapshot)}`), "application/octet-stream"),
    "/direction": direction === null
      ? () => Promise.resolve(new Response("no direction given to serve", { status: 404 }))
      : file(new URL(`file://${Deno.realPathSync(direction)}`), "application/json"),
  };
  let resolveAddr!: (a: Deno.NetAddr) => void;
  const addr = new Promise<Deno.NetAddr>((r) => resolveAddr = r);
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: (a) => resolveAddr(a as Deno.NetAddr),
  }, async (req) => {
    const route = routes[new URL(req.url).pathname];
    if (!route) return new Response("not found", { status: 404 });
    try {
      return await route();
    } catch (e) {
      return new Response(`server error: ${(e as Error).message}`, { status: 500 });
    }
  });
  const a = await addr;
  return { url: `http://127.0.0.1:${a.port}/`, close: () => server.shutdown() };
}

export async function serveCommand(args: string[]): Promise<void> {
  const { values: v } = parse(args, USAGE, OPTIONS);
  const port = Number(v.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be an integer in [0, 65535], got '${v.port}'`);
  }
  const server = await startServer({
    snapshot: v.snapshot === undefined ? null : String(v.snapshot),
    direction: v.direction === undefined ? null : String(v.direction),
    port,
  });
  report(
    { url: server.url, snapshot: v.snapshot ?? null, direction: v.direction ?? null },
    !!v.json,
    `serving the page on ${server.url} (Ctrl-C stops)`,
  );
  await new Promise(() => {}); // until killed
}
