/** Frames from videos through ffmpeg: the one shipped by @ffmpeg-installer/ffmpeg, or FFMPEG_PATH / PATH's. */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, join } from "node:path";
import { SourceError } from "./errors.js";

export const VIDEO_EXTENSIONS = [".mp4", ".webm", ".mkv", ".mov"];
/** A hung or pathological decode fails after this long instead of stalling the run. */
const TIMEOUT_MS = 120_000;

let cached: string | undefined;

/** FFMPEG_PATH, else an `ffmpeg` on PATH, else the binary that `npm ci` installed. */
export function ffmpegPath(): string {
  if (process.env.FFMPEG_PATH) return process.env.FFMPEG_PATH;
  if (cached) return cached;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, "ffmpeg"), constants.X_OK);
      return (cached = join(dir, "ffmpeg"));
    } catch {
      // not here
    }
  }
  try {
    return (cached = (createRequire(import.meta.url)("@ffmpeg-installer/ffmpeg") as { path: string }).path);
  } catch (e) {
    throw new SourceError("ffmpeg", `not found: set FFMPEG_PATH or put ffmpeg on PATH (${(e as Error).message})`);
  }
}

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(ffmpegPath(), ["-hide_banner", "-nostdin", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    const timer = setTimeout(() => p.kill("SIGKILL"), TIMEOUT_MS);
    p.stdout.on("data", (b: Buffer) => out.push(b));
    p.stderr.on("data", (b: Buffer) => (err = (err + b.toString("utf8")).slice(-20_000)));
    p.on("error", (e) => {
      clearTimeout(timer);
      reject(new SourceError("ffmpeg", `cannot run ${ffmpegPath()}: ${e.message}`));
    });
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

/** ffmpeg's own reason, without the banner: its last non-empty stderr line. */
function reason(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  return lines.at(-1) ?? "ffmpeg failed";
}

const HMS = /(\d+):(\d{2}):(\d{2}(?:\.\d+)?)/;
const seconds = (m: RegExpExecArray) => Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);

/** Duration in milliseconds; throws SourceError when the file has no decodable video stream. */
export async function videoDurationMs(file: string): Promise<number> {
  const probe = await run(["-i", file]); // no output file: ffmpeg prints the stream info and exits 1
  if (!/Stream #.*Video:/.test(probe.stderr)) {
    const why = /Invalid data|moov atom not found|EBML header parsing failed|No such file/i.test(probe.stderr) ? reason(probe.stderr) : "no video stream";
    throw new SourceError(file, `cannot decode video: ${why.replace(`${file}: `, "")}`);
  }
  const d = /Duration: ([\d:.]+)/.exec(probe.stderr);
  const m = d && HMS.exec(d[1]);
  if (m) return Math.round(seconds(m) * 1000);
  // No duration in the header (e.g. some WebM files): read the stream through, copying packets (fast).
  const full = await run(["-i", file, "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]);
  const times = [...full.stderr.matchAll(/time=(\d+):(\d{2}):(\d{2}(?:\.\d+)?)/g)];
  const last = times.at(-1);
  if (!last) throw new SourceError(file, `cannot find the video's duration: ${reason(full.stderr)}`);
  return Math.round(seconds(last as unknown as RegExpExecArray) * 1000);
}

/** The frame shown at `timeMs`, as PNG bytes (RGB, the video's own size). */
export async function extractFrame(file: string, timeMs: number): Promise<Uint8Array> {
  const t = (timeMs / 1000).toFixed(3);
  const r = await run(["-v", "error", "-ss", t, "-i", file, "-map", "0:v:0", "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", "-pix_fmt", "rgb24", "-"]);
  if (r.code !== 0 || r.stdout.length === 0) {
    const why = r.code === 0 ? "no frame there (past the end of the video?)" : reason(r.stderr);
    throw new SourceError(file, `cannot extract the frame at ${t} s: ${why.replace(`${file}: `, "")}`);
  }
  return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length);
}

/** Midpoints of consecutive `everyMs` windows covering the video (the last window may be shorter). */
export function frameTimes(durationMs: number, everyMs: number): number[] {
  const times: number[] = [];
  for (let start = 0; start < durationMs; start += everyMs) times.push(Math.round((start + Math.min(start + everyMs, durationMs)) / 2));
  return times;
}
