/**
 * Pillow 9.4 `Image.resize(size, BICUBIC)` for 8-bit RGB, ported from libImaging/Resample.c.
 * Every step (coefficient rounding, the uint8 intermediate, the pass order) is kept as in C,
 * because any shortcut changes some output bytes. The loops are unrolled with zero-weight padding
 * taps; that only adds exact zeros to the integer sums.
 */
import { InputError } from "../errors.js";
import { checkRgbImage, type RgbImage } from "./types.js";

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

/** Coefficients for output indices [first, first + count) of one axis. */
interface Axis {
  /** Weights per output index: the most taps used, rounded up to a multiple of 8. */
  taps: number;
  /** First input index per output index. */
  start: Int32Array;
  /** Taps really used per output index; the remaining weights are 0. */
  used: Int32Array;
  /** 22-bit fixed-point weights (integers, kept as doubles: the sums stay exact). */
  weights: Float64Array;
}

/** `precompute_coeffs` + `normalize_coeffs_8bpc` for the box (0, inSize). */
function precomputeAxis(inSize: number, outSize: number, first: number, count: number): Axis {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale; // antialias only when downscaling
  const support = BICUBIC_SUPPORT * filterscale;
  const ss = 1 / filterscale; // C multiplies by the reciprocal; dividing would change rounding
  const start = new Int32Array(count);
  const used = new Int32Array(count);
  const raw: Float64Array[] = [];
  let most = 1;
  for (let j = 0; j < count; j++) {
    const xx = first + j;
    const center = (xx + 0.5) * scale;
    // C's (int) truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const k = new Float64Array(xmax);
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubic((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x]! / ww : k[x]!;
      // Round half away from zero, then truncate, as `normalize_coeffs_8bpc`.
      k[x] = Math.trunc(v < 0 ? -0.5 + v * ONE : 0.5 + v * ONE);
    }
    start[j] = xmin;
    used[j] = xmax;
    raw.push(k);
    if (xmax > most) most = xmax;
  }
  const taps = Math.ceil(most / 8) * 8;
  const weights = new Float64Array(count * taps);
  raw.forEach((k, j) => weights.set(k, j * taps));
  return { taps, start, used, weights };
}

