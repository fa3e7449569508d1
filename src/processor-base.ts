/**
 * What `BridgeTowerProcessor` does once its files are read, shared by Node (processor.ts) and the page
 * (web/processor.ts): tokenize, decode and preprocess images, return the tensors the models take. Only how an
 * image input becomes RGB pixels differs (sharp in Node, the browser's decoders in the page).
 */
import { InputError } from "./errors.js";
import type { BridgeTowerImageProcessor } from "./image/processor.js";
import type { RgbImage } from "./image/types.js";
import { int64Tensor, type Tensor } from "./model/tensor.js";
import type { DecodeOptions, RobertaTokenizer } from "./tokenizer/roberta.js";
import type { EncodeOptions } from "./tokenizer/options.js";

export interface ProcessorOutput {
  inputIds?: Tensor<BigInt64Array>;
  attentionMask?: Tensor<BigInt64Array>;
  pixelValues?: Tensor<Float32Array>;
  pixelMask?: Tensor<BigInt64Array>;
}

export interface BaseCallOptions<I> extends EncodeOptions {
  images?: I | I[];
  text?: string | string[];
  /** Default true, as BridgeTowerProcessor passes it. */
  doCenterCrop?: boolean;
}

/** Decodes the `index`-th image input of a call to RGB. */
export type ImageLoader<I, O> = (input: I, index: number, options: O) => Promise<RgbImage>;

export class ProcessorBase<I, O extends BaseCallOptions<I>> {
  constructor(
    readonly imageProcessor: BridgeTowerImageProcessor,
    readonly tokenizer: RobertaTokenizer,
    private readonly loadImage: ImageLoader<I, O>,
  ) {}

  /** Tokenizes `text` and preprocesses `images` (either may be omitted). */
  async call(options: O): Promise<ProcessorOutput> {
    const out: ProcessorOutput = {};
    if (options.text !== undefined) {
      const enc = this.tokenizer.encode(options.text, options);
      out.inputIds = rectangular(enc.inputIds, "text");
      out.attentionMask = rectangular(enc.attentionMask, "text");
    }
    if (options.images !== undefined) {
      const list = (Array.isArray(options.images) ? options.images : [options.images]) as I[];
      const images = await Promise.all(list.map((img, i) => this.loadImage(img, i, options)));
      const r = this.imageProcessor.preprocess(images, { doCenterCrop: options.doCenterCrop ?? true });
      const [B, , H, W] = r.shape;
      out.pixelValues = { data: r.pixelValues, dims: r.shape };
      out.pixelMask = { data: r.pixelMask, dims: [B, H, W] };
    }
    return out;
  }

  decode(ids: number[], options?: DecodeOptions): string {
    return this.tokenizer.decode(ids, options);
  }

  batchDecode(ids: number[][], options?: DecodeOptions): string[] {
    return this.tokenizer.batchDecode(ids, options);
  }
}

/** Token rows as an int64 `[B, T]` tensor; rows of different lengths need padding. */
function rectangular(rows: number[][], what: string): Tensor<BigInt64Array> {
  const T = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== T))
    throw new InputError(what, `the texts have different lengths (${rows.map((r) => r.length).join(", ")} tokens): pass padding ("longest" or "max_length") to batch them`);
  return int64Tensor(rows);
}
