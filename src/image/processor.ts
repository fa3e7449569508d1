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
import { resizeBicubicRegion } from "./resample.js";
import { checkRgbImage, type RgbImage } from "./types.js";

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

    // Per image: the output box (h x w) and the part of it that comes from image pixels; the
    // rest is center-crop padding, uint8 zero (numpy center_crop pads before rescaling).
    const parts = images.map((img, i) => {
      checkRgbImage(img, `image ${i}`);
      let [rh, rw] = [img.height, img.width];
      if (c.doResize) {
        [rh, rw] = resizeOutputSize(img.height, img.width, c.size.shortestEdge, c.sizeDivisor);
        if (rh < 1 || rw < 1) {
          // Pillow refuses a zero-sized resize; this happens for extreme aspect ratios.
          throw new ImageError(`image ${i}`, `${img.width}x${img.height} would be resized to ${rw}x${rh}`);
        }
      }
      const [h, w] = doCrop ? [crop, crop] : [rh, rw];
      // numpy center_crop: window offset floor((in - out) / 2), may be negative.
      const top = Math.floor((rh - h) / 2);
      const left = Math.floor((rw - w) / 2);
      const y0 = Math.max(0, top), y1 = Math.min(rh, top + h);
      const x0 = Math.max(0, left), x1 = Math.min(rw, left + w);
      const src = c.doResize ? resizeBicubicRegion(img, rw, rh, x0, y0, x1 - x0, y1 - y0) : img;
      const [sy, sx] = c.doResize ? [0, 0] : [y0, x0];
      return { h, w, src, sy, sx, dy: y0 - top, dx: x0 - left, rows: y1 - y0, cols: x1 - x0 };
    });
    const maxH = Math.max(...parts.map((p) => p.h));
    const maxW = Math.max(...parts.map((p) => p.w));
    if (!c.doPad && parts.some((p) => p.h !== maxH || p.w !== maxW)) {
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
    parts.forEach((p, b) => {
      const { src } = p;
      for (let ch = 0; ch < 3; ch++) {
        const base = (b * 3 + ch) * plane;
        const l = ch * 256;
        const zero = lut[l]!;
        for (let y = 0; y < p.h; y++) {
          const o = base + y * maxW;
          const ry = y - p.dy;
          if (ry < 0 || ry >= p.rows) {
            pixelValues.fill(zero, o, o + p.w);
            continue;
          }
          pixelValues.fill(zero, o, o + p.dx);
          pixelValues.fill(zero, o + p.dx + p.cols, o + p.w);
          let s = ((p.sy + ry) * src.width + p.sx) * 3 + ch;
          const d = o + p.dx;
          for (let x = 0; x < p.cols; x++, s += 3) pixelValues[d + x] = lut[l + src.data[s]!]!;
        }
      }
      for (let y = 0; y < p.h; y++) pixelMask.fill(1n, b * plane + y * maxW, b * plane + y * maxW + p.w);
    });
    return { pixelValues, pixelMask, shape: [B, 3, maxH, maxW] };
  }
}
