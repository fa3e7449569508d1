/**
 * The files behind the page's "run in this browser" switch, read-only and with Range support:
 * - GET /model/{name}: the model folder's files that bridgetower/web reads (config, safetensors weights, tokenizer,
 *   preprocessor config);
 * - GET /web/{path}: the web bundle and onnxruntime-web's .mjs/.wasm from the package's dist/web.
 * Both are allow-lists of names mapped to files when the server starts: a request's path is only ever a key of
 * that map, never joined to a folder, so nothing outside can be named.
 */
import { createReadStream, existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { HttpError } from "./errors.js";

/** What bridgetower/web asks a model folder for (web/processor.ts, web/safetensors.ts, web/engine.ts). */
const MODEL_FILES = ["config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json", "vocab.json", "merges.txt", "preprocessor_config.json"];
/** Shards as transformers names them; only those the index lists are served. */
const SHARD = /^model-\d{5}-of-\d{5}\.safetensors$/;
/** Below this, the tab runs fp32 (exact parity, little memory); above, int8 (a quarter of the download kept, faster). */
export const BROWSER_FP32_MAX_BYTES = 256 * 1024 * 1024;

const TYPES: Record<string, string> = {
  ".json": "application/json", ".txt": "text/plain; charset=utf-8", ".safetensors": "application/octet-stream",
  ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".wasm": "application/wasm", ".map": "application/json",
};

/** Sent with the page and everything it loads: cross-origin isolation, so onnxruntime-web can use threads. */
export const ISOLATION_HEADERS = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
};

export type BrowserInfo = { available: true; dtype: "fp32" | "int8"; weights_bytes: number } | { available: false; reason: string };

export interface ServedFiles {
  model: Map<string, string>;
  web: Map<string, string>;
  browser: BrowserInfo;
}

const WEB_DIR = fileURLToPath(new URL("../../dist/web/", import.meta.url));

/** The web bundle's files, found from src/server (tsx) and dist/server alike. */
export async function webFiles(dir = WEB_DIR): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!existsSync(join(dir, "bridgetower.js"))) return out;
  for (const f of ["bridgetower.js", "bridgetower.js.map"]) if (existsSync(join(dir, f))) out.set(f, join(dir, f));
  const ort = await readdir(join(dir, "ort")).catch(() => [] as string[]);
  for (const f of ort) if (/^ort-[\w.-]+\.(mjs|wasm)$/.test(f)) out.set(`ort/${f}`, join(dir, "ort", f));
  return out;
}

/** The allow-listed files the model folder has, and whether (and in which dtype) the page can run the model. */
export async function modelFiles(dir: string, web: Map<string, string>, heads: string[]): Promise<ServedFiles> {
  const model = new Map<string, string>();
  for (const f of MODEL_FILES) if (await isFile(join(dir, f))) model.set(f, join(dir, f));
  const index = model.get("model.safetensors.index.json");
  if (index) {
    const map = (parseJson(await readFile(index, "utf8").catch(() => "{}")) as { weight_map?: Record<string, unknown> } | null)?.weight_map ?? {};
    for (const shard of new Set(Object.values(map)))
      if (typeof shard === "string" && SHARD.test(shard) && (await isFile(join(dir, shard)))) model.set(shard, join(dir, shard));
  }
  const weights = model.has("model.safetensors") ? ["model.safetensors"] : [...model.keys()].filter((f) => SHARD.test(f));
  const bytes = (await Promise.all(weights.map((f) => stat(model.get(f)!)))).reduce((n, s) => n + s.size, 0);
  let browser: BrowserInfo;
  if (!web.has("bridgetower.js") || ![...web.keys()].some((f) => f.endsWith(".wasm")))
    browser = { available: false, reason: "the web bundle is not built (npm run build:web)" };
  else if (weights.length === 0) browser = { available: false, reason: "the model has no safetensors weights (bridgetower convert makes them)" };
  else if (!heads.includes("itm")) browser = { available: false, reason: "the model has no image-text matching head" };
  else browser = { available: true, dtype: bytes <= BROWSER_FP32_MAX_BYTES ? "fp32" : "int8", weights_bytes: bytes };
  return { model, web, browser };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null; // the model loader has said what is wrong with it
  }
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}

/** GET/HEAD /model/{name} and /web/{path}; `files` is undefined until the model has loaded (the hook answers 503). */
export function registerFileRoutes(app: FastifyInstance, files: () => ServedFiles | undefined): void {
  // HEAD declared here: fastify's own HEAD route would replace our Content-Length with 0.
  app.route({
    method: ["GET", "HEAD"],
    url: "/model/:name",
    handler: async (req, reply) => sendFile(req, reply, files()?.model.get((req.params as { name: string }).name)),
  });
  app.route({
    method: ["GET", "HEAD"],
    url: "/web/*",
    handler: async (req, reply) => sendFile(req, reply, files()?.web.get((req.params as { "*": string })["*"])),
  });
}

/** Paths of the file routes, for 405 answers and CORS preflight. */
export const FILE_PATH = /^\/(model\/[^/]+|web\/.+)$/;

/** Revalidated on each use (ETag), so a rebuilt bundle or a replaced checkpoint is never taken stale from a cache. */
async function sendFile(req: FastifyRequest, reply: FastifyReply, path: string | undefined): Promise<FastifyReply> {
  const st = path ? await stat(path).catch(() => undefined) : undefined;
  if (!path || !st?.isFile()) throw new HttpError(404, "not_found", "no such file");
  const size = st.size;
  const etag = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  reply.headers({ ...ISOLATION_HEADERS, etag, "last-modified": st.mtime.toUTCString(), "accept-ranges": "bytes", "cache-control": "no-cache" })
    .type(TYPES[extname(path)] ?? "application/octet-stream");
  if (matches(req.headers["if-none-match"], etag)) return reply.code(304).send();
  // If-Range with another version: the whole (new) file, as RFC 9110 asks.
  const ifRange = req.headers["if-range"];
  const range = ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, size) : undefined;
  if (range === "unsatisfiable") return reply.code(416).header("content-range", `bytes */${size}`).send();
  const [start, end] = range ?? [0, size - 1];
  if (range) reply.code(206).header("content-range", `bytes ${start}-${end}/${size}`);
  reply.header("content-length", end - start + 1);
  if (req.method === "HEAD" || size === 0) return reply.send();
  return reply.send(createReadStream(path, { start, end }));
}

function matches(header: string | undefined, etag: string): boolean {
  return header !== undefined && (header.trim() === "*" || header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag));
}

/**
 * One range of `bytes=` (first-last, first-, -suffix) within `size` bytes. Anything else (several ranges, another
 * unit, bad syntax) is ignored, as RFC 9110 allows: the whole file is sent.
 */
export function parseRange(header: string | undefined, size: number): [number, number] | "unsatisfiable" | undefined {
  const m = header === undefined ? null : /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const n = Number(m[2]);
    return n === 0 || size === 0 ? "unsatisfiable" : [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? Infinity : Number(m[2]);
  if (last < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return [start, Math.min(last, size - 1)];
}
