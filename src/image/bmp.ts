/**
 * BMP decoding giving the same RGB bytes as Pillow 9.4 `Image.open(f).convert("RGB")`. sharp has no BMP
 * decoder, and the npm BMP decoders (bmp-js, bmp-ts, decode-bmp, fast-bmp) differ from Pillow in RLE
 * handling, out-of-palette indices or bit-depth coverage, so this follows BmpImagePlugin.py step by
 * step, quirks included (each is checked against Pillow by test/fixtures-images/bmp).
 */
import { ImageError } from "../errors.js";
import type { RgbImage } from "./types.js";

const RAW = 0, RLE8 = 1, RLE4 = 2, BITFIELDS = 3;

/** How one stored pixel row is unpacked: Pillow's rawmode. */
type RawMode = "1" | "L" | "P" | "BGR;15" | "BGR;16" | "BGR" | "BGRX" | "XBGR" | "RGBX";

const RAW_BITS: Record<RawMode, number> = { "1": 1, L: 8, P: 0, "BGR;15": 16, "BGR;16": 16, BGR: 24, BGRX: 32, XBGR: 32, RGBX: 32 };

/** 32-bit masks Pillow accepts (r, g, b, a), as the byte order they mean; alpha is dropped later. */
const MASKS_32: [number[], RawMode][] = [
  [[0xff0000, 0xff00, 0xff, 0], "BGRX"],
  [[0xff000000, 0xff0000, 0xff00, 0], "XBGR"],
  [[0xff000000, 0xff0000, 0xff00, 0xff], "XBGR"],
  [[0xff, 0xff00, 0xff0000, 0xff000000], "RGBX"],
  [[0xff0000, 0xff00, 0xff, 0xff000000], "BGRX"],
  [[0, 0, 0, 0], "BGRX"],
];

export function isBmp(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d;
}

