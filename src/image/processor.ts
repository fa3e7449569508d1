/**
 * BridgeTowerImageProcessor.preprocess of transformers 4.39.3 (numpy + Pillow 9.4), bit for bit:
 * resize -> center crop (uint8, zero padding) -> rescale -> normalize (float32) -> CHW -> batch pad.
 */
import { ImageError, InputError } from "../errors.js";
import {
  checkImageProcessorConfig,
  defaultImageProcessorConfig,
  loadImageProcessorConfig,
  type ImageProcessorConfig,
} from "./config.js";
import { checkRgbImage } from "./decode.js";
import { resizeBicubic } from "./resample.js";
import type { RgbImage } from "./types.js";

export interface PreprocessOptions {
  /** Overrides the config. BridgeTowerProcessor (4.39.3) always passes do_center_crop=True. */
  doCenterCrop?: boolean;
  /**
   * Reproduce calling the v4 image processor directly without do_center_crop: upstream never
   * assigns the default, so no crop happens although the config says do_center_crop=True.
   * Ignored when `doCenterCrop` is given.
   */
  upstreamCropBug?: boolean;
}

export interface PreprocessResult {
  /** float32 [B, 3, H, W], zero (0.0, after normalisation) on batch padding. */
  pixelValues: Float32Array;
  /** int64 [B, H, W]: 1 on image pixels, 0 on batch padding. */
  pixelMask: BigInt64Array;
  shape: [number, number, number, number];
}

/** `get_resize_output_image_size` for shortest edge `shorter`; returns [height, width]. */
export function resizeOutputSize(height: number, width: number, shorter: number, sizeDivisor: number): [number, number] {
  const longer = Math.trunc((1333 / 800) * shorter);
  const scale = shorter / Math.min(height, width);
  let nh: number, nw: number;
  if (height < width) {
    nh = shorter;
    nw = scale * width;
  } else {
    nh = scale * height;
    nw = shorter;
  }
  if (Math.max(nh, nw) > longer) {
    const s = longer / Math.max(nh, nw);
    nh = s * nh;
    nw = s * nw;
  }
  nh = Math.trunc(nh + 0.5);
  nw = Math.trunc(nw + 0.5);
  return [Math.floor(nh / sizeDivisor) * sizeDivisor, Math.floor(nw / sizeDivisor) * sizeDivisor];
}

export class BridgeTowerImageProcessor {
  readonly config: ImageProcessorConfig;

  constructor(config: Partial<ImageProcessorConfig> = {}) {
    const c = { ...defaultImageProcessorConfig(), ...config };
    checkImageProcessorConfig(c);
    this.config = c;
  }

  /** From `<dir>/preprocessor_config.json` (class defaults when absent). */
  static async fromFolder(dir: string): Promise<BridgeTowerImageProcessor> {
    return new BridgeTowerImageProcessor(await loadImageProcessorConfig(dir));
  }

  preprocess(images: RgbImage[], options: PreprocessOptions = {}): PreprocessResult {
    const c = this.config;
    if (!Array.isArray(images) || images.length === 0) throw new InputError("images", "expected a non-empty array of images");
    const doCrop = options.doCenterCrop ?? (options.upstreamCropBug ? false : c.doCenterCrop);
    const crop = (c.cropSize ?? c.size).shortestEdge;

    const resized = images.map((img, i) => {
      checkRgbImage(img, `image ${i}`);
      if (!c.doResize) return img;
      const [h, w] = resizeOutputSize(img.height, img.width, c.size.shortestEdge, c.sizeDivisor);
      if (h < 1 || w < 1) {
        // Pillow refuses a zero-sized resize; this happens for extreme aspect ratios.
        throw new ImageError(`image ${i}`, `${img.width}x${img.height} would be resized to ${w}x${h}`);
      }
      return resizeBicubic(img, w, h);
    });
    const sizes = resized.map((r) => (doCrop ? [crop, crop] : [r.height, r.width]) as [number, number]);
    const maxH = Math.max(...sizes.map((s) => s[0]));
    const maxW = Math.max(...sizes.map((s) => s[1]));
    if (!c.doPad && sizes.some(([h, w]) => h !== maxH || w !== maxW)) {
      throw new InputError("images", "images have different sizes after preprocessing and doPad is false");
    }

    // Each output value depends only on (channel, uint8 value): a 768-entry table is exact.
    const lut = new Float32Array(3 * 256);
    const mean = c.imageMean.map(Math.fround);
    const std = c.imageStd.map(Math.fround);
    for (let ch = 0; ch < 3; ch++) {
      for (let u = 0; u < 256; u++) {
        // rescale: float64 product cast to float32; normalize: float32 arithmetic.
        let x = c.doRescale ? Math.fround(u * c.rescaleFactor) : u;
        if (c.doNormalize) x = Math.fround(Math.fround(x - mean[ch]!) / std[ch]!);
        lut[ch * 256 + u] = x;
      }
    }

    const B = images.length;
    const plane = maxH * maxW;
    const pixelValues = new Float32Array(B * 3 * plane);
    const pixelMask = new BigInt64Array(B * plane);
    resized.forEach((img, b) => {
      const [h, w] = sizes[b]!;
      // numpy center_crop: window offset floor((in - out) / 2); outside the image is uint8 zero.
      const top = doCrop ? Math.floor((img.height - h) / 2) : 0;
      const left = doCrop ? Math.floor((img.width - w) / 2) : 0;
      const src = img.data;
      for (let ch = 0; ch < 3; ch++) {
        const base = (b * 3 + ch) * plane;
        const l = ch * 256;
        const zero = lut[l]!;
        for (let y = 0; y < h; y++) {
          const sy = y + top;
          const o = base + y * maxW;
          if (sy < 0 || sy >= img.height) {
            pixelValues.fill(zero, o, o + w);
            continue;
          }
          const row = sy * img.width;
          for (let x = 0; x < w; x++) {
            const sx = x + left;
            pixelValues[o + x] = sx < 0 || sx >= img.width ? zero : lut[l + src[(row + sx) * 3 + ch]!]!;
          }
        }
      }
      for (let y = 0; y < h; y++) pixelMask.fill(1n, b * plane + y * maxW, b * plane + y * maxW + w);
    });
    return { pixelValues, pixelMask, shape: [B, 3, maxH, maxW] };
  }
}
