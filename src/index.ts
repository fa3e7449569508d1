export * from "./errors.js";
export {
  BridgeTowerModel, BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM, BridgeTowerForContrastiveLearning,
  BridgeTowerPreTrainedModel, type LoadOptions, type ModelInputs, type Outputs, type Encoding,
} from "./model/bridgetower.js";
export { parseConfig, loadConfig, maxTextTokens, type BridgeTowerConfig, type BridgeTowerTextConfig, type BridgeTowerVisionConfig } from "./model/config.js";
export { int64Tensor, type Tensor } from "./model/tensor.js";
export { BridgeTowerProcessor, type ProcessorCallOptions, type ProcessorOutput } from "./processor.js";
export { RobertaTokenizer, type EncodeOptions, type DecodeOptions } from "./tokenizer/index.js";
export {
  BridgeTowerImageProcessor, loadImage, parseImageProcessorConfig, resizeBicubic,
  type RgbImage, type ImageInput, type ImageProcessorConfig, type LoadImageOptions,
} from "./image/index.js";
export { SafetensorsFile, writeSafetensors } from "./io/safetensors.js";
export { hubFile, resolveModel, type HubOptions } from "./hub/index.js";
export * from "./tasks/index.js";
export { exportModel, type ExportOptions, type ExportResult, type ExportManifest, type ExportHead } from "./export/index.js";
export * from "./collection/index.js";
