/** Contrastive embeddings (`BridgeTowerForContrastiveLearning`) for search: text, image and cross-modal. */
import { InputError } from "../errors.js";
import type { ImageInput } from "../image/index.js";
import type { BridgeTowerForContrastiveLearning } from "../model/bridgetower.js";
import type { Tensor } from "../model/tensor.js";
import type { BridgeTowerProcessor } from "../processor.js";

export interface Embeddings {
  textEmbeds: number[][];
  imageEmbeds: number[][];
  /** Embeddings of (text i, image i) pairs; null unless there are as many texts as images. */
  crossEmbeds: number[][] | null;
  /** Cosine similarity of every text (rows) with every image (columns). */
  textImageSimilarity: number[][];
}

export async function embed(
  model: BridgeTowerForContrastiveLearning, processor: BridgeTowerProcessor, inputs: { texts?: string[]; images?: ImageInput[] },
): Promise<Embeddings> {
  const texts = inputs.texts ?? [];
  const images = inputs.images ?? [];
  if (texts.length === 0 && images.length === 0) throw new InputError("", "nothing to embed: give at least one text or image");
  const t = texts.length ? await processor.call({ text: texts, padding: "longest" }) : {};
  const i = images.length ? await processor.call({ images }) : {};
  let textEmbeds: number[][] = [];
  let imageEmbeds: number[][] = [];
  let crossEmbeds: number[][] | null = null;
  if (texts.length > 0 && texts.length === images.length) {
    const out = await model.run({ inputIds: t.inputIds!, attentionMask: t.attentionMask, pixelValues: i.pixelValues! });
    textEmbeds = rows(out["itc.text_embeds"]);
    imageEmbeds = rows(out["itc.image_embeds"]);
    crossEmbeds = rows(out["itc.cross_embeds"]);
  } else {
    if (texts.length) textEmbeds = rows(await model.embedTexts(t.inputIds!, t.attentionMask));
    if (images.length) imageEmbeds = rows(await model.embedImages(i.pixelValues!));
  }
  const textImageSimilarity = textEmbeds.map((a) => imageEmbeds.map((b) => cosine(a, b)));
  return { textEmbeds, imageEmbeds, crossEmbeds, textImageSimilarity };
}

function rows(t: Tensor): number[][] {
  const [B, C] = t.dims;
  return Array.from({ length: B }, (_, b) => Array.from(t.data.subarray(b * C, (b + 1) * C) as Float32Array));
}

/** Cosine similarity of two vectors. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let k = 0; k < a.length; k++) {
    dot += a[k] * b[k];
    na += a[k] * a[k];
    nb += b[k] * b[k];
  }
  return dot / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-12);
}
