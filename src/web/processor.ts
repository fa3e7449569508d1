/**
 * `BridgeTowerProcessor` in the page: the same tokenizer and image processor as Node (src/tokenizer, src/image),
 * their files fetched from a Hub repo or a model folder's URL, images decoded by the browser (image.ts).
 */
import { ConfigError, InputError, TokenizerError } from "../errors.js";
import { parseImageProcessorConfig, defaultImageProcessorConfig } from "../image/config.js";
import { BridgeTowerImageProcessor } from "../image/processor.js";
import { int64Tensor, type Tensor } from "../model/tensor.js";
import { RobertaTokenizer, type DecodeOptions } from "../tokenizer/roberta.js";
import type { EncodeOptions } from "../tokenizer/options.js";
import { getText, Source, type SourceOptions } from "./http.js";
import { loadWebImage, type WebImageInput } from "./image.js";

export interface ProcessorCallOptions extends EncodeOptions {
  images?: WebImageInput | WebImageInput[];
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

function json(text: string, file: string, error: (file: string, message: string) => Error): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw error(file, `not valid JSON (${(e as Error).message})`);
  }
}

export class BridgeTowerProcessor {
  constructor(readonly imageProcessor: BridgeTowerImageProcessor, readonly tokenizer: RobertaTokenizer) {}

  /**
   * From a Hub repo id or a model folder's URL: preprocessor_config.json (class defaults when absent) and
   * tokenizer.json, else vocab.json + merges.txt.
   */
  static async fromPretrained(idOrUrl: string, options: SourceOptions = {}): Promise<BridgeTowerProcessor> {
    const src = Source.resolve(idOrUrl, options);
    const pre = await getText(src, "preprocessor_config.json", true);
    const tokJson = await getText(src, "tokenizer.json", true);
    const [vocab, merges] = tokJson === undefined ? await Promise.all([getText(src, "vocab.json", true), getText(src, "merges.txt", true)]) : [];
    if (pre === undefined && tokJson === undefined && vocab === undefined && merges === undefined)
      throw new TokenizerError(src.label, "the repository has no preprocessor or tokenizer files");
    const url = (f: string) => src.url(f);
    const config = pre === undefined ? defaultImageProcessorConfig() : parseImageProcessorConfig(json(pre, url("preprocessor_config.json"), (f, m) => new ConfigError(f, m)), url("preprocessor_config.json"));
    let tokenizer: RobertaTokenizer;
    if (tokJson !== undefined) tokenizer = RobertaTokenizer.fromTokenizerJson(tokJson, url("tokenizer.json"));
    else if (vocab === undefined || merges === undefined) {
      const missing = [vocab === undefined ? "vocab.json" : "", merges === undefined ? "merges.txt" : ""].filter(Boolean);
      throw new TokenizerError(src.label, `no tokenizer.json, and ${missing.join(" and ")} missing (need tokenizer.json, or vocab.json + merges.txt)`);
    } else tokenizer = RobertaTokenizer.fromVocabMerges(json(vocab, url("vocab.json"), (f, m) => new TokenizerError(f, m)) as Record<string, number>, merges);
    return new BridgeTowerProcessor(new BridgeTowerImageProcessor(config), tokenizer);
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
      const images = await Promise.all(list.map((img, i) => loadWebImage(img, `image ${i}`)));
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
