/**
 * `bridgetower serve`: listens first (health answers 503 "loading"), loads the model with every head it has, warms
 * it up, then prints `listening on http://HOST:PORT`. SIGTERM/SIGINT: new requests get 503, everything accepted is
 * finished, then the server closes. With --db it also serves a collection (search.ts).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { BridgeTowerProcessor, InputError, resolveModel, type Collection } from "../index.js";
import { Batcher, CancelledError } from "./batcher.js";
import { errorBody, HttpError, toHttpError } from "./errors.js";
import { FILE_PATH, ISOLATION_HEADERS, modelFiles, registerFileRoutes, webFiles, type ServedFiles } from "./files.js";
import { Inputs } from "./inputs.js";
import { Metrics } from "./metrics.js";
import { loadPage, packageVersion, PAGE_CSP } from "./page.js";
import { registerRoutes, type Ready } from "./routes.js";
import { collectionInfo, ITEM_IMAGE_PATH, modelForCollection, openCollection, registerSearchRoutes } from "./search.js";
import { ModelThread, type ModelInfo } from "./model-thread.js";

export interface ServerOptions {
  /** Model folder or Hub id; with `db` it defaults to the collection's model. */
  model?: string;
  revision?: string;
  /** A collection made by `bridgetower index` (its folder, or an s3:// gs:// az:// URI): adds /v1/search and /v1/items. */
  db?: string;
  /** Where the collection's video frames are (default DB/frames). */
  framesDir?: string;
  host: string;
  /** 0 = a free port. */
  port: number;
  dtype?: "fp32" | "int8";
  threads?: number;
  maxBatchSize: number;
  maxQueue: number;
  maxBodyMb: number;
  maxInputs: number;
  /** Images with more pixels are refused from their header (422). */
  maxImagePixels: number;
  apiKey?: string;
  /** Allowed origin for cross-origin browser calls. */
  cors?: string;
  quiet: boolean;
}

/** 50 megapixels: an 8K photo; decoding one takes 150 MB for a moment. */
export const DEFAULT_MAX_IMAGE_PIXELS = 50_000_000;

const HEALTH = ["/health", "/v1/health_check", "/ping"];
const PAGE_FILES = ["/", "/app.js", "/in-browser.js", "/style.css"];
/**
 * Open without the API key (the page asks for the key itself, from /info's 401). /web/ (the page's library) is open
 * too: module imports and onnxruntime's workers cannot send a key. /model/ needs it.
 */
const OPEN = new Set([...HEALTH, "/metrics", ...PAGE_FILES]);
const isOpen = (path: string) => OPEN.has(path) || path.startsWith("/web/");
/** Routes and their methods, for 405 answers. */
const ROUTES = new Map<string, string>([
  ...HEALTH.map((p) => [p, "GET, HEAD"] as [string, string]),
  ...["/info", "/metrics", ...PAGE_FILES].map((p) => [p, "GET, HEAD"] as [string, string]),
  ...["/v1/encode", "/v1/embeddings", "/v1/itm", "/v1/fill-mask", "/v1/search"].map((p) => [p, "POST"] as [string, string]),
]);

/** The methods a path allows, or undefined for no route. */
const allowed = (path: string) => ROUTES.get(path) ?? (ITEM_IMAGE_PATH.test(path) || FILE_PATH.test(path) ? "GET, HEAD" : undefined);

type State = "loading" | "ok" | "draining";

