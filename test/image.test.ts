/**
 * Image loading and BridgeTowerImageProcessor against the golden fixtures (transformers 4.39.3 +
 * Pillow 9.4): every case must match bit for bit. Expected values are only ever read from the
 * fixtures ($BRIDGETOWER_FIXTURES or ../shared/fixtures).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import sharp from "sharp";
import { ConfigError, ImageError } from "../src/errors.js";
import {
  BridgeTowerImageProcessor,
  defaultImageProcessorConfig,
  loadImage,
  loadImageProcessorConfig,
  parseImageProcessorConfig,
  resizeBicubic,
  resizeOutputSize,
  type RgbImage,
} from "../src/image/index.js";
import { resizeBicubicRegion } from "../src/image/resample.js";
import { SafetensorsFile } from "../src/io/safetensors.js";
import { crc32 } from "../src/io/zip.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fixturesDir = process.env.BRIDGETOWER_FIXTURES ?? path.resolve(repoRoot, "../shared/fixtures");
const ipDir = path.join(fixturesDir, "image-processor");
const skip = existsSync(path.join(ipDir, "cases.json")) ? false : `no fixtures at ${ipDir}`;

const scratch = mkdtempSync(path.join(tmpdir(), "image-test-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Case {
  id: string;
  setting: string;
  variant: "processor" | "direct";
  image?: string;
  images?: string[];
  pixel_values_shape: number[];
  pixel_mask_shape: number[];
  pixel_mask_sum?: number;
  pixel_mask_sum_per_image?: number[];
}
const index = skip ? { cases: [], images: {} } : JSON.parse(readFileSync(path.join(ipDir, "cases.json"), "utf8"));
const cases: Case[] = index.cases;
const imageInfo: Record<string, { width: number; height: number; mode: string }> = index.images;

async function readTensor(file: string, name: string): Promise<Uint8Array> {
  const f = await SafetensorsFile.open(file);
  try {
    return (await f.readBytes(name)).slice();
  } finally {
    await f.close();
  }
}
const expectedBytes = (name: string) => readTensor(path.join(ipDir, "expected.safetensors"), name);

/** Bit-level comparison of float32 data; the message says how far off a mismatch is. */
function assertBitIdentical(actual: Float32Array, expectedRaw: Uint8Array, what: string): void {
  const expected = new Float32Array(expectedRaw.buffer, expectedRaw.byteOffset, expectedRaw.byteLength / 4);
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  let bad = 0, first = -1, maxDiff = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      if (first < 0) first = i;
      bad++;
      maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    }
  }
  assert.equal(bad, 0, `${what}: ${bad} values differ (first at ${first}, max |diff| ${maxDiff})`);
}

/** Shortest edge of a setting = crop side of its processor-variant cases. */
function processorFor(setting: string): BridgeTowerImageProcessor {
  const c = cases.find((k) => k.setting === setting && k.variant === "processor");
  assert.ok(c, `no processor case for setting ${setting}`);
  return new BridgeTowerImageProcessor({ size: { shortestEdge: c.pixel_values_shape[2]! } });
}

const run = (proc: BridgeTowerImageProcessor, c: Case, imgs: RgbImage[]) =>
  c.variant === "processor" ? proc.preprocess(imgs, { doCenterCrop: true }) : proc.preprocess(imgs, { upstreamCropBug: true });

const imagePath = (name: string) => path.join(ipDir, "images", name);
const isJpeg = (name: string) => name.endsWith(".jpg");

/** The JPEGs as Pillow decoded them (decoded_jpeg_rgb.safetensors). */
async function pillowJpeg(name: string): Promise<RgbImage> {
  const file = path.join(ipDir, "decoded_jpeg_rgb.safetensors");
  const f = await SafetensorsFile.open(file);
  try {
    const e = f.entries.get(`decoded_rgb.${name}`)!;
    return { height: e.shape[0]!, width: e.shape[1]!, data: (await f.readBytes(`decoded_rgb.${name}`)).slice() };
  } finally {
    await f.close();
  }
}