export function decodeBmp(b: Uint8Array, label: string, maxPixels: number): RgbImage {
  const fail = (what: string): never => {
    throw new ImageError(label, `cannot decode BMP: ${what}`);
  };
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u16 = (p: number) => (p + 2 <= b.length ? dv.getUint16(p, true) : fail("truncated header"));
  const u32 = (p: number) => (p + 4 <= b.length ? dv.getUint32(p, true) : fail("truncated header"));

  let offset = u32(10);
  const headerSize = u32(14);
  if (![12, 40, 64, 108, 124].includes(headerSize)) fail(`unsupported header size ${headerSize}`);
  if (14 + headerSize > b.length) fail("truncated header");
  let width: number, height: number, bits: number, compression = RAW, colors = 0;
  let topDown = false, paletteEntry = 4;
  let masks: number[] = [];
  let pos = 14 + headerSize;
  if (headerSize === 12) {
    [width, height, bits] = [u16(18), u16(20), u16(24)];
    paletteEntry = 3;
  } else {
    // Pillow takes the height as unsigned and as top-down only when its high byte is 0xFF.
    topDown = b[25] === 0xff;
    [width, height, bits, compression, colors] = [u32(18), topDown ? 2 ** 32 - u32(22) : u32(22), u16(28), u32(30), u32(46)];
    if (compression === BITFIELDS) {
      if (headerSize >= 56) {
        masks = [u32(54), u32(58), u32(62), u32(66)];
      } else {
        masks = [u32(pos), u32(pos + 4), u32(pos + 8), 0];
        pos += 12;
      }
    }
  }
  if (!(width > 0 && height > 0)) fail(`invalid image size ${width}x${height}`);
  if (width * height > maxPixels) {
    throw new ImageError(label, `image has ${width}x${height} = ${width * height} pixels, more than the limit of ${maxPixels}`);
  }
  colors ||= 2 ** bits;
  if (offset === 14 + headerSize && bits <= 8) offset += 4 * colors;

  let raw: RawMode;
  if (bits === 1 || bits === 4 || bits === 8) raw = "P";
  else if (bits === 16) raw = "BGR;15";
  else if (bits === 24) raw = "BGR";
  else if (bits === 32) raw = "BGRX";
  else return fail(`unsupported bit depth ${bits}`);
  const same = (a: number[], m: number[]) => a.every((v, i) => v === m[i]);
  if (compression === BITFIELDS) {
    const found = bits === 32 ? MASKS_32.find(([m]) => same(m, masks))?.[1]
      : bits === 24 && same([0xff0000, 0xff00, 0xff], masks) ? "BGR"
      : bits === 16 && same([0xf800, 0x7e0, 0x1f], masks) ? "BGR;16"
      : bits === 16 && same([0x7c00, 0x3e0, 0x1f], masks) ? "BGR;15"
      : undefined;
    raw = found ?? fail(`unsupported bitfields layout (${bits} bits, masks ${masks.map((m) => m.toString(16)).join(",")})`);
  } else if (compression !== RAW && compression !== RLE8 && compression !== RLE4) {
    fail(`unsupported compression ${compression}`);
  }

  const palette = new Uint8Array(768);
  for (let i = 0; i < 256; i++) palette.fill(i, i * 3, i * 3 + 3); // Pillow's palette starts as a grey ramp
  if (raw === "P") {
    if (!(colors > 0 && colors <= 65536)) fail(`unsupported palette size ${colors}`);
    if (pos + paletteEntry * colors > b.length) fail("truncated palette");
    // A palette of only greys (0 and 255 for two colours) is dropped: mode "1" or "L" read from the data.
    let grey = true;
    for (let i = 0; i < colors && grey; i++) {
      const v = colors === 2 ? i * 255 : i & 255, p = pos + i * paletteEntry;
      grey = b[p] === v && b[p + 1] === v && b[p + 2] === v;
    }
    if (grey) {
      raw = colors === 2 ? "1" : "L";
    } else {
      if (colors > 256) fail(`palette of ${colors} colours`);
      for (let i = 0; i < colors; i++) {
        const p = pos + i * paletteEntry;
        palette.set([b[p + 2]!, b[p + 1]!, b[p]!], i * 3);
      }
    }
    pos += paletteEntry * colors;
  }
  const start = offset || pos;

  const rowOf = (r: number) => (topDown ? r : height - 1 - r);
  if (compression === RLE8 || compression === RLE4) {
    if (raw !== "P" && raw !== "L") fail(`RLE compression with ${raw === "1" ? "a black and white palette" : `${bits} bits`}`);
    // A first pass without output, so short data is refused before width * height bytes are allocated.
    if (!rle(b, start, width, height, compression === RLE4, null)) fail("truncated or incomplete RLE data");
    const indices = new Uint8Array(width * height);
    rle(b, start, width, height, compression === RLE4, indices);
    const out = new Uint8Array(width * height * 3);
    for (let r = 0; r < height; r++) unpackRow(indices, r * width, width, raw, palette, out, rowOf(r) * width * 3);
    return { width, height, data: out };
  }

  const rawBits = RAW_BITS[raw] || bits;
  const rowBytes = Math.ceil((width * rawBits) / 8);
  const stride = Math.floor((width * bits + 31) / 32) * 4;
  if (rowBytes > stride) fail(`a grey palette of ${colors} colours with ${bits}-bit pixels`);
  // Pillow's raw decoder needs every row but not the padding after the last one.
  if (start + stride * (height - 1) + rowBytes > b.length) fail("truncated pixel data");
  const out = new Uint8Array(width * height * 3);
  for (let r = 0; r < height; r++) unpackRow(b, start + r * stride, width, raw, palette, out, rowOf(r) * width * 3, bits);
  return { width, height, data: out };
}

/** Pillow 9.4's BmpRleDecoder: palette indices in file row order into `data` (if given); false if
 *  there are fewer than width * height. */
