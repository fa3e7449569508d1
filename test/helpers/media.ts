/** Test media made on the spot: PNGs (sharp), short videos (the ffmpeg the package installs), WebVTT files. */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import sharp from "sharp";
import { ffmpegPath } from "../../src/collection/video.js";

/** A w x h PNG of smooth colour bands; `seed` changes the colours (every seed gives a different image). */
export async function writePng(path: string, seed: number, w = 48, h = 36): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = (x * 5 + seed * 37) & 255;
      data[i + 1] = (y * 7 + seed * 91) & 255;
      data[i + 2] = ((x + y) * 3 + seed * 53) & 255;
    }
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
}

/** A `seconds`-long test-pattern video (codec from the extension: H.264 for mp4/mkv/mov, VP8 for webm). */
export function writeVideo(path: string, seconds: number, pattern = "testsrc"): void {
  mkdirSync(dirname(path), { recursive: true });
  const codec = path.endsWith(".webm") ? ["-c:v", "libvpx", "-b:v", "200k"] : ["-c:v", "libx264", "-pix_fmt", "yuv420p"];
  const r = spawnSync(ffmpegPath(), ["-v", "error", "-y", "-f", "lavfi", "-i", `${pattern}=size=96x64:rate=10:duration=${seconds}`, ...codec, path], { timeout: 60_000 });
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
}

const stamp = (ms: number) => {
  const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
  return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}.${String(ms % 1000).padStart(3, "0")}`;
};

/** A WebVTT file with one cue per [startMs, endMs, text]. */
export function writeVtt(path: string, cues: [number, number, string][]): void {
  writeFileSync(path, `WEBVTT\n\n${cues.map(([a, b, t], i) => `${i + 1}\n${stamp(a)} --> ${stamp(b)}\n${t}\n`).join("\n")}`);
}