/** Runs the server until a signal has drained it. Errors while loading are thrown after the server is closed. */
export async function serve(o: ServerOptions): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  let state: State = "loading";
  let ready: Ready | undefined;
  let inFlight = 0;
  let drained: () => void = () => {};
  const metrics = new Metrics(() => ready?.batcher.waiting ?? 0, () => inFlight);
  const [page, version, web] = await Promise.all([loadPage(), packageVersion(), webFiles()]);
  let files: ServedFiles | undefined;
  const keyDigest = o.apiKey ? digest(o.apiKey) : undefined;

  const app = Fastify({
    bodyLimit: Math.floor(o.maxBodyMb * 1024 * 1024),
    logger: false,
    return503OnClosing: false,
    // Errors raised before routing (a malformed URL; a malformed HTTP request) in our shape too.
    frameworkErrors: (e, _req, reply) => void (reply as FastifyReply).code(400).send(errorBody(new HttpError(400, "invalid_request", e.message))),
    clientErrorHandler: (_e, socket) => {
      const body = JSON.stringify(errorBody(new HttpError(400, "invalid_request", "malformed HTTP request")));
      if (socket.writable) socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      else socket.destroy();
    },
  });
  app.removeContentTypeParser("text/plain");

  app.addHook("onRequest", async (req, reply) => {
    const start = performance.now();
    inFlight++;
    reply.raw.once("close", () => {
      const route = req.routeOptions.url ?? "unmatched";
      const status = reply.raw.writableFinished ? reply.raw.statusCode : 499; // 499: the client went away first
      const ms = performance.now() - start;
      metrics.request(route, req.method, status, ms / 1000);
      if (!o.quiet) log(`${req.method} ${route} ${status} ${ms.toFixed(1)}ms`);
      if (--inFlight === 0 && state === "draining") drained();
    });
    reply.header("x-content-type-options", "nosniff");
    if (o.cors) reply.header("access-control-allow-origin", o.cors).header("vary", "origin").header("access-control-expose-headers", "content-range, content-length, accept-ranges, etag");
    const path = req.url.split("?")[0];
    if (o.cors && req.method === "OPTIONS" && allowed(path)) {
      reply.code(204).header("access-control-allow-methods", allowed(path)!).header("access-control-allow-headers", "authorization, content-type, range")
        .header("access-control-max-age", "600").send();
      return reply;
    }
    if (HEALTH.includes(path) || path === "/metrics") return;
    if (state === "loading") throw new HttpError(503, "unavailable", "the model is loading", { "retry-after": "1" });
    if (state === "draining") throw new HttpError(503, "unavailable", "the server is shutting down", { "retry-after": "1", connection: "close" });
    if (keyDigest && !isOpen(path) && !authorized(req, keyDigest))
      throw new HttpError(401, "unauthorized", "missing or wrong API key: send Authorization: Bearer KEY", { "www-authenticate": "Bearer" });
  });

  app.setErrorHandler((e, _req, reply) => {
    if (e instanceof CancelledError) return reply.code(499).send(); // nobody is listening
    const h = toHttpError(e);
    if (h.status >= 500) log(`bridgetower: internal error: ${(e as Error)?.message ?? e}${process.env.BRIDGETOWER_DEBUG === "1" ? `\n${(e as Error)?.stack}` : ""}`);
    return reply.code(h.status).headers(h.headers).send(errorBody(h));
  });
  app.setNotFoundHandler((req, reply) => {
    const methods = allowed(req.url.split("?")[0]);
    const h = methods
      ? new HttpError(405, "method_not_allowed", `${req.method} is not allowed here (allowed: ${methods})`, { allow: methods })
      : new HttpError(404, "not_found", "no such route");
    return reply.code(h.status).headers(h.headers).send(errorBody(h));
  });

  for (const path of HEALTH)
    app.get(path, async (_req, reply) => reply.code(state === "ok" ? 200 : 503).send({ status: state }));
  app.get("/metrics", async (_req, reply) => reply.type(metrics.contentType).send(await metrics.text()));
  for (const [path, f] of page) app.get(path, async (_req, reply) => reply.type(f.type).headers(ISOLATION_HEADERS).header("content-security-policy", PAGE_CSP).send(f.body));
  let info: Record<string, unknown> = {};
  // Rows are counted on each call: another process may be indexing into the collection.
  app.get("/info", async () => ({ ...info, collection: ready?.collection ? await collectionInfo(ready.collection) : null }));
  registerRoutes(app, () => ready!);
  registerSearchRoutes(app, () => ready!, metrics);
  registerFileRoutes(app, () => files);

  await app.listen({ host: o.host, port: o.port });
  let stopped: () => void = () => {};
  const done = new Promise<void>((resolve) => (stopped = resolve));
  const shutDown = (why: string) => {
    if (state === "draining") return;
    const wasLoading = state === "loading";
    state = "draining";
    log(`bridgetower: ${why}: finishing ${inFlight} request(s), then exiting`);
    void drain(app, () => ready, () => inFlight, (f) => (drained = f), wasLoading).then(stopped, stopped);
  };
  const onSignal = (signal: NodeJS.Signals) => shutDown(signal);
  // A model thread that dies (out of memory, say) takes the server down with an error, rather than answering 500s.
  let modelLost: Error | undefined;
  const onModelExit = (e: Error) => shutDown((modelLost = e).message);
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  try {
    const loading = load(o, onModelExit);
    loading.catch(() => {}); // a signal may have ended the wait for it
    const loaded = await Promise.race([loading, done.then(() => undefined)]);
    if (!loaded) {
      void loading.then(dispose, () => {});
      return;
    }
    try {
      const work = loaded.model.runners();
      const batcher = new Batcher(work, o, (r) => metrics.batch(r));
      const inputs = new Inputs(loaded.processor, loaded.model.config, o);
      await warmUp(loaded.model, inputs, work);
      files = await modelFiles(loaded.dir, web, loaded.model.heads);
      ready = { model: loaded.model, modelId: loaded.modelId, inputs, batcher, collection: loaded.collection };
      info = { ...infoOf(o, loaded, version, inputs.maxTokens), browser: files.browser };
      if (state === "loading") {
        state = "ok";
        log(`listening on ${urlOf(app, o.host)}`);
      }
      await done;
      if (modelLost) throw modelLost;
    } finally {
      await dispose(loaded);
    }
  } catch (e) {
    await app.close().catch(() => {});
    throw e;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}

