/**
 * Decode + preprocess time for a 640x480 JPEG (median of several runs, sharp limited to one thread).
 * Run: node --import tsx bench/preprocess.ts
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { BridgeTowerImageProcessor, loadImage, resizeBicubic } from "../src/image/index.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = process.env.BRIDGETOWER_FIXTURES ?? path.resolve(repoRoot, "../shared/fixtures");
const source = path.join(fixtures, "image-processor/images/coffee.png");

sharp.concurrency(1);

async function makeJpeg(): Promise<Buffer> {
  if (existsSync(source)) return sharp(source).resize(640, 480, { fit: "fill" }).jpeg({ quality: 90 }).toBuffer();
  // Synthetic fallback when the fixtures are not around.
  const raw = Buffer.alloc(640 * 480 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
  return sharp(raw, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const jpeg = await makeJpeg();
const runs = Number(process.env.RUNS ?? 40);
for (const size of [288, 294]) {
  const proc = new BridgeTowerImageProcessor({ size: { shortestEdge: size } });
  const total: number[] = [], decode: number[] = [], pre: number[] = [], resize: number[] = [];
  for (let i = 0; i < runs + 5; i++) {
    const t0 = performance.now();
    const img = await loadImage(jpeg);
    const t1 = performance.now();
    proc.preprocess([img], { doCenterCrop: true });
    const t2 = performance.now();
    resizeBicubic(img, 384, 288);
    const t3 = performance.now();
    if (i < 5) continue; // warm-up
    decode.push(t1 - t0);
    pre.push(t2 - t1);
    total.push(t2 - t0);
    resize.push(t3 - t2);
  }
  console.log(
    `shortest_edge ${size}: decode+preprocess ${median(total).toFixed(2)} ms ` +
      `(decode ${median(decode).toFixed(2)} ms, preprocess ${median(pre).toFixed(2)} ms; ` +
      `resize 640x480->384x288 alone ${median(resize).toFixed(2)} ms), median of ${runs}`,
  );
}
