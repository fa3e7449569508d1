/**
 * Image decoding with sharp, giving the same RGB bytes as Pillow 9.4 `Image.open(f).convert("RGB")`.
 * sharp's own conversions differ from Pillow's in places (ICC transforms, CMYK, 16-bit gray), so we
 * ask sharp for the stored channels and convert them here.
 */
import { readFile } from "node:fs/promises";
import sharp, { type Metadata, type OutputInfo, type SharpOptions } from "sharp";
import { ImageError, InputError } from "../errors.js";
import { decodeBmp, isBmp } from "./bmp.js";
import { checkRgbImage, isRgbImage, type ImageInput, type RgbImage } from "./types.js";

export interface LoadImageOptions {
  /** Rotate/flip by the EXIF Orientation tag. Default false: Pillow and the HF processor ignore it. */
  applyExifOrientation?: boolean;
  /** Refuse images with more pixels than this, from the header, before decoding. Default: Pillow's
   *  DecompressionBombError limit (2 * MAX_IMAGE_PIXELS). */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 178956970;

/** Formats Pillow can also open (plus HEIF/AVIF); sharp's SVG/PDF renderers are not wanted here.
 *  BMP, which sharp cannot read, is decoded by ./bmp.ts. */
const FORMATS = new Set(["jpeg", "png", "webp", "gif", "tiff", "heif"]);

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Decode a file path or encoded bytes to RGB; an RgbImage is checked and returned as is. */
export async function loadImage(input: ImageInput, options: LoadImageOptions = {}): Promise<RgbImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (typeof maxPixels !== "number" || !(maxPixels > 0)) {
    throw new InputError("maxPixels", `must be a positive number, got ${String(maxPixels)}`);
  }
  if (typeof input === "string") {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(input);
    } catch (e) {
      throw new ImageError(input, `cannot read file: ${message(e)}`, { cause: e });
    }
    return decodeImage(bytes, input, maxPixels, options.applyExifOrientation === true);
  }
  if (input instanceof Uint8Array) {
    return decodeImage(input, "<bytes>", maxPixels, options.applyExifOrientation === true);
  }
  if (isRgbImage(input)) return checkRgbImage(input);
  throw new ImageError("", "expected a file path, encoded image bytes or an RgbImage");
}