function assertAllOnesMask(mask: BigInt64Array, c: Case): void {
  let sum = 0;
  for (const v of mask) sum += Number(v);
  assert.equal(sum, mask.length, `${c.id}: pixel_mask not all ones`);
  assert.equal(sum, c.pixel_mask_sum, `${c.id}: pixel_mask sum`);
}

const STRIP = "strip_40x3.png";
const tested = new Set<string>();

describe("image-processor fixtures: bit-identical pixel_values", { skip }, () => {
  for (const c of cases.filter((k) => k.image !== undefined && k.image !== STRIP)) {
    test(c.id, async () => {
      const proc = processorFor(c.setting);
      const sources: [string, RgbImage][] = [["file", await loadImage(imagePath(c.image!))]];
      assert.deepEqual([sources[0]![1].width, sources[0]![1].height], [imageInfo[c.image!]!.width, imageInfo[c.image!]!.height]);
      if (isJpeg(c.image!)) sources.push(["Pillow-decoded array", await pillowJpeg(c.image!)]);
      const expected = await expectedBytes(`${c.id}.pixel_values`);
      for (const [from, img] of sources) {
        const r = run(proc, c, [img]);
        assert.deepEqual(r.shape, c.pixel_values_shape, `${c.id} (${from}): shape`);
        assertBitIdentical(r.pixelValues, expected, `${c.id} (${from})`);
        assertAllOnesMask(r.pixelMask, c);
      }
      tested.add(c.id);
    });
  }

  for (const c of cases.filter((k) => k.images !== undefined)) {
    test(`${c.id} (batch, padded)`, async () => {
      const proc = processorFor(c.setting);
      const names = c.images!;
      const fromFiles = await Promise.all(names.map((n) => loadImage(imagePath(n))));
      const fromPillow = await Promise.all(names.map((n) => (isJpeg(n) ? pillowJpeg(n) : loadImage(imagePath(n)))));
      const values = await expectedBytes(`${c.id}.pixel_values`);
      const maskRaw = await expectedBytes(`${c.id}.pixel_mask`);
      const mask = new BigInt64Array(maskRaw.buffer, maskRaw.byteOffset, maskRaw.byteLength / 8);
      for (const [from, imgs] of [["files", fromFiles], ["Pillow-decoded JPEG", fromPillow]] as const) {
        const r = run(proc, c, imgs);
        assert.deepEqual(r.shape, c.pixel_values_shape, `${c.id} (${from}): shape`);
        assertBitIdentical(r.pixelValues, values, `${c.id} (${from})`);
        assert.deepEqual(Array.from(r.pixelMask), Array.from(mask), `${c.id} (${from}): pixel_mask`);
        const plane = r.shape[2] * r.shape[3];
        const sums = names.map((_, b) => r.pixelMask.subarray(b * plane, (b + 1) * plane).reduce((s, v) => s + Number(v), 0));
        assert.deepEqual(sums, c.pixel_mask_sum_per_image);
      }
      tested.add(c.id);
    });
  }

  // Upstream reads a height-3 HWC array (3, 40, 3) as channels-first (C=3, H=40, W=3). We keep the
  // image as it is (40 wide, 3 tall); the fixture records HF's misreading, which we can only rebuild
  // by feeding our processor the transposed array on purpose.
  for (const c of cases.filter((k) => k.image === STRIP)) {
    test(`${c.id}: height-3 image kept as HWC (HF misreads it as CHW)`, async () => {
      const proc = processorFor(c.setting);
      const img = await loadImage(imagePath(STRIP));
      assert.deepEqual([img.width, img.height], [imageInfo[STRIP]!.width, imageInfo[STRIP]!.height]);
      const expected = await expectedBytes(`${c.id}.pixel_values`);

      // HF's array: pixel (h=x, w=channel) with channel index = row y.
      const misread: RgbImage = { width: 3, height: img.width, data: new Uint8Array(img.data.length) };
      for (let y = 0; y < img.height; y++) {
        for (let x = 0; x < img.width; x++) {
          for (let ch = 0; ch < 3; ch++) misread.data[(x * 3 + ch) * 3 + y] = img.data[(y * img.width + x) * 3 + ch]!;
        }
      }
      assertBitIdentical(run(proc, c, [misread]).pixelValues, expected, `${c.id} (rebuilt HF misreading)`);

      const ours = run(proc, c, [img]);
      assert.deepEqual(ours.shape, c.pixel_values_shape);
      assert.throws(() => assertBitIdentical(ours.pixelValues, expected, c.id), "the sane result must differ from HF's");
      // Without the crop the difference shows in the shape: ours is wide and flat like the image.
      const direct = proc.preprocess([img], { upstreamCropBug: true });
      const [h, w] = resizeOutputSize(img.height, img.width, proc.config.size.shortestEdge, proc.config.sizeDivisor);
      assert.deepEqual(direct.shape, [1, 3, h, w]);
      assert.ok(w > h);
      const [hfH, hfW] = resizeOutputSize(img.width, 3, proc.config.size.shortestEdge, proc.config.sizeDivisor);
      assert.ok(hfH > hfW, "HF's reading is tall and narrow");
      tested.add(c.id);
    });
  }

  test("every case in cases.json was checked", () => {
    assert.deepEqual([...tested].sort(), cases.map((c) => c.id).sort());
  });
});