/** Waits for every accepted request, then closes the listener. */
async function drain(app: FastifyInstance, ready: () => Ready | undefined, inFlight: () => number, onDrained: (f: () => void) => void, wasLoading: boolean): Promise<void> {
  if (!wasLoading) {
    await new Promise<void>((resolve) => {
      onDrained(resolve);
      if (inFlight() === 0) resolve();
    });
    await ready()?.batcher.idle();
  }
  await app.close();
}

/** The processor here (requests are checked on this thread), the model on its own thread (model-thread.ts). */
async function load(o: ServerOptions, onModelExit: (e: Error) => void) {
  if (!o.model && !o.db) throw new InputError("model", "is required without a collection (db)");
  // With a collection: its model unless given, and another one refused before any weights load.
  const target = o.db ? await modelForCollection(o.db, o) : { model: o.model!, revision: o.revision, dtype: o.dtype };
  const { dir, fromHub } = await resolveModel(target.model, { revision: target.revision });
  const onWarning = (w: string) => process.stderr.write(`bridgetower: warning: ${w}\n`);
  const [processor, model] = await Promise.allSettled([
    BridgeTowerProcessor.fromPretrained(dir),
    ModelThread.start({ dir, dtype: target.dtype, threads: o.threads, maxBatchSize: o.maxBatchSize }, onWarning, onModelExit),
  ]);
  if (processor.status === "rejected") {
    if (model.status === "fulfilled") await model.value.dispose();
    throw processor.reason;
  }
  if (model.status === "rejected") throw model.reason;
  let collection: Collection | undefined;
  if (o.db) {
    try {
      collection = await openCollection(o.db, dir, target.dtype ?? "fp32", o.framesDir);
    } catch (e) {
      await model.value.dispose();
      throw e;
    }
  }
  return {
    processor: processor.value, model: model.value, collection, dir, modelId: target.model, revision: target.revision, dtype: target.dtype ?? "fp32",
    // A Hub snapshot folder is named by its commit.
    commit: fromHub ? dir.split("/").pop() ?? null : null,
  };
}

/** The collection first: it leaves the server's model to us. */
async function dispose(loaded: Awaited<ReturnType<typeof load>>): Promise<void> {
  try {
    await loaded.collection?.close();
  } finally {
    await loaded.model.dispose();
  }
}

/** One call of every kind, so the first requests do not pay for onnxruntime's first-run setup. */
async function warmUp(model: ModelInfo, inputs: Inputs, run: ReturnType<ModelThread["runners"]>): Promise<void> {
  const S = model.config.visionConfig.imageSize;
  const image = { pixels: new Float32Array(3 * S * S) };
  const text = inputs.text("a <mask> on a table", "warm-up");
  if (model.heads.includes("itc")) {
    await run.text.run([text]);
    await run.image.run([image]);
    await run.pair.run([{ text, image }]);
  }
  if (model.heads.includes("itm")) await run.itm.run([{ texts: [text], images: [image] }]);
  if (model.heads.includes("mlm")) await run["fill-mask"].run([{ text, image, topK: 1 }]);
}

function infoOf(o: ServerOptions, loaded: Awaited<ReturnType<typeof load>>, version: string, maxTokens: number): Record<string, unknown> {
  return {
    model: loaded.modelId,
    revision: loaded.revision ?? null,
    commit: loaded.commit,
    dtype: loaded.dtype,
    heads: loaded.model.heads,
    embedding_dim: loaded.model.config.contrastiveHiddenSize ?? null,
    image_size: loaded.model.config.visionConfig.imageSize,
    limits: {
      max_batch_size: o.maxBatchSize, max_queue: o.maxQueue, max_body_mb: o.maxBodyMb, max_inputs: o.maxInputs,
      max_image_pixels: o.maxImagePixels, max_text_tokens: maxTokens,
    },
    auth: o.apiKey ? "bearer" : "none",
    version,
  };
}

function urlOf(app: FastifyInstance, host: string): string {
  const a = app.server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Compared as digests in constant time, so the key cannot be guessed from response times. */
function authorized(req: FastifyRequest, key: Buffer): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
  return m !== null && timingSafeEqual(digest(m[1].trim()), key);
}
