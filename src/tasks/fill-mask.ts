/**
 * Visual fill-in-the-blank with `BridgeTowerForMaskedLM`: top-k tokens for each `<mask>` given an image, and the
 * model card's printout (the most likely token at every position, decoded).
 */
import { InputError } from "../errors.js";
import type { ImageInput } from "../image/index.js";
import type { BridgeTowerForMaskedLM } from "../model/bridgetower.js";
import type { BridgeTowerProcessor } from "../processor.js";

export interface MaskCandidate {
  /** The token as text (`tokenizer.decode([id])`, e.g. " cat"). */
  token: string;
  tokenId: number;
  /** softmax over the whole vocabulary at the mask position. */
  score: number;
}

export interface FillMaskResult {
  /** The text with every mask replaced by its best token (special tokens removed). */
  sequence: string;
  /** One list of candidates per `<mask>`, best first. */
  masks: MaskCandidate[][];
  /**
   * The model card's `processor.decode(outputs.logits.argmax(dim=-1).squeeze(0).tolist())`: the argmax at every
   * position, `<s>` and `</s>` included, decoded with the defaults (special tokens kept, spaces cleaned up).
   */
  decoded: string;
}

export async function fillMask(
  model: BridgeTowerForMaskedLM, processor: BridgeTowerProcessor, image: ImageInput, text: string, topK = 5,
): Promise<FillMaskResult> {
  if (!Number.isInteger(topK) || topK < 1) throw new InputError("topK", `must be a positive integer, got ${topK}`);
  const tok = processor.tokenizer;
  const { inputIds, attentionMask, pixelValues } = await processor.call({ text, images: image });
  const ids = Array.from(inputIds!.data, Number);
  const positions = ids.flatMap((id, i) => (id === tok.maskTokenId ? [i] : []));
  if (positions.length === 0) throw new InputError(text, "the text has no <mask> token to fill");
  const out = await model.run({ inputIds: inputIds!, attentionMask, pixelValues: pixelValues! });
  return fillMaskFromLogits(processor, ids, out["mlm.logits"].data as Float32Array, topK);
}

/**
 * The result of `fillMask` from the MLM logits `[T, V]` of one text `ids` (for callers that run the model
 * themselves, e.g. batched in a server): top-k at each `<mask>`, the filled sequence, the argmax decode.
 */
export function fillMaskFromLogits(processor: BridgeTowerProcessor, ids: number[], logits: Float32Array, topK: number): FillMaskResult {
  const tok = processor.tokenizer;
  const V = logits.length / ids.length;
  const row = (p: number) => logits.subarray(p * V, (p + 1) * V);
  const positions = ids.flatMap((id, i) => (id === tok.maskTokenId ? [i] : []));
  const masks = positions.map((p) => topTokens(row(p), Math.min(topK, V)).map(({ id, p: score }) => ({ token: tok.decode([id]), tokenId: id, score })));
  const filled = [...ids];
  positions.forEach((p, k) => (filled[p] = masks[k][0].tokenId));
  const best = ids.map((_, p) => argmax(row(p)));
  return { sequence: tok.decode(filled, { skipSpecialTokens: true }), masks, decoded: processor.decode(best) };
}

/** Index of the largest logit, the first one on ties (as torch.argmax). */
function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** The k most probable ids of a logit row under softmax (float64 accumulation). */
function topTokens(row: Float32Array, k: number): { id: number; p: number }[] {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let z = 0;
  for (const v of row) z += Math.exp(v - max);
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (best.length < k || row[i] > row[best[best.length - 1]]) {
      best.push(i);
      best.sort((a, b) => row[b] - row[a] || a - b);
      if (best.length > k) best.pop();
    }
  }
  return best.map((id) => ({ id, p: Math.exp(row[id] - max) / z }));
}
