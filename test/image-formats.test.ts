/**
 * CMYK/YCCK JPEG, CMYK TIFF and BMP decoding against Pillow 9.4's `Image.open(f).convert("RGB")`.
 * The images and Pillow's bytes are committed under test/fixtures-images (written by make_cmyk.py and
 * make_bmp.py there), so this runs without Python.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import fc from "fast-check";
import sharp from "sharp";
import { ImageError } from "../src/errors.js";
import { BridgeTowerImageProcessor, loadImage } from "../src/image/index.js";

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures-images");
const cmykDir = path.join(dir, "cmyk");
const bmpDir = path.join(dir, "bmp");

interface Expected {
  file: string;
  width: number;
  height: number;
  mode: string;
}
const cmyk: { images: (Expected & { adobe_transform: number | null; sampling: string[]; icc: boolean })[] } =
  JSON.parse(readFileSync(path.join(cmykDir, "cmyk.json"), "utf8"));
const bmp: {
  images: Expected[];
  refused: { file: string; pillow_error: string }[];
  truncated: { file: string; length: number; pillow_error?: string; sha256?: string }[];
} = JSON.parse(readFileSync(path.join(bmpDir, "bmp.json"), "utf8"));

async function rejectsImage(p: Promise<unknown>, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ImageError, `expected ImageError, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

/** loadImage(file) must equal Pillow's RGB bytes exactly; the message gives the max difference. */
async function assertPillowExact(folder: string, e: Expected): Promise<void> {
  const img = await loadImage(path.join(folder, e.file));
  const want = readFileSync(path.join(folder, `${e.file}.rgb`));
  assert.deepEqual([img.width, img.height], [e.width, e.height]);
  let maxDiff = 0, bad = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(img.data[i]! - want[i]!);
    if (d) bad++;
    maxDiff = Math.max(maxDiff, d);
  }
  assert.equal(img.data.length, want.length);
  assert.equal(bad, 0, `${e.file}: ${bad} bytes differ from Pillow, max |diff| ${maxDiff}`);
}

describe("CMYK and YCCK JPEGs: Pillow's bytes exactly", () => {
  for (const e of cmyk.images) {
    const what = [e.mode, e.adobe_transform === null ? "no Adobe marker" : `Adobe transform ${e.adobe_transform}`,
      e.sampling.join(" ") || "tiff", e.icc ? "ICC profile" : ""].filter(Boolean).join(", ");
    test(`${e.file} (${what})`, () => assertPillowExact(cmykDir, e));
  }

  test("the fixtures cover markers, YCCK, subsampling and an embedded profile", async () => {
    const jpegs = cmyk.images.filter((e) => e.file.endsWith(".jpg"));
    assert.ok(jpegs.some((e) => e.adobe_transform === 0) && jpegs.some((e) => e.adobe_transform === null));
    assert.ok(jpegs.some((e) => e.adobe_transform === 2 && e.sampling.some((s) => s !== "1x1")));
    assert.ok(jpegs.some((e) => e.adobe_transform === null && e.sampling[0] === "2x2"));
    for (const e of jpegs.filter((k) => k.icc)) {
      const meta = await sharp(readFileSync(path.join(cmykDir, e.file))).metadata();
      assert.equal(meta.space, "cmyk");
      assert.ok(meta.icc && meta.icc.length > 0, `${e.file} carries an ICC profile`);
    }
  });

  test("preprocess gives the same pixel_values as on Pillow's decode (the issue's case)", async () => {
    const file = "issue_convert_q92.jpg";
    const pillow = { width: 48, height: 40, data: new Uint8Array(readFileSync(path.join(cmykDir, `${file}.rgb`))) };
    const proc = new BridgeTowerImageProcessor({ size: { shortestEdge: 64 } });
    const a = proc.preprocess([await loadImage(path.join(cmykDir, file))], { doCenterCrop: true });
    const b = proc.preprocess([pillow], { doCenterCrop: true });
    assert.deepEqual(a.pixelValues, b.pixelValues);
  });

  test("truncated CMYK JPEG is refused", async () => {
    const bytes = readFileSync(path.join(cmykDir, "cmyk_adobe_444.jpg"));
    await rejectsImage(loadImage(bytes.subarray(0, Math.floor(bytes.length * 0.6))));
  });
});

