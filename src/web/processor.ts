/**
 * `BridgeTowerProcessor` in the page: the same tokenizer and image processor as Node (src/tokenizer, src/image),
 * their files fetched from a Hub repo or a model folder's URL, images decoded by the browser (image.ts).
 */
import { ConfigError, TokenizerError } from "../errors.js";
import { parseImageProcessorConfig, defaultImageProcessorConfig } from "../image/config.js";
import { BridgeTowerImageProcessor } from "../image/processor.js";
import { ProcessorBase, type BaseCallOptions } from "../processor-base.js";
import { RobertaTokenizer } from "../tokenizer/roberta.js";
import { getText, Source, type SourceOptions } from "./http.js";
import { loadWebImage, type WebImageInput } from "./image.js";

export type ProcessorCallOptions = BaseCallOptions<WebImageInput>;
export type { ProcessorOutput } from "../processor-base.js";

function json(text: string, file: string, error: (file: string, message: string) => Error): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw error(file, `not valid JSON (${(e as Error).message})`);
  }
}

export class BridgeTowerProcessor extends ProcessorBase<WebImageInput, ProcessorCallOptions> {
  constructor(imageProcessor: BridgeTowerImageProcessor, tokenizer: RobertaTokenizer) {
    super(imageProcessor, tokenizer, (image, i) => loadWebImage(image, `image ${i}`));
  }

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
}
