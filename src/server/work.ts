/**
 * What each kind of queued work does with the model. Embeddings of many requests run as one onnxruntime call
 * (texts padded to the longest, as the processor's padding "longest"); an ITM or fill-mask request is one call of
 * its own, the same steps as rankTexts/rankImages/fillMask but from the pixel values prepared at admission.
 */
import { fillMaskFromLogits, int64Tensor, matchOneToMany, type BridgeTowerModel, type BridgeTowerProcessor, type Tensor } from "../index.js";
import type { Kind } from "./batcher.js";
import type { ImageIn, TextIn } from "./inputs.js";

export interface ItmJob {
  /** One image against every text, or one text against every image. */
  texts: TextIn[];
  images: ImageIn[];
}
export interface ItmResult {
  index: number;
  score: number;
  logits: [number, number];
}
export interface FillMaskJob {
  text: TextIn;
  image: ImageIn;
  topK: number;
}
export interface FillMaskOutput {
  sequence: string;
  masks: { token: string; token_id: number; score: number }[][];
  decoded: string;
}

/** Kinds whose items run one per call (an item is already a batch of its own, e.g. one image and many texts). */
export const ONE_PER_CALL: ReadonlySet<Kind> = new Set<Kind>(["itm", "fill-mask"]);

/** One batch of a kind: one output per input, in order. */
export type BatchRun = (inputs: unknown[]) => Promise<unknown[]>;

export function runners(model: BridgeTowerModel, processor: BridgeTowerProcessor, maxBatchSize: number): Record<Kind, BatchRun> {
  const tok = processor.tokenizer;
  const S = model.config.visionConfig.imageSize;
  const texts = (xs: TextIn[]) => padded(xs.map((x) => x.ids), tok.padTokenId);
  const images = (xs: ImageIn[]) => stack(xs.map((x) => x.pixels), [3, S, S]);
  const run = <I, O>(f: (inputs: I[]) => Promise<O[]>) => f as BatchRun;
  return {
    text: run(async (xs: TextIn[]) => {
      const t = texts(xs);
      return rows(await model.itc.embedTexts(t.inputIds, t.attentionMask));
    }),
    image: run(async (xs: ImageIn[]) => rows(await model.itc.embedImages(images(xs)))),
    pair: run(async (xs: { text: TextIn; image: ImageIn }[]) => {
      const t = texts(xs.map((x) => x.text));
      const out = await model.itc.run({ ...t, pixelValues: images(xs.map((x) => x.image)) });
      return rows(out["itc.cross_embeds"] as Tensor<Float32Array>);
    }),
    itm: run(async ([job]: ItmJob[]) => [await itm(model, job, texts, images, maxBatchSize)]),
    "fill-mask": run(async ([job]: FillMaskJob[]) => [await fillMask(model, processor, job, images)]),
  };
}

/** rankTexts / rankImages on the prepared inputs: the single side is encoded once and fused with every item of the other, in chunks. */
async function itm(
  model: BridgeTowerModel, job: ItmJob, texts: (xs: TextIn[]) => ReturnType<typeof padded>, images: (xs: ImageIn[]) => Tensor<Float32Array>, chunk: number,
): Promise<ItmResult[]> {
  const head = model.itm;
  const manyTexts = job.images.length === 1;
  const one = manyTexts
    ? { side: "image" as const, encoding: await head.encodeImage(images(job.images)) }
    : { side: "text" as const, encoding: await head.encodeText(...args(texts(job.texts))) };
  const scores = await matchOneToMany(head, one, manyTexts ? job.texts.length : job.images.length, chunk, (b0, b1) =>
    manyTexts ? head.encodeText(...args(texts(job.texts.slice(b0, b1)))) : head.encodeImage(images(job.images.slice(b0, b1))),
  );
  return scores.sort((x, y) => y.score - x.score || x.index - y.index);
}

const args = (t: ReturnType<typeof padded>) => [t.inputIds, t.attentionMask] as const;

/** fillMask: the top-k tokens (softmax over the vocabulary) at each `<mask>`, and the argmax at every position. */
async function fillMask(model: BridgeTowerModel, processor: BridgeTowerProcessor, job: FillMaskJob, images: (xs: ImageIn[]) => Tensor<Float32Array>): Promise<FillMaskOutput> {
  const out = await model.mlm.run({ inputIds: int64Tensor([job.text.ids]), pixelValues: images([job.image]) });
  const r = fillMaskFromLogits(processor, job.text.ids, out["mlm.logits"].data as Float32Array, job.topK);
  return { sequence: r.sequence, masks: r.masks.map((m) => m.map((c) => ({ token: c.token, token_id: c.tokenId, score: c.score }))), decoded: r.decoded };
}

/** Token rows padded on the right with `<pad>` (attention mask 0), as padding "longest". */
export function padded(rows: number[][], padId: number): { inputIds: Tensor<BigInt64Array>; attentionMask: Tensor<BigInt64Array> } {
  const T = Math.max(...rows.map((r) => r.length));
  return {
    inputIds: int64Tensor(rows.map((r) => [...r, ...Array<number>(T - r.length).fill(padId)])),
    attentionMask: int64Tensor(rows.map((r) => [...Array<number>(r.length).fill(1), ...Array<number>(T - r.length).fill(0)])),
  };
}

function stack(items: Float32Array[], itemDims: number[]): Tensor<Float32Array> {
  const per = items[0].length;
  const data = new Float32Array(items.length * per);
  items.forEach((x, i) => data.set(x, i * per));
  return { data, dims: [items.length, ...itemDims] };
}

/** `[B, C]` to B rows (copies, so a response does not hold the whole batch's buffer). */
function rows(t: Tensor<Float32Array>): Float32Array[] {
  const [B, C] = t.dims;
  return Array.from({ length: B }, (_, b) => t.data.slice(b * C, (b + 1) * C));
}
