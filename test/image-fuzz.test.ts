/**
 * Mutation fuzzing of loadImage: random byte changes and truncations of a small PNG (also with
 * fixed-up CRCs, to reach the decoder) and JPEG must give either a well-formed RgbImage or an
 * ImageError, never another exception or a hang.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import sharp from "sharp";
import { ImageError } from "../src/errors.js";
import { loadImage } from "../src/image/index.js";
import { crc32 } from "../src/io/zip.js";

const RUNS = Number(process.env.IMAGE_FUZZ_RUNS ?? 200);
const TIMEOUT_MS = 10_000;

async function seeds(): Promise<Record<string, Buffer>> {
  const w = 24, h = 16;
  const raw = Buffer.alloc(w * h * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
  const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  return {
    png: await img.clone().png().toBuffer(),
    jpeg: await img.clone().jpeg({ quality: 80 }).toBuffer(),
  };
}


/** Rewrite every PNG chunk CRC so mutations get past the checksum into the decoder proper. */
function fixPngCrcs(b: Buffer): void {
  let p = 8;
  while (p + 12 <= b.length) {
    const len = b.readUInt32BE(p);
    if (p + 12 + len > b.length) return;
    b.writeUInt32BE(crc32(b.subarray(p + 4, p + 8 + len)), p + 8 + len);
    p += 12 + len;
  }
}

const mutation = fc.record({
  format: fc.constantFrom("png", "png-crc", "jpeg"),
  // Positions are fractions so they fit any file length; half of the flips hit the header.
  flips: fc.array(
    fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), header: fc.boolean(), value: fc.integer({ min: 0, max: 255 }) }),
    { maxLength: 6 },
  ),
  // Truncate a third of the files.
  cut: fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 2 },
    { arbitrary: fc.double({ min: 0, max: 1, noNaN: true }), weight: 1 },
  ),
});

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

describe("loadImage on mutated files", () => {
  test(`${RUNS} random byte flips / truncations of a PNG and a JPEG`, { timeout: RUNS * TIMEOUT_MS }, async (t) => {
    const files = await seeds();
    let decoded = 0, refused = 0;
    await fc.assert(
      fc.asyncProperty(mutation, async ({ format, flips, cut }) => {
        const bytes = Buffer.from(files[format === "png-crc" ? "png" : format]!);
        for (const f of flips) {
          const span = f.header ? Math.min(64, bytes.length) : bytes.length;
          bytes[Math.min(span - 1, Math.floor(f.at * span))] = f.value;
        }
        if (format === "png-crc") fixPngCrcs(bytes);
        const input = cut === undefined ? bytes : bytes.subarray(0, Math.floor(cut * bytes.length));
        try {
          const img = await withTimeout(loadImage(input), `${format} ${JSON.stringify({ flips, cut })}`);
          assert.ok(Number.isInteger(img.width) && img.width > 0 && Number.isInteger(img.height) && img.height > 0);
          assert.ok(img.data instanceof Uint8Array);
          assert.equal(img.data.length, img.width * img.height * 3);
          decoded++;
        } catch (e) {
          if (!(e instanceof ImageError)) throw e;
          refused++;
        }
      }),
      { numRuns: RUNS },
    );
    assert.equal(decoded + refused, RUNS);
    assert.ok(decoded > 0 && refused > 0, `decoded ${decoded}, refused ${refused}`);
    t.diagnostic(`${decoded} decoded, ${refused} refused with ImageError`);
  });
});
