/**
 * `serve --db DIR`: the collection's routes. POST /v1/search embeds the query through the batcher (the text, image
 * or pair kind, batched with /v1/embeddings work), searches the collection on the main thread (`searchVector`; the
 * model's thread stays on model work), and re-ranks through the ITM kind: the same steps and numbers as `Collection.search`.
 * GET /v1/items/{id}/image serves the picture file the collection records for a row, never a path from the request.
 */
import { open, type FileHandle } from "node:fs/promises";
import { extname } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Collection, ImageError, reorderReranked, type BridgeTowerProcessor, type SearchResult } from "../index.js";
import { badRequest, HttpError } from "./errors.js";
import { object, type ImageIn, type TextIn } from "./inputs.js";
import type { Metrics } from "./metrics.js";
import { queue, requireHead, type Ready } from "./routes.js";
import type { ItmJob, ItmResult } from "./work.js";

const MAX_TOP_K = 1000;

const IMAGE_TYPES: Record<string, string> = {
  ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif",
  ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
};

/** Paths of the item route, for 405 answers and CORS preflight (the route has a parameter). */
export const ITEM_IMAGE_PATH = /^\/v1\/items\/[^/]+\/image$/;

export interface CollectionTarget {
  model: string;
  revision?: string;
  dtype: "fp32" | "int8";
}

/**
 * Which model to load for the collection in `db`: the one given, else the one it records (Hub id at its commit, or
 * folder), in the collection's dtype unless one is given. Another model or dtype is refused here (ModelMismatchError),
 * before any weights are loaded.
 */
export async function modelForCollection(
  db: string, o: { model?: string; revision?: string; dtype?: "fp32" | "int8"; framesDir?: string },
): Promise<CollectionTarget> {
  const c = await Collection.open(db, { model: o.model, dtype: o.dtype, hub: o.revision ? { revision: o.revision } : undefined, framesDir: o.framesDir });
  try {
    const r = c.model;
    return o.model ? { model: o.model, revision: o.revision, dtype: r.dtype } : { model: r.model, revision: o.revision ?? r.commit ?? undefined, dtype: r.dtype };
  } finally {
    await c.close();
  }
}

/**
 * The collection for the server's model folder and dtype, checked against the collection's record. The collection
 * never loads that model here: queries are embedded and re-ranked by the server's model thread.
 */
export function openCollection(db: string, modelDir: string, dtype: "fp32" | "int8", framesDir?: string): Promise<Collection> {
  return Collection.open(db, { model: modelDir, dtype, framesDir });
}

/** For /info (rows null if the database cannot be read just now: /info still answers). */
export async function collectionInfo(c: Collection): Promise<Record<string, unknown>> {
  const m = c.model;
  return { path: c.uri, rows: await c.count().catch(() => null), model: m.model, commit: m.commit, dtype: m.dtype, embedding_dim: m.dim, model_matches: true };
}

export function registerSearchRoutes(app: FastifyInstance, ready: () => Ready, metrics: Metrics): void {
  app.post("/v1/search", async (req, reply) => {
    const r = ready();
    const c = collectionOf(r);
    const body = object(req.body);
    const topK = integer(body.top_k, "top_k", 10, 1, MAX_TOP_K);
    const n = integer(body.rerank, "rerank", 0, 0, Number.MAX_SAFE_INTEGER);
    if (n > 0) {
      requireHead(r, "itm", "rerank");
      r.inputs.count(n, "rerank"); // n images through ITM: bounded like any request's inputs
    }
    const q = await queryOf(body.query, r);
    if (n > 0 && !q.text) throw badRequest("rerank needs a text query (ITM scores the query text against each image)");
    const item = q.text && q.image
      ? { kind: "pair" as const, input: { text: q.text, image: q.image }, size: 1 }
      : q.text ? { kind: "text" as const, input: q.text, size: 1 } : { kind: "image" as const, input: q.image, size: 1 };
    const [vector] = (await queue(r, req, reply, [item])) as Float32Array[];
    const start = performance.now();
    const found = await c.searchVector(vector, { topK: Math.max(topK, n) });
    metrics.search((performance.now() - start) / 1000);
    const results = n > 0 ? await rerank(r, req, reply, found, q.text!, n) : found;
    return { results: results.slice(0, topK) };
  });

  app.get("/v1/items/:id/image", async (req, reply) => {
    const c = collectionOf(ready());
    const path = await c.itemImagePath((req.params as { id: string }).id);
    if (!path) throw new HttpError(404, "not_found", "no item with this id in the collection");
    let file: FileHandle;
    try {
      file = await open(path);
    } catch {
      throw new HttpError(404, "not_found", "the item's image file is gone since it was indexed");
    }
    let size: number;
    try {
      size = (await file.stat()).size;
    } catch (e) {
      await file.close();
      throw e;
    }
    return reply.type(IMAGE_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream")
      .header("content-length", size).header("cache-control", "no-cache").send(file.createReadStream());
  });
}

function collectionOf(r: Ready): Collection {
  if (!r.collection) throw new HttpError(404, "not_found", "this server has no collection: start it with --db DIR (a folder made by `bridgetower index`)");
  return r.collection;
}

function integer(value: unknown, field: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    throw badRequest(`${field} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}`);
  return value;
}

/** A string, or {text?, image?}; a blank text counts as none, as in Collection.search. */
async function queryOf(value: unknown, r: Ready): Promise<{ text?: TextIn; image?: ImageIn }> {
  if (value === undefined || value === null) throw badRequest('query is required: a text, or {"text"?, "image"?}');
  const o = typeof value === "string" ? { text: value } : value;
  if (typeof o !== "object" || Array.isArray(o)) throw badRequest('query must be a string or an object {"text"?, "image"?}');
  const { text, image } = o as { text?: unknown; image?: unknown };
  const blank = text === undefined || text === null || (typeof text === "string" && !text.trim());
  const field = typeof value === "string" ? "query" : "query.text";
  const t = blank ? undefined : r.inputs.text(text, field);
  const i = image === undefined || image === null ? undefined : await r.inputs.image(image, "query.image");
  if (!t && !i) throw badRequest("query needs a text, an image or both");
  return { text: t, image: i };
}

/**
 * Collection.search's re-ranking: the first `n` rows whose picture can be read, by ITM match probability with the
 * query text (rankImages' order), then the unreadable ones among them, then the rest by cosine.
 */
async function rerank(r: Ready, req: FastifyRequest, reply: FastifyReply, results: SearchResult[], text: TextIn, n: number): Promise<SearchResult[]> {
  const head = results.slice(0, n);
  const pictures = await Promise.all(head.map((x) => picture(r.inputs.processor, x.frame ?? x.source)));
  const scored = head.flatMap((_, i) => (pictures[i] ? [i] : []));
  if (scored.length === 0) return results;
  const job: ItmJob = { texts: [text], images: scored.map((i) => pictures[i]!) };
  const [ranked] = (await queue(r, req, reply, [{ kind: "itm", input: job, size: job.images.length }])) as ItmResult[][];
  return reorderReranked(results, n, pictures.map((p) => p !== undefined), ranked);
}

/** A row's picture preprocessed as the library does; undefined when the file is gone or unreadable. */
async function picture(processor: BridgeTowerProcessor, path: string): Promise<ImageIn | undefined> {
  try {
    const { pixelValues } = await processor.call({ images: [path] });
    return { pixels: pixelValues!.data as Float32Array };
  } catch (e) {
    if (e instanceof ImageError) return undefined;
    throw e;
  }
}
