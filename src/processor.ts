/**
 * `BridgeTowerProcessor`: the RoBERTa tokenizer and the image processor behind one call, returning tensors
 * the models take. Defaults follow transformers' processor (center crop on, no padding or truncation).
 */
import { InputError, TokenizerError } from "./errors.js";
import { hubFile, isLocalFolder, type HubOptions } from "./hub/index.js";
import { BridgeTowerImageProcessor, loadImage, type ImageInput, type LoadImageOptions } from "./image/index.js";
import { int64Tensor, type Tensor } from "./model/tensor.js";
import { RobertaTokenizer, type DecodeOptions, type EncodeOptions } from "./tokenizer/index.js";

export interface ProcessorCallOptions extends EncodeOptions, LoadImageOptions {
  images?: ImageInput | ImageInput[];
  text?: string | string[];
  /** Default true, as BridgeTowerProcessor passes it. */
  doCenterCrop?: boolean;
}

export interface ProcessorOutput {
  inputIds?: Tensor<BigInt64Array>;
  attentionMask?: Tensor<BigInt64Array>;
  pixelValues?: Tensor<Float32Array>;
  pixelMask?: Tensor<BigInt64Array>;
}

const PROCESSOR_FILES = ["preprocessor_config.json", "tokenizer.json", "vocab.json", "merges.txt"];

export class BridgeTowerProcessor {
  constructor(readonly imageProcessor: BridgeTowerImageProcessor, readonly tokenizer: RobertaTokenizer) {}

  /** From a model folder or a Hub id (preprocessor_config.json plus tokenizer.json or vocab.json + merges.txt). */
  static async fromPretrained(idOrDir: string, options: HubOptions = {}): Promise<BridgeTowerProcessor> {
    let dir = idOrDir;
    if (!isLocalFolder(idOrDir)) {
      let found: string | undefined;
      for (const f of PROCESSOR_FILES) found = (await hubFile(idOrDir, f, { ...options, optional: true })) ?? found;
      if (!found) throw new TokenizerError(idOrDir, "the repository has no preprocessor or tokenizer files");
      dir = found.slice(0, found.lastIndexOf("/"));
    }
    const [imageProcessor, tokenizer] = await Promise.all([BridgeTowerImageProcessor.fromFolder(dir), RobertaTokenizer.fromFolder(dir)]);
    return new BridgeTowerProcessor(imageProcessor, tokenizer);
  }

  /** Tokenizes `text` and preprocesses `images` (either may be omitted). */
  async call(options: ProcessorCallOptions): Promise<ProcessorOutput> {
    const out: ProcessorOutput = {};
    if (options.text !== undefined) {
      const enc = this.tokenizer.encode(options.text, options);
      out.inputIds = rectangular(enc.inputIds, "text");
      out.attentionMask = rectangular(enc.attentionMask, "text");
    }
    if (options.images !== undefined) {
      const list = Array.isArray(options.images) ? options.images : [options.images];
      const images = await Promise.all(list.map((i) => loadImage(i, options)));
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
