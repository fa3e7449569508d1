/**
 * Servers for the browser tests and bench/web.ts, on 127.0.0.1:
 * - `startPageServer`: the test page, dist/web (the bundle and onnxruntime-web's files), images, and model folders
 *   at /models/<name>/ with Range support; every answer carries COOP/COEP, so the page is cross-origin isolated.
 * - `startCorsFront`: the Hub imitation of hub-server.ts as a browser sees the real Hub: CORS headers (with the
 *   X-Repo-Commit, Content-Range and error headers exposed), its redirects rewritten to this origin, and a switch
 *   that cuts downloads.
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, resolve, sep } from "node:path";
import { repoRoot } from "./fixtures.js";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
  ".map": "application/json", ".json": "application/json", ".txt": "text/plain", ".png": "image/png", ".jpg": "image/jpeg",
};

export const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>bridgetower/web</title>
<script>
  // Functions the tests send to the page come from tsx, whose output names functions with __name().
  globalThis.__name = (f) => f;
</script>
<script type="module">
  import * as bt from "/dist/web/bridgetower.js";
  window.bt = bt;
  window.btReady = true;
</script>
`;

export interface PageServer {
  url: string;
  /** Paths asked for, in order (with the Range header when there was one). */
  requests: { path: string; range?: string }[];
  close(): Promise<void>;
}

function listen(s: Server): Promise<string> {
  return new Promise((ok) => s.listen(0, "127.0.0.1", () => ok(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
}

function stop(s: Server): Promise<void> {
  return new Promise((ok) => {
    s.close(() => ok());
    s.closeAllConnections();
  });
}

/** Sends a file, or the one byte range asked for. */
function sendFile(req: IncomingMessage, res: ServerResponse, file: string, headers: Record<string, string>): void {
  const size = statSync(file).size;
  const h: Record<string, string | number> = { ...headers, "content-type": TYPES[extname(file)] ?? "application/octet-stream", "accept-ranges": "bytes" };
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
  let start = 0;
  let end = size - 1;
  if (m) {
    start = Number(m[1]);
    end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (start >= size) return void res.writeHead(416, { ...headers, "content-range": `bytes */${size}` }).end();
    h["content-range"] = `bytes ${start}-${end}/${size}`;
  }
  h["content-length"] = end - start + 1;
  res.writeHead(m ? 206 : 200, h);
  if (req.method === "HEAD") return void res.end();
  createReadStream(file, { start, end }).pipe(res);
}

/** `models`: name → folder, served at /models/<name>/. `isolated: false` leaves out COOP/COEP. */
export async function startPageServer(options: { models?: Record<string, string>; images?: string[]; isolated?: boolean } = {}): Promise<PageServer> {
  const requests: PageServer["requests"] = [];
  const headers: Record<string, string> = { "cache-control": "no-store" };
  if (options.isolated !== false) Object.assign(headers, { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" });
  const roots: Record<string, string> = { dist: resolve(repoRoot, "dist/web") };
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? "/").split("?")[0]);
    requests.push({ path, range: req.headers.range });
    if (path === "/" || path === "/index.html") return void res.writeHead(200, { ...headers, "content-type": TYPES[".html"] }).end(PAGE);
    let file: string | undefined;
    const inside = (root: string, rel: string) => {
      const f = normalize(join(root, rel));
      return f.startsWith(root + sep) && existsSync(f) && statSync(f).isFile() ? f : undefined;
    };
    if (path.startsWith("/dist/web/")) file = inside(roots.dist, path.slice("/dist/web/".length));
    const model = /^\/models\/([^/]+)\/(.+)$/.exec(path);
    if (model && options.models?.[model[1]]) file = inside(resolve(options.models[model[1]]), model[2]);
    const image = /^\/images\/([^/]+)$/.exec(path);
    if (image) for (const dir of options.images ?? []) file ??= inside(resolve(dir), image[1]);
    if (!file || (req.method !== "GET" && req.method !== "HEAD")) return void res.writeHead(404, headers).end("not found");
    sendFile(req, res, file, headers);
  });
  const url = await listen(server);
  return { url, requests, close: () => stop(server) };
}

export interface CorsFront {
  url: string;
  /** Answers to the paths it accepts are cut right after their headers, with no body (LFS files: "/cdn/..."). */
  cut: (path: string) => boolean;
  close(): Promise<void>;
}

const EXPOSED = "X-Repo-Commit, X-Error-Code, X-Error-Message, ETag, Content-Range, Content-Length, Accept-Ranges, X-Linked-Etag, X-Linked-Size";

/** Forwards to `target` (the hub-server's URL), answering as a CORS-enabled Hub does. */
export async function startCorsFront(target: string): Promise<CorsFront> {
  let self = "";
  const front: CorsFront = { url: "", cut: () => false, close: () => stop(server) };
  const cors = { "access-control-allow-origin": "*", "access-control-expose-headers": EXPOSED, "cache-control": "no-store" };
  const server = createServer((req, res) => {
    if (req.method === "OPTIONS") {
      return void res.writeHead(204, { ...cors, "access-control-allow-methods": "GET, HEAD", "access-control-allow-headers": "range, authorization", "access-control-max-age": "600" }).end();
    }
    const headers: Record<string, string> = {};
    if (req.headers.range) headers.range = req.headers.range;
    const up = request(`${target}${req.url}`, { method: req.method, headers }, (r) => {
      const out: Record<string, string | string[]> = { ...cors };
      for (const [k, v] of Object.entries(r.headers)) if (v !== undefined && k !== "connection" && k !== "cache-control") out[k] = v;
      if (typeof out.location === "string") out.location = out.location.replace(/^http:\/\/127\.0\.0\.1:\d+/, self);
      res.writeHead(r.statusCode ?? 502, out);
      if ((r.statusCode === 200 || r.statusCode === 206) && front.cut(req.url ?? "")) {
        r.destroy();
        res.flushHeaders();
        setTimeout(() => res.socket?.destroy(), 10);
        return;
      }
      // An upstream answer cut short (hub-server's cutOnce) is cut here too, not left hanging.
      r.on("close", () => {
        if (!r.complete) res.socket?.destroy();
      });
      r.pipe(res);
    });
    up.on("error", () => res.socket?.destroy());
    req.pipe(up);
  });
  self = front.url = await listen(server);
  return front;
}
