/**
 * BridgeTowerImageProcessor settings (transformers 4.39.3) and the parser for every
 * preprocessor_config.json shape found on the Hub.
 */
import { join, readFile } from "../io/local-files.js";
import { ConfigError } from "../errors.js";

export interface ImageProcessorConfig {
  doResize: boolean;
  /** Short side after resizing; the long side is capped at int(1333 / 800 * shortestEdge). */
  size: { shortestEdge: number };
  /** Both resized sides are floored to a multiple of this. */
  sizeDivisor: number;
  /** PIL resampling filter id; only 3 (BICUBIC) is implemented. */
  resample: number;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  doCenterCrop: boolean;
  /** Square crop side; null means `size`. */
  cropSize: { shortestEdge: number } | null;
  doPad: boolean;
}

export const BICUBIC = 3;

/** Class defaults of BridgeTowerImageProcessor (OPENAI_CLIP mean/std). */
export function defaultImageProcessorConfig(): ImageProcessorConfig {
  return {
    doResize: true,
    size: { shortestEdge: 288 },
    sizeDivisor: 32,
    resample: BICUBIC,
    doRescale: true,
    rescaleFactor: 1 / 255,
    doNormalize: true,
    imageMean: [0.48145466, 0.4578275, 0.40821073],
    imageStd: [0.26862954, 0.26130258, 0.27577711],
    doCenterCrop: true,
    cropSize: null,
    doPad: true,
  };
}

type Json = Record<string, unknown>;

function isObject(x: unknown): x is Json {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function positiveInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v > 0;
}

/** `size` / `crop_size`: an int (get_size_dict turns it into shortest_edge) or {"shortest_edge": n}. */
function edgeSize(v: unknown, field: string, source: string): { shortestEdge: number } {
  if (positiveInt(v)) return { shortestEdge: v };
  if (isObject(v) && positiveInt(v.shortest_edge)) return { shortestEdge: v.shortest_edge };
  // {"height", "width"} parses in HF but resize/center_crop then fail on the missing shortest_edge.
  throw new ConfigError(source, `${field} must be a positive integer or {"shortest_edge": n}, got ${JSON.stringify(v)}`);
}

function triple(v: unknown, field: string, source: string): [number, number, number] {
  if (typeof v === "number" && Number.isFinite(v)) return [v, v, v];
  if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number" && Number.isFinite(x))) {
    return [v[0], v[1], v[2]];
  }
  throw new ConfigError(source, `${field} must be a number or a list of 3 numbers, got ${JSON.stringify(v)}`);
}

function bool(v: unknown, field: string, source: string): boolean {
  if (typeof v !== "boolean") throw new ConfigError(source, `${field} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Parse a preprocessor_config.json. Unknown keys are ignored, which covers the large checkpoints'
 * 99-byte {"size": 294, "tokenizer": ...} file and the base checkpoints' training config (no `size`,
 * so the default 288 applies).
 */
export function parseImageProcessorConfig(json: unknown, source = "preprocessor_config.json"): ImageProcessorConfig {
  if (!isObject(json)) throw new ConfigError(source, "expected a JSON object");
  const c = defaultImageProcessorConfig();
  const has = (k: string) => json[k] !== undefined && json[k] !== null;
  if (has("do_resize")) c.doResize = bool(json.do_resize, "do_resize", source);
  if (has("size")) c.size = edgeSize(json.size, "size", source);
  if (has("size_divisor")) {
    if (!positiveInt(json.size_divisor)) {
      throw new ConfigError(source, `size_divisor must be a positive integer, got ${JSON.stringify(json.size_divisor)}`);
    }
    c.sizeDivisor = json.size_divisor;
  }
  if (has("resample")) {
    if (json.resample !== BICUBIC) {
      throw new ConfigError(source, `resample ${JSON.stringify(json.resample)} is not supported (only 3 = BICUBIC)`);
    }
    c.resample = BICUBIC;
  }
  if (has("do_rescale")) c.doRescale = bool(json.do_rescale, "do_rescale", source);
  if (has("rescale_factor")) {
    if (typeof json.rescale_factor !== "number" || !Number.isFinite(json.rescale_factor)) {
      throw new ConfigError(source, `rescale_factor must be a number, got ${JSON.stringify(json.rescale_factor)}`);
    }
    c.rescaleFactor = json.rescale_factor;
  }
  if (has("do_normalize")) c.doNormalize = bool(json.do_normalize, "do_normalize", source);
  if (has("image_mean")) c.imageMean = triple(json.image_mean, "image_mean", source);
  if (has("image_std")) c.imageStd = triple(json.image_std, "image_std", source);
  if (has("do_center_crop")) c.doCenterCrop = bool(json.do_center_crop, "do_center_crop", source);
  if (has("crop_size")) c.cropSize = edgeSize(json.crop_size, "crop_size", source);
  if (has("do_pad")) c.doPad = bool(json.do_pad, "do_pad", source);
  // Deprecated alias: HF applies it only when truthy.
  if (has("pad_and_return_pixel_mask") && bool(json.pad_and_return_pixel_mask, "pad_and_return_pixel_mask", source)) {
    c.doPad = true;
  }
  checkImageProcessorConfig(c, source);
  return c;
}

/** Validate a config built in code (constructor input); throws ConfigError naming the field. */
export function checkImageProcessorConfig(c: ImageProcessorConfig, source = "<image processor config>"): void {
  const bad = (field: string, v: unknown, want: string) =>
    new ConfigError(source, `${field} must be ${want}, got ${JSON.stringify(v)}`);
  for (const k of ["doResize", "doRescale", "doNormalize", "doCenterCrop", "doPad"] as const) {
    if (typeof c[k] !== "boolean") throw bad(k, c[k], "a boolean");
  }
  if (!isObject(c.size) || !positiveInt(c.size.shortestEdge)) throw bad("size", c.size, "{shortestEdge: positive integer}");
  if (c.cropSize !== null && (!isObject(c.cropSize) || !positiveInt(c.cropSize.shortestEdge))) {
    throw bad("cropSize", c.cropSize, "null or {shortestEdge: positive integer}");
  }
  if (!positiveInt(c.sizeDivisor)) throw bad("sizeDivisor", c.sizeDivisor, "a positive integer");
  if (c.resample !== BICUBIC) throw bad("resample", c.resample, "3 (BICUBIC, the only one implemented)");
  if (typeof c.rescaleFactor !== "number" || !Number.isFinite(c.rescaleFactor)) {
    throw bad("rescaleFactor", c.rescaleFactor, "a finite number");
  }
  for (const k of ["imageMean", "imageStd"] as const) {
    const v = c[k];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      throw bad(k, v, "3 finite numbers");
    }
  }
}

/** Read `<dir>/preprocessor_config.json`; class defaults when the file does not exist. */
export async function loadImageProcessorConfig(dir: string): Promise<ImageProcessorConfig> {
  const file = join(dir, "preprocessor_config.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return defaultImageProcessorConfig();
    throw new ConfigError(file, `cannot read: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, `invalid JSON: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return parseImageProcessorConfig(json, file);
}
