/**
 * `BridgeTowerProcessor`: the RoBERTa tokenizer and the image processor behind one call, returning tensors
 * the models take. Defaults follow transformers' processor (center crop on, no padding or truncation).
 */
import { TokenizerError } from "./errors.js";
import { hubFile, isLocalFolder, type HubOptions } from "./hub/index.js";
import { BridgeTowerImageProcessor, loadImage, type ImageInput, type LoadImageOptions } from "./image/index.js";
import { ProcessorBase, type BaseCallOptions } from "./processor-base.js";
import { RobertaTokenizer } from "./tokenizer/index.js";

export interface ProcessorCallOptions extends BaseCallOptions<ImageInput>, LoadImageOptions {}

export type { ProcessorOutput } from "./processor-base.js";

const PROCESSOR_FILES = ["preprocessor_config.json", "tokenizer.json", "vocab.json", "merges.txt"];

export class BridgeTowerProcessor extends ProcessorBase<ImageInput, ProcessorCallOptions> {
  constructor(imageProcessor: BridgeTowerImageProcessor, tokenizer: RobertaTokenizer) {
    super(imageProcessor, tokenizer, (image, _i, options) => loadImage(image, options));
  }

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
}
