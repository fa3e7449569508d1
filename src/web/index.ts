/**
 * `bridgetower/web`: the library in a browser tab, on onnxruntime-web. The model classes, tasks, graph builders,
 * tokenizer and image math are Node's own modules; the page supplies the Engine (web/engine.ts: weights over HTTP
 * by Range requests, int8 kept in Cache Storage), the processor's file and image loading, and the runtime.
 */
import * as models from "../model/bridgetower.js";
import type { TaskHead } from "../model/plan.js";
import * as tasks from "../tasks/index.js";
import type { Embeddings, FillMaskResult, RankOptions, MatchScore, TextMatch } from "../tasks/index.js";
import type { LoadOptions } from "./engine.js";
import type { WebImageInput } from "./image.js";
import type { BridgeTowerProcessor } from "./processor.js";

export * from "../errors.js";
export { StorageError } from "./errors.js";
export { BridgeTowerProcessor, type ProcessorCallOptions, type ProcessorOutput } from "./processor.js";
export { clearCache } from "./cache.js";
export { RobertaTokenizer } from "../tokenizer/roberta.js";
export { BridgeTowerImageProcessor } from "../image/processor.js";
export { parseConfig, type BridgeTowerConfig } from "../model/config.js";
export { int64Tensor, type Tensor } from "../model/tensor.js";
export type { LoadOptions, Progress } from "./engine.js";
export { loadWebImage as loadImage, type WebImageInput } from "./image.js";
export type { RgbImage } from "../image/types.js";
export type { Embeddings, FillMaskResult, MaskCandidate, MatchScore, RankOptions, TextMatch } from "../tasks/index.js";
export type { ModelInputs, Outputs, Encoding } from "../model/bridgetower.js";

/** A model class as the page sees it: `fromPretrained` takes a Hub repo id or the URL of a model folder. */
interface ModelClass<T, O = LoadOptions> {
  new (...args: never[]): T;
  fromPretrained(idOrUrl: string, options?: O): Promise<T>;
}

export type BridgeTowerModel = models.BridgeTowerModel;
export const BridgeTowerModel = models.BridgeTowerModel as unknown as ModelClass<BridgeTowerModel, LoadOptions & { heads?: TaskHead[] | "available" }>;
export type BridgeTowerForImageAndTextRetrieval = models.BridgeTowerForImageAndTextRetrieval;
export const BridgeTowerForImageAndTextRetrieval = models.BridgeTowerForImageAndTextRetrieval as unknown as ModelClass<BridgeTowerForImageAndTextRetrieval>;
export type BridgeTowerForMaskedLM = models.BridgeTowerForMaskedLM;
export const BridgeTowerForMaskedLM = models.BridgeTowerForMaskedLM as unknown as ModelClass<BridgeTowerForMaskedLM>;
export type BridgeTowerForContrastiveLearning = models.BridgeTowerForContrastiveLearning;
export const BridgeTowerForContrastiveLearning = models.BridgeTowerForContrastiveLearning as unknown as ModelClass<BridgeTowerForContrastiveLearning>;

// The tasks are Node's; only their image type differs in the page.
export const rankTexts: (
  model: BridgeTowerForImageAndTextRetrieval, processor: BridgeTowerProcessor, image: WebImageInput, texts: string[], options?: RankOptions,
) => Promise<TextMatch[]> = tasks.rankTexts as never;
export const rankImages: (
  model: BridgeTowerForImageAndTextRetrieval, processor: BridgeTowerProcessor, images: WebImageInput[], text: string, options?: RankOptions,
) => Promise<MatchScore[]> = tasks.rankImages as never;
export const fillMask: (
  model: BridgeTowerForMaskedLM, processor: BridgeTowerProcessor, image: WebImageInput, text: string, topK?: number,
) => Promise<FillMaskResult> = tasks.fillMask as never;
export const embed: (
  model: BridgeTowerForContrastiveLearning, processor: BridgeTowerProcessor, inputs: { texts?: string[]; images?: WebImageInput[] },
) => Promise<Embeddings> = tasks.embed as never;