function rle(b: Uint8Array, pos: number, width: number, height: number, rle4: boolean, data: Uint8Array | null): boolean {
  const total = width * height;
  let n = 0, x = 0;
  const push = (v: number) => {
    if (data && n < total) data[n] = v;
    n++;
  };
  while (n < total) {
    if (pos + 2 > b.length) break;
    let count = b[pos]!;
    const byte = b[pos + 1]!;
    pos += 2;
    if (count) {
      // Encoded run, cut at the end of the row.
      if (x + count > width) count = Math.max(0, width - x);
      for (let i = 0; i < count; i++) push(rle4 ? (i % 2 ? byte & 15 : byte >> 4) : byte);
      x += count;
    } else if (byte === 0) {
      // End of line: zeros up to the next row (no-op at a row boundary).
      if (n % width) n += width - (n % width);
      x = 0;
    } else if (byte === 1) {
      break;
    } else if (byte === 2) {
      // Delta: Pillow 9.4 reads two bytes, drops them, then takes the next two as right and up.
      if (pos + 2 > b.length) break;
      if (pos + 4 > b.length) return false;
      n += b[pos + 2]! + b[pos + 3]! * width;
      x = n % width;
      pos += 4;
    } else {
      // Absolute run; Pillow reads byte / 2 bytes for RLE4 (dropping an odd last pixel) and then
      // aligns to an even file position.
      const want = rle4 ? byte >> 1 : byte;
      const got = Math.min(want, b.length - pos);
      for (let i = 0; i < got; i++) {
        const v = b[pos + i]!;
        if (rle4) {
          push(v >> 4);
          push(v & 15);
        } else {
          push(v);
        }
      }
      pos += got;
      if (got < want) break;
      x += byte;
      if (pos % 2) pos++;
    }
  }
  return n >= total;
}

/** One row of `width` pixels at src[p] in the given raw mode -> RGB at out[o]. */
function unpackRow(src: Uint8Array, p: number, width: number, raw: RawMode, palette: Uint8Array, out: Uint8Array, o: number, bits = 8): void {
  const rgb = (x: number, r: number, g: number, b: number) => {
    out[o + 3 * x] = r;
    out[o + 3 * x + 1] = g;
    out[o + 3 * x + 2] = b;
  };
  switch (raw) {
    case "1":
      for (let x = 0; x < width; x++) out.fill((src[p + (x >> 3)]! >> (7 - (x & 7))) & 1 ? 255 : 0, o + 3 * x, o + 3 * x + 3);
      return;
    case "L":
      for (let x = 0; x < width; x++) out.fill(src[p + x]!, o + 3 * x, o + 3 * x + 3);
      return;
    case "P":
      for (let x = 0; x < width; x++) {
        const i = 3 * (bits === 8 ? src[p + x]! : bits === 4 ? (src[p + (x >> 1)]! >> (x & 1 ? 0 : 4)) & 15 : (src[p + (x >> 3)]! >> (7 - (x & 7))) & 1);
        rgb(x, palette[i]!, palette[i + 1]!, palette[i + 2]!);
      }
      return;
    case "BGR;15":
    case "BGR;16": {
      // Pillow's unpackers scale with integer division: v * 255 / 31 (or / 63 for 6-bit green).
      const g6 = raw === "BGR;16";
      for (let x = 0; x < width; x++) {
        const v = src[p + 2 * x]! | (src[p + 2 * x + 1]! << 8);
        const g = g6 ? Math.floor((((v >> 5) & 63) * 255) / 63) : Math.floor((((v >> 5) & 31) * 255) / 31);
        rgb(x, Math.floor((((v >> (g6 ? 11 : 10)) & 31) * 255) / 31), g, Math.floor(((v & 31) * 255) / 31));
      }
      return;
    }
    case "BGR":
      for (let x = 0; x < width; x++) rgb(x, src[p + 3 * x + 2]!, src[p + 3 * x + 1]!, src[p + 3 * x]!);
      return;
    default: {
      // 32 bits: where R, G and B sit in the 4 bytes; the fourth (X or alpha) is dropped.
      const [r, g, b]: [number, number, number] = raw === "BGRX" ? [2, 1, 0] : raw === "XBGR" ? [3, 2, 1] : [0, 1, 2];
      for (let x = 0, q = p; x < width; x++, q += 4) rgb(x, src[q + r]!, src[q + g]!, src[q + b]!);
    }
  }
}
