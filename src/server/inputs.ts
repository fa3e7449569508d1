/**
 * Request fields to model inputs, checked before anything is queued: a bad input gets its 4xx here and never enters
 * a batch. Images are decoded and preprocessed now, so the queue holds pixel values (about 1 MB each at the large
 * size) rather than decoded photos, and decoding overlaps with the model running other requests.
 */
import { ImageError, maxTextTokens, TokenizerError, type BridgeTowerConfig, type BridgeTowerProcessor } from "../index.js";
import { badRequest, tooLarge, unprocessable } from "./errors.js";

/** A tokenized text: `<s> ... </s>`, unpadded. */
export interface TextIn {
  text: string;
  ids: number[];
}
/** One preprocessed image: `[3, S, S]` pixel values. */
export interface ImageIn {
  pixels: Float32Array;
}

export class Inputs {
  /** Longest text in tokens, `<s>` and `</s>` included (the model's position embeddings). */
  readonly maxTokens: number;
  /**
   * UTF-8 bytes beyond which a text cannot fit in maxTokens (no token is longer than the longest in the vocabulary),
   * refused before tokenizing: the tokenizer is synchronous, and megabytes of text would stall every other request.
   */
  private readonly maxBytes: number;

  constructor(
    readonly processor: BridgeTowerProcessor,
    config: BridgeTowerConfig,
    readonly limits: { maxInputs: number; maxImagePixels: number },
  ) {
    this.maxTokens = maxTextTokens(config.textConfig);
    const tok = processor.tokenizer;
    let longest = 1;
    for (let id = 0; id < tok.vocabSize; id++) longest = Math.max(longest, tok.idToToken(id)?.length ?? 0);
    this.maxBytes = longest * this.maxTokens;
  }

  text(value: unknown, field: string): TextIn {
    if (typeof value !== "string") throw badRequest(`${field} must be a string`);
    if (value.length === 0) throw badRequest(`${field} is empty`);
    if (Buffer.byteLength(value) > this.maxBytes) throw unprocessable(`${field} is ${value.length} characters long; the model takes at most ${this.maxTokens} tokens`);
    let ids: number[];
    try {
      ids = this.processor.tokenizer.encode(value).inputIds[0];
    } catch (e) {
      if (e instanceof TokenizerError) throw unprocessable(`${field}: ${e.message}`);
      throw e;
    }
    if (ids.length > this.maxTokens) throw unprocessable(`${field} is ${ids.length} tokens long; the model takes at most ${this.maxTokens}`);
    return { text: value, ids };
  }

  async image(value: unknown, field: string): Promise<ImageIn> {
    const bytes = imageBytes(value, field);
    try {
      const { pixelValues } = await this.processor.call({ images: bytes, maxPixels: this.limits.maxImagePixels });
      return { pixels: pixelValues!.data };
    } catch (e) {
      if (e instanceof ImageError) throw unprocessable(`${field}: ${e.message.replace(/^<bytes>: /, "")}`);
      throw e;
    }
  }

  /** A non-empty array of at most --max-inputs items. */
  list(value: unknown, field: string): unknown[] {
    if (!Array.isArray(value)) throw badRequest(`${field} must be an array`);
    if (value.length === 0) throw badRequest(`${field} is empty`);
    this.count(value.length, field);
    return value;
  }

  count(n: number, field: string): void {
    if (n > this.limits.maxInputs) throw tooLarge(`${field} has ${n} inputs, more than the limit of ${this.limits.maxInputs} per request`);
  }
}

/** The body as an object, or a 400. */
export function object(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("the body must be a JSON object");
  return body as Record<string, unknown>;
}

/**
 * Base64 or a `data:` URL to bytes. Anything that looks like a URL is refused: the server never fetches
 * (no requests to internal hosts on a client's behalf).
 */
export function imageBytes(value: unknown, field: string): Uint8Array {
  if (typeof value !== "string") throw badRequest(`${field} must be a string: the image as base64 or a data: URL`);
  let b64 = value;
  if (/^data:/i.test(value)) {
    const comma = value.indexOf(",");
    if (comma < 0 || !/;base64$/i.test(value.slice(0, comma))) throw badRequest(`${field}: only base64 data: URLs are accepted (data:image/png;base64,...)`);
    b64 = value.slice(comma + 1);
  } else if (/^[a-z][a-z0-9+.-]*:/i.test(value)) {
    throw badRequest(`${field}: image URLs are never fetched; send the image itself as base64 or a data: URL`);
  }
  b64 = b64.replace(/\s+/g, "");
  if (b64.length === 0) throw badRequest(`${field} is empty`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) && !/^[A-Za-z0-9_-]*={0,2}$/.test(b64)) throw badRequest(`${field} is not valid base64`);
  return Buffer.from(b64, "base64");
}