describe("BMP: Pillow's bytes exactly", () => {
  for (const e of bmp.images) test(`${e.file} (Pillow mode ${e.mode})`, () => assertPillowExact(bmpDir, e));

  test("the fixtures cover 1/4/8/16/24/32 bits, RLE4/RLE8, top-down and bitfields", () => {
    const names = bmp.images.map((e) => e.file).join(" ");
    for (const k of ["pil_1", "p4", "pil_P", "rgb16_555", "rgb24_topdown", "x32_bi_rgb", "a32_v4_bgra", "rle4", "rle8", "os2_"]) {
      assert.ok(names.includes(k), k);
    }
  });

  for (const e of bmp.refused) {
    test(`${e.file} is refused, as by Pillow (${e.pillow_error})`, async () => {
      await rejectsImage(loadImage(path.join(bmpDir, e.file)), /BMP/);
    });
  }

  test("truncated files: refused where Pillow refuses them, else Pillow's bytes", async () => {
    for (const t of bmp.truncated) {
      const bytes = readFileSync(path.join(bmpDir, t.file)).subarray(0, t.length);
      const what = `${t.file} cut to ${t.length} bytes`;
      if (t.pillow_error !== undefined) {
        await assert.rejects(loadImage(bytes), (e: unknown) => e instanceof ImageError, what);
      } else {
        const img = await loadImage(bytes);
        assert.equal(createHash("sha256").update(img.data).digest("hex"), t.sha256, what);
      }
    }
  });

  test("the pixel limit is applied from the header, before any decoding", async () => {
    const header = Buffer.alloc(54);
    header.write("BM", 0, "latin1");
    header.writeUInt32LE(54, 10);
    header.writeUInt32LE(40, 14);
    header.writeUInt32LE(100000, 18);
    header.writeUInt32LE(100000, 22);
    header.writeUInt16LE(24, 28);
    const t0 = performance.now();
    await rejectsImage(loadImage(header), /100000x100000.*limit/);
    assert.ok(performance.now() - t0 < 1000);
    // Top-down: the height is stored negative.
    header.writeInt32LE(-100000, 22);
    await rejectsImage(loadImage(header), /100000x100000.*limit/);
    const file = path.join(bmpDir, "p4.bmp");
    await rejectsImage(loadImage(file, { maxPixels: 21 * 13 - 1 }), /limit/);
    assert.equal((await loadImage(file, { maxPixels: 21 * 13 })).width, 21);
  });

  test("an RLE header claiming many pixels with little data is refused without decoding it", async () => {
    const rle = Buffer.from(readFileSync(path.join(bmpDir, "rle8.bmp")));
    rle.writeUInt32LE(12000, 18);
    rle.writeUInt32LE(12000, 22);
    await rejectsImage(loadImage(rle), /RLE/);
  });

  test("random byte flips and truncations: an RgbImage or an ImageError, nothing else", async (t) => {
    const seeds = ["p4.bmp", "pil_P.bmp", "rle8.bmp", "rle4.bmp", "a32_v4_bgra.bmp", "rgb16_565.bmp", "os2_p8.bmp"].map((f) =>
      readFileSync(path.join(bmpDir, f)),
    );
    let decoded = 0, refused = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.nat(seeds.length - 1),
        fc.array(fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), value: fc.nat(255), header: fc.boolean() }), { maxLength: 4 }),
        fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined, freq: 2 }),
        async (seed, flips, cut) => {
          const bytes = Buffer.from(seeds[seed]!);
          for (const f of flips) {
            const span = f.header ? Math.min(70, bytes.length) : bytes.length;
            bytes[Math.floor(f.at * span)] = f.value;
          }
          const input = cut === undefined ? bytes : bytes.subarray(0, Math.floor(cut * bytes.length));
          try {
            const img = await loadImage(input, { maxPixels: 4e6 });
            assert.equal(img.data.length, img.width * img.height * 3);
            decoded++;
          } catch (e) {
            if (!(e instanceof ImageError)) throw e;
            refused++;
          }
        },
      ),
      { numRuns: 300 },
    );
    assert.ok(decoded > 0 && refused > 0, `decoded ${decoded}, refused ${refused}`);
    t.diagnostic(`${decoded} decoded, ${refused} refused with ImageError`);
  });
});
