/** The inference routes: parse and check the body, queue the work, shape the answer. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Collection } from "../index.js";
import type { Batcher, WorkItem } from "./batcher.js";
import { badRequest, HttpError } from "./errors.js";
import { object, type Inputs } from "./inputs.js";
import type { ModelInfo } from "./model-thread.js";
import type { FillMaskJob, FillMaskOutput, ItmJob, ItmResult } from "./work.js";

/** What the routes need once the model is loaded. */
export interface Ready {
  model: ModelInfo;
  modelId: string;
  inputs: Inputs;
  batcher: Batcher;
  /** With --db. */
  collection?: Collection;
}

const MAX_TOP_K = 100;
const HEAD_NAMES = { itm: "image-text matching (ITM)", mlm: "masked language modeling (MLM)", itc: "contrastive (ITC)" } as const;

export function registerRoutes(app: FastifyInstance, ready: () => Ready): void {
  app.post("/v1/encode", async (req, reply) => {
    const r = ready();
    requireHead(r, "itc", "/v1/encode");
    const body = object(req.body);
    const text = r.inputs.text(body.text, "text");
    if (body.img_b64_str === undefined || body.img_b64_str === null) {
      const [embedding] = await queue(r, req, reply, [{ kind: "text", input: text, size: 1 }]);
      return { embedding: Array.from(embedding as Float32Array) };
    }
    const image = await r.inputs.image(body.img_b64_str, "img_b64_str");
    const [embedding] = await queue(r, req, reply, [{ kind: "pair", input: { text, image }, size: 1 }]);
    return { embedding: Array.from(embedding as Float32Array) };
  });

  app.post("/v1/embeddings", async (req, reply) => {
    const r = ready();
    requireHead(r, "itc", "/v1/embeddings");
    const body = object(req.body);
    const format = body.encoding_format ?? "float";
    if (format !== "float" && format !== "base64") throw badRequest('encoding_format must be "float" or "base64"');
    if (body.model !== undefined && typeof body.model !== "string") throw badRequest("model must be a string");
    const entries = embeddingEntries(body.input, r.inputs);
    const items = await Promise.all(entries.map(async (x): Promise<WorkItem & { modality: string; tokens: number }> => {
      const t = x.text === undefined ? undefined : r.inputs.text(x.text, x.textField);
      const i = x.image === undefined ? undefined : await r.inputs.image(x.image, `${x.field}.image`);
      if (t && i) return { kind: "pair", input: { text: t, image: i }, size: 1, modality: "pair", tokens: t.ids.length };
      if (t) return { kind: "text", input: t, size: 1, modality: "text", tokens: t.ids.length };
      return { kind: "image", input: i, size: 1, modality: "image", tokens: 0 };
    }));
    const outputs = (await queue(r, req, reply, items)) as Float32Array[];
    const tokens = items.reduce((a, x) => a + x.tokens, 0);
    return {
      object: "list",
      data: outputs.map((e, index) => ({ object: "embedding", index, embedding: format === "base64" ? base64(e) : Array.from(e), modality: items[index].modality })),
      model: typeof body.model === "string" ? body.model : r.modelId,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  });

  app.post("/v1/itm", async (req, reply) => {
    const r = ready();
    requireHead(r, "itm", "/v1/itm");
    const body = object(req.body);
    let job: ItmJob;
    if (body.texts !== undefined && body.images === undefined && body.text === undefined) {
      const texts = r.inputs.list(body.texts, "texts").map((t, i) => r.inputs.text(t, `texts[${i}]`));
      job = { texts, images: [await r.inputs.image(body.image, "image")] };
    } else if (body.images !== undefined && body.texts === undefined && body.image === undefined) {
      const text = r.inputs.text(body.text, "text");
      const images = await Promise.all(r.inputs.list(body.images, "images").map((x, i) => r.inputs.image(x, `images[${i}]`)));
      job = { texts: [text], images };
    } else throw badRequest('give {"image", "texts": [...]} (rank texts for an image) or {"text", "images": [...]} (rank images for a text)');
    const [ranked] = (await queue(r, req, reply, [{ kind: "itm", input: job, size: Math.max(job.texts.length, job.images.length) }])) as ItmResult[][];
    const withText = job.images.length === 1 && body.texts !== undefined;
    return { results: ranked.map((x) => ({ index: x.index, ...(withText ? { text: job.texts[x.index].text } : {}), score: x.score, logits: x.logits })) };
  });

  app.post("/v1/fill-mask", async (req, reply) => {
    const r = ready();
    requireHead(r, "mlm", "/v1/fill-mask");
    const body = object(req.body);
    const topK = body.top_k ?? 5;
    if (typeof topK !== "number" || !Number.isInteger(topK) || topK < 1 || topK > MAX_TOP_K) throw badRequest(`top_k must be an integer from 1 to ${MAX_TOP_K}`);
    const text = r.inputs.text(body.text, "text");
    if (!text.ids.includes(r.inputs.processor.tokenizer.maskTokenId)) throw badRequest("text has no <mask> token to fill");
    const job: FillMaskJob = { text, image: await r.inputs.image(body.image, "image"), topK };
    const [out] = (await queue(r, req, reply, [{ kind: "fill-mask", input: job, size: 1 }])) as FillMaskOutput[];
    return out;
  });
}

/** Input of /v1/embeddings: a string, strings, an object {text?, image?} or such objects. */
function embeddingEntries(input: unknown, inputs: Inputs): { text?: unknown; image?: unknown; field: string; textField: string }[] {
  const entry = (x: unknown, field: string) => {
    if (typeof x === "string") return { text: x, field, textField: field };
    if (typeof x !== "object" || x === null || Array.isArray(x)) throw badRequest(`${field} must be a string or an object {"text"?, "image"?}`);
    const { text, image } = x as { text?: unknown; image?: unknown };
    if ((text === undefined || text === null) && (image === undefined || image === null)) throw badRequest(`${field} needs a text, an image or both`);
    return { text: text ?? undefined, image: image ?? undefined, field, textField: `${field}.text` };
  };
  if (input === undefined) throw badRequest("input is required");
  if (!Array.isArray(input)) return [entry(input, "input")];
  return inputs.list(input, "input").map((x, i) => entry(x, `input[${i}]`));
}

export function requireHead(r: Ready, head: keyof typeof HEAD_NAMES, route: string): void {
  if (!r.model.heads.includes(head))
    throw new HttpError(400, "unsupported_by_model", `${route} needs the ${HEAD_NAMES[head]} head, which this server's model (${r.modelId}) does not have (it has: ${r.model.heads.join(", ")})`);
}

/** Queues a request's items; if the client goes away first, what is still queued is dropped. */
export function queue(r: Ready, req: FastifyRequest, reply: FastifyReply, items: WorkItem[]): Promise<unknown[]> {
  const gone = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) gone.abort();
  };
  reply.raw.once("close", onClose);
  // Gone already (the close event has passed): nothing to queue.
  if (reply.raw.destroyed || req.raw.socket?.destroyed) gone.abort();
  return Promise.all(r.batcher.submit(items, gone.signal));
}

/** Little-endian float32 bytes, base64 (OpenAI's encoding_format "base64"). */
function base64(e: Float32Array): string {
  const bytes = Buffer.alloc(e.length * 4);
  e.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString("base64");
}
