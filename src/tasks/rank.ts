/**
 * Image-text matching jobs. Ranking N texts against one image runs the vision tower once and the texts as
 * batches; M images against one text runs the text tower once. Only the fusion runs per pair (the batch-1
 * side is broadcast inside the fusion graph).
 */
import { InputError } from "../errors.js";
import type { ImageInput } from "../image/index.js";
import type { BridgeTowerForImageAndTextRetrieval, Encoding } from "../model/bridgetower.js";
import { sliceBatch, type Tensor } from "../model/tensor.js";
import type { BridgeTowerProcessor } from "../processor.js";

export interface MatchScore {
  /** Position of the text or image in the caller's list. */
  index: number;
  /** Match probability softmax(logits)[1]. */
  score: number;
  /** Raw ITM logits [no_match, match]. */
  logits: [number, number];
}
export interface TextMatch extends MatchScore {
  text: string;
}

/** Rank by the match probability softmax(logits)[1], or by the raw match logit logits[1] (the model card's score). */
export type SortBy = "probability" | "logit";
export const SORT_BY: readonly SortBy[] = ["probability", "logit"];

export interface RankOptions {
  /** Pairs encoded and fused per onnxruntime call (bounds memory for long lists). Default 4. */
  batchSize?: number;
  /** Default "probability". The two can order texts differently, as the no-match logit varies too. */
  sortBy?: SortBy;
}

/** Scores every text against one image, best match first. */
export async function rankTexts(
  model: BridgeTowerForImageAndTextRetrieval, processor: BridgeTowerProcessor, image: ImageInput, texts: string[], options: RankOptions = {},
): Promise<TextMatch[]> {
  if (texts.length === 0) throw new InputError("texts", "no texts to rank");
  const key = sortKey(options.sortBy);
  const { pixelValues } = await processor.call({ images: image });
  const one = { side: "image" as const, encoding: await model.encodeImage(pixelValues!) };
  const scores = await matchOneToMany(model, one, texts.length, options.batchSize, async (b0, b1) => {
    const { inputIds, attentionMask } = await processor.call({ text: texts.slice(b0, b1), padding: "longest" });
    return model.encodeText(inputIds!, attentionMask);
  });
  return sortBy(scores, key).map((s) => ({ ...s, text: texts[s.index] }));
}

/** Scores every image against one text, best match first. */
export async function rankImages(
  model: BridgeTowerForImageAndTextRetrieval, processor: BridgeTowerProcessor, images: ImageInput[], text: string, options: RankOptions = {},
): Promise<MatchScore[]> {
  if (images.length === 0) throw new InputError("images", "no images to rank");
  const key = sortKey(options.sortBy);
  const { inputIds, attentionMask } = await processor.call({ text });
  const one = { side: "text" as const, encoding: await model.encodeText(inputIds!, attentionMask) };
  const scores = await matchOneToMany(model, one, images.length, options.batchSize, async (b0, b1) => {
    const { pixelValues } = await processor.call({ images: images.slice(b0, b1) });
    return model.encodeImage(pixelValues!);
  });
  return sortBy(scores, key);
}

/**
 * The loop of rankTexts and rankImages, on inputs already prepared (the server's /v1/itm uses it too): `one` side
 * encoded once, the `n` items of the other encoded `batchSize` at a time by `encodeChunk(b0, b1)`, and each chunk
 * fused with the batch-1 side (broadcast inside the fusion graph). Scores in the items' order.
 */
export async function matchOneToMany(
  model: BridgeTowerForImageAndTextRetrieval, one: { side: "text" | "image"; encoding: Encoding }, n: number,
  batchSize: number | undefined, encodeChunk: (b0: number, b1: number) => Promise<Encoding>,
): Promise<MatchScore[]> {
  const scores: MatchScore[] = [];
  for (const [b0, b1] of chunks(n, batchSize)) {
    const other = await encodeChunk(b0, b1);
    const out = one.side === "image" ? await model.fuse(other, one.encoding) : await model.fuse(one.encoding, other);
    scores.push(...matchScores(out["itm.logits"] as Tensor<Float32Array>, b0));
  }
  return scores;
}

function* chunks(n: number, size = 4): Generator<[number, number]> {
  if (!Number.isInteger(size) || size < 1) throw new InputError("batchSize", `must be a positive integer, got ${size}`);
  for (let i = 0; i < n; i += size) yield [i, Math.min(n, i + size)];
}

function matchScores(logits: Tensor<Float32Array>, offset: number): MatchScore[] {
  return Array.from({ length: logits.dims[0] }, (_, b) => {
    const [l0, l1] = sliceBatch(logits, b, b + 1).data;
    return { index: offset + b, score: softmax2(l0, l1), logits: [l0, l1] as [number, number] };
  });
}

/** softmax([a, b])[1], computed stably. */
export function softmax2(a: number, b: number): number {
  return 1 / (1 + Math.exp(a - b));
}

/** Checked before any model work, so a bad value fails fast. */
function sortKey(by: SortBy = "probability"): (s: MatchScore) => number {
  if (!SORT_BY.includes(by)) throw new InputError("sortBy", `must be ${SORT_BY.join(" or ")}, got ${JSON.stringify(by)}`);
  return by === "logit" ? (s) => s.logits[1] : (s) => s.score;
}

function sortBy<T extends MatchScore>(s: T[], key: (s: MatchScore) => number): T[] {
  return [...s].sort((x, y) => key(y) - key(x) || x.index - y.index);
}