async function decodeImage(bytes: Uint8Array, label: string, maxPixels: number, autoOrient: boolean): Promise<RgbImage> {
  if (bytes.length === 0) throw new ImageError(label, "empty input");
  if (isBmp(bytes)) return decodeBmp(bytes, label, maxPixels);
  // ignoreIcc: Pillow does not colour-manage. pages: 1 = first frame of GIF/WebP/TIFF.
  const opts: SharpOptions = {
    failOn: "warning",
    ignoreIcc: true,
    limitInputPixels: false,
    pages: 1,
    autoOrient,
  };
  let meta: Metadata;
  try {
    meta = await sharp(bytes, opts).metadata(); // header only
  } catch (e) {
    throw new ImageError(label, `cannot decode image: ${message(e)}`, { cause: e });
  }
  const { width, height, format, space } = meta;
  if (!FORMATS.has(format)) throw new ImageError(label, `unsupported image format: ${format}`);
  if (!(width > 0 && height > 0)) throw new ImageError(label, `invalid image size ${width}x${height}`);
  if (width * height > maxPixels) {
    throw new ImageError(label, `image has ${width}x${height} = ${width * height} pixels, more than the limit of ${maxPixels}`);
  }

  const is16 = meta.depth === "ushort";
  const gray = space === "b-w" || space === "grey16";
  let pipeline = sharp(bytes, opts);
  // A CMYK pipeline keeps the stored channels: otherwise libvips converts through its default CMYK
  // profile to sRGB and back, regenerating K.
  if (space === "cmyk") pipeline = pipeline.pipelineColourspace("cmyk").toColourspace("cmyk");
  else if (gray) pipeline = pipeline.toColourspace(is16 ? "grey16" : "b-w");
  else pipeline = pipeline.toColourspace(is16 ? "rgb16" : "srgb");
  const wide = is16 && space !== "cmyk";

  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await pipeline.raw({ depth: wide ? "ushort" : "uchar" }).toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw new ImageError(label, `cannot decode image: ${message(e)}`, { cause: e });
  }
  const w = info.width, h = info.height, ch = info.channels;
  const n = w * h;
  if (!(w > 0 && h > 0) || data.length !== n * ch * (wide ? 2 : 1) || ch < 1 || ch > 5) {
    throw new ImageError(label, `decoder returned unexpected data (${w}x${h}x${ch}, ${data.length} bytes)`);
  }

  let samples: Uint8Array;
  if (wide) {
    // Pillow opens 16-bit gray PNG as mode "I" and convert("RGB") clips it to 0..255; every other
    // 16-bit PNG mode keeps the high byte.
    const u16 = new Uint16Array(n * ch);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < u16.length; i++) u16[i] = dv.getUint16(i * 2, true);
    const clip = gray && (format === "png" ? pngColorType(bytes) === 0 : ch === 1);
    samples = new Uint8Array(u16.length);
    for (let i = 0; i < u16.length; i++) samples[i] = clip ? Math.min(u16[i]!, 255) : u16[i]! >> 8;
  } else {
    samples = data;
  }

  if (ch === 3 && space !== "cmyk") {
    return { width: w, height: h, data: new Uint8Array(samples.buffer, samples.byteOffset, n * 3) };
  }
  const out = new Uint8Array(n * 3);
  if (space === "cmyk" && ch >= 4) {
    // Pillow reads every 4-channel JPEG as Adobe-inverted ("CMYK;I"), with or without the APP14
    // marker, and libvips does the same (YCCK is turned into CMYK by libjpeg in both); then
    // Pillow's naive conversion, here.
    cmykToRgb(samples, ch, out);
  } else if (ch <= 2) {
    // L / LA -> RGB: replicate gray, drop alpha.
    for (let i = 0, p = 0; i < n; i++, p += ch) {
      const v = samples[p]!;
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    }
  } else {
    // RGBA -> RGB drops alpha (no compositing), as Pillow does.
    for (let i = 0, p = 0; i < n; i++, p += ch) {
      out[i * 3] = samples[p]!;
      out[i * 3 + 1] = samples[p + 1]!;
      out[i * 3 + 2] = samples[p + 2]!;
    }
    // Pillow keeps a GIF's first frame as palette indices, so transparent pixels show the palette
    // colour of the transparent index; libnsgif gives them as 0,0,0,0.
    const t = format === "gif" && ch === 4 ? gifTransparentColour(bytes) : null;
    if (t) {
      for (let i = 0; i < n; i++) if (samples[i * 4 + 3] === 0) out.set(t, i * 3);
    }
  }
  return { width: w, height: h, data: out };
}

/** Pillow Convert.c `cmyk2rgb`: r = (255-k) - round((255-k) * c / 255). */
function cmykToRgb(src: Uint8Array, ch: number, out: Uint8Array): void {
  const n = out.length / 3;
  for (let i = 0, p = 0; i < n; i++, p += ch) {
    const nk = 255 - src[p + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = src[p + c]! * nk + 128; // MULDIV255
      out[i * 3 + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
}

/** PNG IHDR colour type (byte 25), or -1 if the header is not there. */
function pngColorType(b: Uint8Array): number {
  return b.length > 25 ? b[25]! : -1;
}

/** RGB of the transparent palette index of a GIF's first image, from the header blocks (no LZW). */
function gifTransparentColour(b: Uint8Array): Uint8Array | null {
  if (b.length < 13) return null;
  const tableSize = (packed: number) => 3 * (1 << ((packed & 7) + 1));
  let p = 13;
  let table: [number, number] | null = null;
  if (b[10]! & 0x80) {
    table = [p, tableSize(b[10]!)];
    p += table[1];
  }
  let index = -1;
  while (p < b.length) {
    if (b[p] === 0x21) {
      // Extension: a graphic control block carries the transparent index.
      if (b[p + 1] === 0xf9 && b[p + 2]! >= 4 && p + 6 < b.length) index = b[p + 3]! & 1 ? b[p + 6]! : -1;
      p += 2;
      while (p < b.length && b[p] !== 0) p += b[p]! + 1;
      p++;
    } else if (b[p] === 0x2c) {
      if (p + 9 >= b.length) return null;
      if (b[p + 9]! & 0x80) table = [p + 10, tableSize(b[p + 9]!)];
      if (index < 0 || !table || 3 * index + 3 > table[1] || table[0] + table[1] > b.length) return null;
      return b.slice(table[0] + 3 * index, table[0] + 3 * index + 3);
    } else {
      return null;
    }
  }
  return null;
}
