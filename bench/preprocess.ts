/**
 * Decode + preprocess time for a 640x480 JPEG, median of several runs, sharp limited to one thread.
 * Prints wall time and process CPU time (all threads); on a busy machine the CPU time is the
 * steadier of the two. Run: node --import tsx bench/preprocess.ts
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { BridgeTowerImageProcessor, loadImage } from "../src/image/index.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = process.env.BRIDGETOWER_FIXTURES ?? path.resolve(repoRoot, "../shared/fixtures");
const source = path.join(fixtures, "image-processor/images/coffee.png");
const runs = Number(process.env.RUNS ?? 50);

sharp.concurrency(1);

async function makeJpeg(): Promise<Buffer> {
  if (existsSync(source)) return sharp(source).resize(640, 480, { fit: "fill" }).jpeg({ quality: 90 }).toBuffer();
  // Synthetic fallback when the fixtures are not around.
  const raw = Buffer.alloc(640 * 480 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
  return sharp(raw, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

const jpeg = await makeJpeg();
for (const size of [288, 294]) {
  const proc = new BridgeTowerImageProcessor({ size: { shortestEdge: size } });
  const wall: number[] = [], cpu: number[] = [], decodeWall: number[] = [], preWall: number[] = [];
  for (let i = 0; i < runs + 5; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const img = await loadImage(jpeg);
    const t1 = performance.now();
    proc.preprocess([img], { doCenterCrop: true });
    const t2 = performance.now();
    const c = cpuMs(process.cpuUsage(c0));
    if (i < 5) continue; // warm-up
    wall.push(t2 - t0);
    cpu.push(c);
    decodeWall.push(t1 - t0);
    preWall.push(t2 - t1);
  }
  console.log(
    `640x480 JPEG, shortest_edge ${size}: decode+preprocess median ${median(wall).toFixed(2)} ms wall, ` +
      `${median(cpu).toFixed(2)} ms CPU (decode ${median(decodeWall).toFixed(2)} ms, ` +
      `preprocess ${median(preWall).toFixed(2)} ms wall), ${runs} runs`,
  );
}
