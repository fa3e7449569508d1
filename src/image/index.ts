export type { RgbImage, ImageInput } from "./types.js";
export { loadImage, DEFAULT_MAX_PIXELS, type LoadImageOptions } from "./decode.js";
export { resizeBicubic } from "./resample.js";
export {
  parseImageProcessorConfig,
  loadImageProcessorConfig,
  defaultImageProcessorConfig,
  type ImageProcessorConfig,
} from "./config.js";
export {
  BridgeTowerImageProcessor,
  resizeOutputSize,
  type PreprocessOptions,
  type PreprocessResult,
} from "./processor.js";