describe("other fixtures processed by the same pipeline", { skip }, () => {
  test("small-realistic inputs.pixel_values from its preprocessor_config.json", async () => {
    const dir = path.join(fixturesDir, "small-realistic");
    const proc = await BridgeTowerImageProcessor.fromFolder(dir);
    // The README lists the three images in this order.
    const imgs = await Promise.all(["chelsea.png", "coffee.png", "portrait_300x500.png"].map((n) => loadImage(imagePath(n))));
    const r = proc.preprocess(imgs, { doCenterCrop: true });
    const file = path.join(dir, "inputs.safetensors");
    assertBitIdentical(r.pixelValues, await readTensor(file, "pixel_values"), "small-realistic pixel_values");
    const m = await readTensor(file, "pixel_mask");
    assert.deepEqual(Array.from(r.pixelMask), Array.from(new BigInt64Array(m.buffer, m.byteOffset, m.byteLength / 8)));
  });
});

describe("decoding", { skip }, () => {
  for (const name of ["rocket.jpg", "astronaut_q90.jpg"]) {
    test(`sharp decodes ${name} exactly as Pillow 9.4`, async () => {
      const ours = await loadImage(imagePath(name));
      const ref = await pillowJpeg(name);
      assert.deepEqual([ours.width, ours.height], [ref.width, ref.height]);
      let maxDiff = 0;
      for (let i = 0; i < ref.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours.data[i]! - ref.data[i]!));
      assert.equal(maxDiff, 0, `max |difference| ${maxDiff}`);
    });
  }

  test("RGBA: alpha dropped, not composited (transparent pixels keep their colour)", async () => {
    const file = imagePath("rgba_transparent.png");
    const rgba = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    assert.equal(rgba.info.channels, 4);
    const img = await loadImage(file);
    let transparent = 0;
    for (let i = 0; i < img.width * img.height; i++) {
      for (let ch = 0; ch < 3; ch++) assert.equal(img.data[i * 3 + ch], rgba.data[i * 4 + ch]);
      if (rgba.data[i * 4 + 3] === 0) transparent++;
    }
    assert.ok(transparent > 0);
  });

  test("gray (L) is replicated to three equal channels", async () => {
    const img = await loadImage(imagePath("camera_gray.png"));
    for (let i = 0; i < img.data.length; i += 3) {
      assert.ok(img.data[i] === img.data[i + 1] && img.data[i] === img.data[i + 2]);
    }
  });

  test("path, bytes and RgbImage inputs agree; EXIF orientation only on request", async () => {
    const file = imagePath("chelsea.png");
    const a = await loadImage(file);
    const b = await loadImage(readFileSync(file));
    assert.deepEqual(b, a);
    assert.equal(await loadImage(a), a);
    const rotated = await sharp(file).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const plain = await loadImage(rotated);
    assert.deepEqual([plain.width, plain.height], [a.width, a.height]);
    const oriented = await loadImage(rotated, { applyExifOrientation: true });
    assert.deepEqual([oriented.width, oriented.height], [a.height, a.width]);
  });
});

function pngChunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const out = Buffer.alloc(body.length + 8);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), body.length + 4);
  return out;
}
function pngHeaderOnly(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", new Uint8Array([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}

async function rejectsImage(p: Promise<unknown>, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ImageError, `expected ImageError, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

describe("decoding errors", { skip }, () => {
  test("empty file and empty bytes", async () => {
    const f = path.join(scratch, "empty.png");
    writeFileSync(f, "");
    await rejectsImage(loadImage(f), /empty/);
    await rejectsImage(loadImage(new Uint8Array(0)), /empty/);
  });

  test("missing file", async () => {
    await rejectsImage(loadImage(path.join(scratch, "nope.png")), /cannot read/);
  });

  test("truncated PNG and JPEG", async () => {
    for (const name of ["chelsea.png", "rocket.jpg"]) {
      const bytes = readFileSync(imagePath(name));
      for (const keep of [0.5, 0.9]) await rejectsImage(loadImage(bytes.subarray(0, Math.floor(bytes.length * keep))));
    }
  });

  test("bytes that are not an image", async () => {
    await rejectsImage(loadImage(Buffer.from("this is not an image, just some text\n".repeat(20))));
    await rejectsImage(loadImage(Buffer.from("<svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'/>")), /unsupported|decode/);
  });

  test("a PNG header claiming 100000x100000 is refused from the header, quickly", async () => {
    const bomb = pngHeaderOnly(100000, 100000);
    const t0 = performance.now();
    const rss0 = process.memoryUsage().rss;
    await rejectsImage(loadImage(bomb), /100000x100000.*limit/);
    assert.ok(performance.now() - t0 < 1000, "took too long");
    assert.ok(process.memoryUsage().rss - rss0 < 256 * 2 ** 20, "allocated too much");
    // Just over the default limit (Pillow's 2 * MAX_IMAGE_PIXELS) also goes; maxPixels lowers it.
    await rejectsImage(loadImage(pngHeaderOnly(13380, 13380)), /limit/);
    const tiny = await loadImage(imagePath("tiny_17x9.png"));
    const pixels = tiny.width * tiny.height;
    await rejectsImage(loadImage(imagePath("tiny_17x9.png"), { maxPixels: pixels - 1 }), /limit/);
    assert.deepEqual(await loadImage(imagePath("tiny_17x9.png"), { maxPixels: pixels }), tiny);
  });

  test("malformed RgbImage", async () => {
    await rejectsImage(loadImage({ width: 2, height: 2, data: new Uint8Array(11) }));
    await rejectsImage(loadImage({ width: 0, height: 2, data: new Uint8Array(0) }));
    assert.throws(() => new BridgeTowerImageProcessor().preprocess([{ width: 2, height: 1, data: new Uint8Array(3) }]), ImageError);
  });
});

describe("formats", () => {
  test("1x1 image works end to end", async () => {
    const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: { r: 10, g: 200, b: 30 } } }).png().toBuffer();
    const img = await loadImage(png);
    assert.deepEqual(img, { width: 1, height: 1, data: new Uint8Array([10, 200, 30]) });
    const proc = new BridgeTowerImageProcessor();
    const r = proc.preprocess([img], { doCenterCrop: true });
    const s = proc.config.size.shortestEdge;
    assert.deepEqual(r.shape, [1, 3, s, s]);
    // A constant image stays constant through the resize.
    const constant = proc.preprocess([{ width: 1, height: 1, data: img.data }], { doCenterCrop: false });
    for (let ch = 0; ch < 3; ch++) {
      const plane = constant.pixelValues.subarray(ch * s * s, (ch + 1) * s * s);
      assert.ok(plane.every((v) => v === plane[0]));
    }
  });

  test("16-bit RGB PNG: high byte, like Pillow's RGB;16B", async () => {
    const w = 7, h = 5;
    const src = new Uint16Array(w * h * 3).map((_, i) => (i * 7919 + 12345) % 65536);
    const png = await sharp(src, { raw: { width: w, height: h, channels: 3 } }).toColourspace("rgb16").png().toBuffer();
    assert.equal((await sharp(png).metadata()).depth, "ushort");
    const img = await loadImage(png);
    assert.deepEqual(Array.from(img.data), Array.from(src, (v) => v >> 8));
  });

  test("16-bit RGBA PNG: high byte, alpha dropped", async () => {
    const w = 3, h = 4;
    const src = new Uint16Array(w * h * 4).map((_, i) => (i * 40503 + 999) % 65536);
    const png = await sharp(src, { raw: { width: w, height: h, channels: 4 } }).toColourspace("rgb16").png().toBuffer();
    const img = await loadImage(png);
    const want: number[] = [];
    for (let i = 0; i < w * h; i++) want.push(src[i * 4]! >> 8, src[i * 4 + 1]! >> 8, src[i * 4 + 2]! >> 8);
    assert.deepEqual(Array.from(img.data), want);
  });

  test("16-bit gray PNG: Pillow mode I, convert('RGB') clips to 0..255", async () => {
    const w = 6, h = 2;
    const src = new Uint16Array(w * h).map((_, i) => [0, 7, 254, 255, 256, 40000][i % 6]!);
    const png = await sharp(src, { raw: { width: w, height: h, channels: 1 } }).toColourspace("grey16").png().toBuffer();
    const img = await loadImage(png);
    assert.deepEqual(Array.from(img.data), Array.from(src).flatMap((v) => [Math.min(v, 255), Math.min(v, 255), Math.min(v, 255)]));
  });

  // CMYK/YCCK JPEGs and CMYK TIFF against Pillow's bytes: test/image-formats.test.ts.
  test("CMYK JPEG without an Adobe marker decodes the same (Pillow and libvips invert CMYK JPEGs regardless)", async () => {
    const w = 8, h = 8;
    const rgb = Buffer.alloc(w * h * 3).map((_, i) => (i * 91) & 255);
    const jpg = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).toColourspace("cmyk").jpeg({ quality: 100 }).toBuffer();
    // Drop the APP14 segment.
    let i = 2;
    while (!(jpg[i] === 0xff && jpg[i + 1] === 0xee)) i += 2 + jpg.readUInt16BE(i + 2);
    const stripped = Buffer.concat([jpg.subarray(0, i), jpg.subarray(i + 2 + jpg.readUInt16BE(i + 2))]);
    assert.ok(!stripped.includes(Buffer.from("Adobe")));
    assert.deepEqual(await loadImage(stripped), await loadImage(jpg));
  });

  test("animated GIF: first frame", async () => {
    const w = 6, h = 5;
    const frames = Buffer.alloc(w * h * 2 * 4);
    for (let i = 0; i < w * h * 2; i++) frames.set(i < w * h ? [255, 0, 0, 255] : [0, 0, 255, 255], i * 4);
    const gif = await sharp(frames, { raw: { width: w, height: h * 2, channels: 4, pageHeight: h } }).gif().toBuffer();
    assert.equal((await sharp(gif).metadata()).pages, 2);
    const img = await loadImage(gif);
    assert.deepEqual([img.width, img.height], [w, h]);
    for (let i = 0; i < w * h; i++) assert.deepEqual(Array.from(img.data.subarray(i * 3, i * 3 + 3)), [255, 0, 0]);
  });

  test("GIF transparency: the transparent index shows its palette colour, as in Pillow's P mode", async () => {
    // Hand-made 2x1 GIF: palette [(11,22,33), (44,55,66), black, white], index 0 transparent,
    // pixels [0, 1]; LZW (min code size 2) codes clear, 0, 1, end = bytes 0x44 0x0a.
    const gif = Buffer.from([
      ...Buffer.from("GIF89a", "latin1"), 2, 0, 1, 0, 0x81, 0, 0,
      11, 22, 33, 44, 55, 66, 0, 0, 0, 255, 255, 255,
      0x21, 0xf9, 4, 1, 0, 0, 0, 0,
      0x2c, 0, 0, 0, 0, 2, 0, 1, 0, 0,
      2, 2, 0x44, 0x0a, 0,
      0x3b,
    ]);
    const rgba = await sharp(gif).raw().toBuffer();
    assert.equal(rgba[3], 0, "sharp reports the first pixel transparent");
    const img = await loadImage(gif);
    assert.deepEqual(Array.from(img.data), [11, 22, 33, 44, 55, 66]);
  });

  test("animated WebP: first frame", async () => {
    const w = 4, h = 4;
    const frames = Buffer.alloc(w * h * 2 * 3);
    for (let i = 0; i < w * h * 2; i++) frames.set(i < w * h ? [0, 255, 0] : [0, 0, 255], i * 3);
    const webp = await sharp(frames, { raw: { width: w, height: h * 2, channels: 3, pageHeight: h } }).webp({ lossless: true }).toBuffer();
    const img = await loadImage(webp);
    assert.deepEqual([img.width, img.height], [w, h]);
    for (let i = 0; i < w * h; i++) assert.deepEqual(Array.from(img.data.subarray(i * 3, i * 3 + 3)), [0, 255, 0]);
  });
});

describe("resize", () => {
  const randomImage = (w: number, h: number, seed: number): RgbImage => ({
    width: w,
    height: h,
    data: new Uint8Array(w * h * 3).map((_, i) => ((i + seed) * 2654435761) >>> 24),
  });

  test("unchanged size returns an equal copy", () => {
    const img = randomImage(5, 4, 1);
    const r = resizeBicubic(img, 5, 4);
    assert.deepEqual(r, img);
    assert.notEqual(r.data, img.data);
  });

  test("a window of the resize equals the same window cut from the full resize", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 50 }),
        fc.nat(), fc.nat(), fc.nat(), fc.nat(), fc.nat(),
        (iw, ih, ow, oh, a, b, c, d, seed) => {
          const img = randomImage(iw, ih, seed);
          const full = resizeBicubic(img, ow, oh);
          const left = a % ow, top = b % oh;
          const w = 1 + (c % (ow - left)), h = 1 + (d % (oh - top));
          const part = resizeBicubicRegion(img, ow, oh, left, top, w, h);
          for (let y = 0; y < h; y++) {
            const s = ((top + y) * ow + left) * 3;
            assert.deepEqual(part.data.subarray(y * w * 3, (y + 1) * w * 3), full.data.subarray(s, s + w * 3));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test("resize target sizes (spec 7.2 worked examples)", () => {
    assert.deepEqual(resizeOutputSize(480, 640, 288, 32), [288, 384]);
    assert.deepEqual(resizeOutputSize(480, 640, 294, 32), [288, 384]);
    assert.deepEqual(resizeOutputSize(480, 640, 180, 32), [160, 224]);
    assert.deepEqual(resizeOutputSize(400, 1000, 294, 32), [192, 480]);
    assert.deepEqual(resizeOutputSize(500, 500, 288, 32), [288, 288]);
  });

  test("a resize to zero pixels is refused", () => {
    assert.throws(() => new BridgeTowerImageProcessor().preprocess([randomImage(4000, 1, 0)]), ImageError);
  });
});

describe("preprocessor config", () => {
  const defaults = defaultImageProcessorConfig();

  test("large checkpoints' 99-byte file: size int -> shortest edge, other keys ignored", () => {
    const c = parseImageProcessorConfig(JSON.parse('{"max_text_len": 50, "size": 294, "tokenizer": "roberta-large", "vocab_size": 50265}'));
    assert.deepEqual(c, { ...defaults, size: { shortestEdge: 294 } });
  });

  test("base checkpoints' training config (no size key) -> class defaults", () => {
    const c = parseImageProcessorConfig({
      cache_dir: "/tmp", image_size: 288, max_text_len: 50, patch_size: 16, tokenizer: "roberta-base", vit: "ViT-B/16",
      loss_names: { itm: 0, mlm: 0, vqa: 1 }, num_layers: 6, resolution_before: 224, vocab_size: 50265,
    });
    assert.deepEqual(c, defaults);
    assert.equal(c.size.shortestEdge, 288);
  });

  test("saved form, crop_size shapes, deprecated pad flag", () => {
    const saved = {
      crop_size: null, do_center_crop: true, do_normalize: true, do_pad: true, do_rescale: true, do_resize: true,
      image_mean: [0.5, 0.5, 0.5], image_processor_type: "BridgeTowerImageProcessor", image_std: [0.25, 0.5, 1],
      resample: 3, rescale_factor: 0.00392156862745098, size: { shortest_edge: 294 }, size_divisor: 14,
    };
    const c = parseImageProcessorConfig(saved);
    assert.deepEqual(c, { ...defaults, size: { shortestEdge: 294 }, sizeDivisor: 14, imageMean: [0.5, 0.5, 0.5], imageStd: [0.25, 0.5, 1], rescaleFactor: 0.00392156862745098 });
    assert.deepEqual(parseImageProcessorConfig({ ...saved, crop_size: { shortest_edge: 214 } }).cropSize, { shortestEdge: 214 });
    assert.deepEqual(parseImageProcessorConfig({ ...saved, crop_size: 234 }).cropSize, { shortestEdge: 234 });
    assert.equal(parseImageProcessorConfig({ do_pad: false, pad_and_return_pixel_mask: true }).doPad, true);
    assert.deepEqual(parseImageProcessorConfig({ image_mean: 0.5 }).imageMean, [0.5, 0.5, 0.5]);
  });

  test("crop_size is used for the crop", () => {
    const img = { width: 64, height: 48, data: new Uint8Array(64 * 48 * 3) };
    const proc = new BridgeTowerImageProcessor(parseImageProcessorConfig({ size: 64, crop_size: { shortest_edge: 50 } }));
    assert.deepEqual(proc.preprocess([img]).shape, [1, 3, 50, 50]);
  });

  test("malformed -> ConfigError naming the file and the field", () => {
    const bad: [unknown, RegExp][] = [
      [[1, 2], /expected a JSON object/],
      [{ size: "big" }, /size/],
      [{ size: { height: 288, width: 288 } }, /size.*shortest_edge/],
      [{ size: 0 }, /size/],
      [{ crop_size: { width: 3 } }, /crop_size/],
      [{ size_divisor: 0 }, /size_divisor/],
      [{ resample: 2 }, /resample/],
      [{ do_resize: "yes" }, /do_resize/],
      [{ image_mean: [0.5, 0.5] }, /image_mean/],
      [{ image_std: ["a", 1, 1] }, /image_std/],
      [{ rescale_factor: "1/255" }, /rescale_factor/],
    ];
    for (const [json, pattern] of bad) {
      assert.throws(() => parseImageProcessorConfig(json, "some/dir/preprocessor_config.json"), (e: unknown) => {
        assert.ok(e instanceof ConfigError, `expected ConfigError for ${JSON.stringify(json)}`);
        assert.match(e.message, /^some\/dir\/preprocessor_config\.json: /);
        assert.match(e.message, pattern);
        return true;
      });
    }
    assert.throws(() => new BridgeTowerImageProcessor({ sizeDivisor: 0 }), ConfigError);
  });

  test("loadImageProcessorConfig: missing file -> defaults, invalid JSON -> ConfigError", async () => {
    const dir = mkdtempSync(path.join(scratch, "cfg-"));
    assert.deepEqual(await loadImageProcessorConfig(dir), defaults);
    writeFileSync(path.join(dir, "preprocessor_config.json"), "{not json");
    await assert.rejects(loadImageProcessorConfig(dir), (e: unknown) => e instanceof ConfigError && e.message.includes("preprocessor_config.json"));
    writeFileSync(path.join(dir, "preprocessor_config.json"), '{"size": 294}');
    assert.equal((await BridgeTowerImageProcessor.fromFolder(dir)).config.size.shortestEdge, 294);
  });
});