const clip8 = (s: number): number => {
  const v = s >> PRECISION_BITS; // sums stay inside int32 as in C, so this is C's arithmetic shift
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** Horizontal pass over `rows` input rows starting at `rowFirst`. Taps come in groups of 8. */
function horizontal(img: RgbImage, ax: Axis, rowFirst: number, rows: number): Uint8Array {
  const { taps, start, weights } = ax;
  const outW = start.length;
  const rowLen = img.width * 3;
  // Row copy with zero padding so padded taps never read past the row.
  const line = new Uint8Array(rowLen + taps * 3);
  const out = new Uint8Array(outW * rows * 3);
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const rb = (rowFirst + y) * rowLen;
    line.set(img.data.subarray(rb, rb + rowLen));
    for (let xx = 0; xx < outW; xx++) {
      let s0 = HALF, s1 = HALF, s2 = HALF;
      let p = start[xx]! * 3;
      for (let kb = xx * taps, end = kb + taps; kb < end; kb += 8, p += 24) {
        const k0 = weights[kb]!, k1 = weights[kb + 1]!, k2 = weights[kb + 2]!, k3 = weights[kb + 3]!;
        const k4 = weights[kb + 4]!, k5 = weights[kb + 5]!, k6 = weights[kb + 6]!, k7 = weights[kb + 7]!;
        s0 += line[p]! * k0 + line[p + 3]! * k1 + line[p + 6]! * k2 + line[p + 9]! * k3 +
          line[p + 12]! * k4 + line[p + 15]! * k5 + line[p + 18]! * k6 + line[p + 21]! * k7;
        s1 += line[p + 1]! * k0 + line[p + 4]! * k1 + line[p + 7]! * k2 + line[p + 10]! * k3 +
          line[p + 13]! * k4 + line[p + 16]! * k5 + line[p + 19]! * k6 + line[p + 22]! * k7;
        s2 += line[p + 2]! * k0 + line[p + 5]! * k1 + line[p + 8]! * k2 + line[p + 11]! * k3 +
          line[p + 14]! * k4 + line[p + 17]! * k5 + line[p + 20]! * k6 + line[p + 23]! * k7;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
    }
  }
  return out;
}

/** Vertical pass; `rowShift` is the first input row present in `data`. Taps come in groups of 8. */
function vertical(data: Uint8Array, width: number, ax: Axis, rowShift: number): Uint8Array {
  const { taps, start, used, weights } = ax;
  const rowLen = width * 3;
  const out = new Uint8Array(rowLen * start.length);
  const acc = taps > 8 ? new Float64Array(rowLen) : null;
  const r = new Int32Array(8);
  for (let yy = 0; yy < start.length; yy++) {
    const ymin = start[yy]! - rowShift;
    const last = ymin + used[yy]! - 1;
    const ob = yy * rowLen;
    for (let t = 0; t < taps; t += 8) {
      // Zero-weight taps read a row that exists.
      for (let j = 0; j < 8; j++) r[j] = Math.min(ymin + t + j, last) * rowLen;
      const r0 = r[0]!, r1 = r[1]!, r2 = r[2]!, r3 = r[3]!, r4 = r[4]!, r5 = r[5]!, r6 = r[6]!, r7 = r[7]!;
      const kb = yy * taps + t;
      const k0 = weights[kb]!, k1 = weights[kb + 1]!, k2 = weights[kb + 2]!, k3 = weights[kb + 3]!;
      const k4 = weights[kb + 4]!, k5 = weights[kb + 5]!, k6 = weights[kb + 6]!, k7 = weights[kb + 7]!;
      if (acc === null) {
        for (let i = 0; i < rowLen; i++) {
          out[ob + i] = clip8(
            HALF + data[r0 + i]! * k0 + data[r1 + i]! * k1 + data[r2 + i]! * k2 + data[r3 + i]! * k3 +
              data[r4 + i]! * k4 + data[r5 + i]! * k5 + data[r6 + i]! * k6 + data[r7 + i]! * k7,
          );
        }
      } else {
        if (t === 0) acc.fill(HALF);
        for (let i = 0; i < rowLen; i++) {
          acc[i]! +=
            data[r0 + i]! * k0 + data[r1 + i]! * k1 + data[r2 + i]! * k2 + data[r3 + i]! * k3 +
            data[r4 + i]! * k4 + data[r5 + i]! * k5 + data[r6 + i]! * k6 + data[r7 + i]! * k7;
        }
      }
    }
    if (acc !== null) for (let i = 0; i < rowLen; i++) out[ob + i] = clip8(acc[i]!);
  }
  return out;
}

/**
 * The window [left, left + w) x [top, top + h) of `img` resized to outWidth x outHeight with
 * Pillow's BICUBIC. Output pixels do not depend on each other, so this equals cropping the full
 * resize, without computing the pixels a center crop throws away.
 */
export function resizeBicubicRegion(
  img: RgbImage, outWidth: number, outHeight: number, left: number, top: number, w: number, h: number,
): RgbImage {
  const needH = outWidth !== img.width;
  const needV = outHeight !== img.height;
  if (!needH && !needV) {
    // Pillow returns a copy for an unchanged size.
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      const s = ((top + y) * img.width + left) * 3;
      data.set(img.data.subarray(s, s + w * 3), y * w * 3);
    }
    return { width: w, height: h, data };
  }
  const vert = precomputeAxis(img.height, outHeight, top, h);
  if (!needH) {
    const cut = new Uint8Array(w * img.height * 3);
    for (let y = 0; y < img.height; y++) {
      const s = (y * img.width + left) * 3;
      cut.set(img.data.subarray(s, s + w * 3), y * w * 3);
    }
    return { width: w, height: h, data: vertical(cut, w, vert, 0) };
  }
  const horiz = precomputeAxis(img.width, outWidth, left, w);
  if (!needV) return { width: w, height: h, data: horizontal(img, horiz, top, h) };
  // Horizontal pass first, only on the input rows the vertical pass reads, through a uint8 buffer.
  const first = vert.start[0]!;
  const end = vert.start[h - 1]! + vert.used[h - 1]!;
  const temp = horizontal(img, horiz, first, end - first);
  return { width: w, height: h, data: vertical(temp, w, vert, first) };
}

/** Resize like Pillow 9.4 `Image.resize((width, height), Image.BICUBIC)` (no reducing_gap). */
export function resizeBicubic(img: RgbImage, width: number, height: number): RgbImage {
  checkRgbImage(img);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InputError("size", `output size must be positive integers, got ${width}x${height}`);
  }
  return resizeBicubicRegion(img, width, height, 0, 0, width, height);
}
