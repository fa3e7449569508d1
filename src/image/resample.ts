/**
 * Pillow 9.4 `Image.resize(size, BICUBIC)` for 8-bit RGB, ported from libImaging/Resample.c.
 * Every step (coefficient rounding, the uint8 intermediate, the pass order) is kept as in C,
 * because any shortcut changes some output bytes.
 */
import type { RgbImage } from "./types.js";

const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** Keys cubic, a = -0.5, support 2 (Resample.c `bicubic_filter`; same evaluation order). */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}
const BICUBIC_SUPPORT = 2;

interface Coeffs {
  ksize: number;
  /** Per output index: first input index, number of taps. */
  bounds: Int32Array;
  /** 22-bit fixed-point weights, `ksize` per output index. */
  kk: Int32Array;
}

/** `precompute_coeffs` + `normalize_coeffs_8bpc` for the box (0, inSize). */
function precomputeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale; // antialias only when downscaling
  const support = BICUBIC_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale; // C multiplies by the reciprocal; dividing would change rounding
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubic((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    const base = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x]! / ww : k[x]!;
      // Round half away from zero, then truncate, as `normalize_coeffs_8bpc`.
      kk[base + x] = Math.trunc(v < 0 ? -0.5 + v * ONE : 0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** Horizontal pass over input rows [rowFirst, rowFirst + outHeight). */
function resampleHorizontal(src: RgbImage, outWidth: number, rowFirst: number, outHeight: number, c: Coeffs): Uint8Array {
  const { ksize, bounds, kk } = c;
  const inData = src.data;
  const inStride = src.width * 3;
  const out = new Uint8Array(outWidth * outHeight * 3);
  let o = 0;
  for (let yy = 0; yy < outHeight; yy++) {
    const rowBase = (yy + rowFirst) * inStride;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = bounds[xx * 2]!;
      const n = bounds[xx * 2 + 1]!;
      const kb = xx * ksize;
      let s0 = HALF, s1 = HALF, s2 = HALF;
      let p = rowBase + xmin * 3;
      for (let x = 0; x < n; x++, p += 3) {
        const w = kk[kb + x]!;
        s0 += inData[p]! * w;
        s1 += inData[p + 1]! * w;
        s2 += inData[p + 2]! * w;
      }
      // The sums stay inside int32 (as in C), so `>>` is the C arithmetic shift.
      let v = s0 >> PRECISION_BITS;
      out[o++] = v < 0 ? 0 : v > 255 ? 255 : v;
      v = s1 >> PRECISION_BITS;
      out[o++] = v < 0 ? 0 : v > 255 ? 255 : v;
      v = s2 >> PRECISION_BITS;
      out[o++] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

/** Vertical pass; `rowShift` is subtracted from the row bounds (input already cut to the needed rows). */
function resampleVertical(data: Uint8Array, width: number, outHeight: number, rowShift: number, c: Coeffs): Uint8Array {
  const { ksize, bounds, kk } = c;
  const rowLen = width * 3;
  const out = new Uint8Array(rowLen * outHeight);
  const acc = new Float64Array(rowLen);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[yy * 2]! - rowShift;
    const n = bounds[yy * 2 + 1]!;
    const kb = yy * ksize;
    acc.fill(HALF);
    // Row by row for memory locality; integer sums are exact in any order.
    for (let y = 0; y < n; y++) {
      const w = kk[kb + y]!;
      const rb = (ymin + y) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i]! += data[rb + i]! * w;
    }
    const ob = yy * rowLen;
    for (let i = 0; i < rowLen; i++) {
      const v = acc[i]! >> PRECISION_BITS;
      out[ob + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

/**
 * Resize an RGB image to width x height exactly like Pillow 9.4 `Image.resize(..., Image.BICUBIC)`
 * (no reducing_gap). Returns a copy when the size is unchanged.
 */
export function resizeBicubic(img: RgbImage, width: number, height: number): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resizeBicubic: output size must be positive integers, got ${width}x${height}`);
  }
  const needH = width !== img.width;
  const needV = height !== img.height;
  if (!needH && !needV) return { width, height, data: img.data.slice() };
  const vert = precomputeCoeffs(img.height, height);
  if (!needH) {
    return { width, height, data: resampleVertical(img.data, width, height, 0, vert) };
  }
  const horiz = precomputeCoeffs(img.width, width);
  // Only the input rows the vertical pass reads are resampled horizontally.
  const first = vert.bounds[0]!;
  const last = vert.bounds[height * 2 - 2]! + vert.bounds[height * 2 - 1]!;
  const temp = resampleHorizontal(img, width, first, last - first, horiz);
  if (!needV) return { width, height, data: temp };
  return { width, height, data: resampleVertical(temp, width, height, first, vert) };
}
