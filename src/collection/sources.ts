/**
 * What to index: SOURCE files and folders (walked recursively) to image and video units, with their captions
 * (a --captions JSONL line or a sidecar NAME.txt) and transcripts (a sidecar NAME.vtt).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import { basename, dirname, extname, join, resolve, sep } from "node:path";
import { InputError } from "../index.js";
import { SourceError } from "./errors.js";
import { VIDEO_EXTENSIONS } from "./video.js";

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"];

export interface ImageUnit {
  kind: "image";
  path: string;
  /** Captions from --captions (several lines may name one image), else the sidecar NAME.txt; empty: the image alone. */
  captions: string[];
}
export interface VideoUnit {
  kind: "video";
  path: string;
  /** The sidecar NAME.vtt, when there is one. */
  vtt?: string;
}
export type Unit = ImageUnit | VideoUnit;

export type Report = (e: SourceError) => void;

const kindOf = (p: string): Unit["kind"] | undefined => {
  const ext = extname(p).toLowerCase();
  return IMAGE_EXTENSIONS.includes(ext) ? "image" : VIDEO_EXTENSIONS.includes(ext) ? "video" : undefined;
};

async function exists(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

const message = (e: unknown) => (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or folder" : (e as Error).message;

/** Captions by image real path. A bad line is reported (file:line) and skipped; an unreadable file is an error. */
export async function readCaptions(file: string, report: Report): Promise<Map<string, string[]>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new InputError(file, `cannot read the captions file: ${message(e)}`);
  }
  const base = dirname(resolve(file));
  const byImage = new Map<string, string[]>();
  for (const [n, line] of text.split(/\r?\n/).entries()) {
    if (!line.trim()) continue;
    const where = `${file}:${n + 1}`;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      report(new SourceError(where, `not JSON (${(e as Error).message})`));
      continue;
    }
    const { image, text: caption } = (o ?? {}) as { image?: unknown; text?: unknown };
    if (typeof image !== "string" || !image || typeof caption !== "string" || !caption.trim()) {
      report(new SourceError(where, 'expected {"image": PATH, "text": CAPTION} with a non-empty image path and text'));
      continue;
    }
    // Relative paths are relative to the captions file, so the file can move with its images.
    let path = resolve(base, image);
    try {
      path = await realpath(path);
    } catch (e) {
      report(new SourceError(where, `${image}: ${message(e)}`));
      continue;
    }
    if (kindOf(path) !== "image") {
      report(new SourceError(where, `${image}: not an image file (${IMAGE_EXTENSIONS.join(", ")})`));
      continue;
    }
    const list = byImage.get(path);
    if (list) list.push(caption.trim());
    else byImage.set(path, [caption.trim()]);
  }
  return byImage;
}

/**
 * The units for SOURCE paths plus every captioned image, by real path, deduplicated and sorted. Folders are
 * walked recursively (hidden entries and `exclude` folders, e.g. the database itself, are skipped).
 */
export async function collectUnits(sources: string[], captions: Map<string, string[]>, exclude: string[], report: Report): Promise<Unit[]> {
  const files = new Set<string>();
  const seenDirs = new Set<string>();
  const skip = exclude.map((d) => d + sep);
  const walk = async (dir: string): Promise<void> => {
    if (seenDirs.has(dir) || skip.some((s) => (dir + sep).startsWith(s))) return;
    seenDirs.add(dir);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      report(new SourceError(dir, `cannot read folder: ${message(e)}`));
      return;
    }
    for (const d of entries) {
      if (d.name.startsWith(".")) continue;
      const p = join(dir, d.name);
      if (d.isDirectory() || d.isSymbolicLink()) {
        try {
          const real = await realpath(p);
          const s = await stat(real);
          if (s.isDirectory()) await walk(real);
          else if (s.isFile() && kindOf(real)) files.add(real);
        } catch {
          // a dangling link inside a folder: nothing to index
        }
      } else if (d.isFile() && kindOf(p)) files.add(p);
    }
  };
  for (const s of sources) {
    try {
      const real = await realpath(s);
      const st = await stat(real);
      if (st.isDirectory()) await walk(real);
      else if (kindOf(real)) files.add(real);
      else report(new SourceError(s, `not an image (${IMAGE_EXTENSIONS.join(", ")}) or a video (${VIDEO_EXTENSIONS.join(", ")})`));
    } catch (e) {
      report(new SourceError(s, message(e)));
    }
  }
  for (const p of captions.keys()) files.add(p);
  const units: Unit[] = [];
  for (const path of [...files].sort()) {
    const stem = join(dirname(path), basename(path, extname(path)));
    if (kindOf(path) === "video") {
      units.push({ kind: "video", path, vtt: (await exists(`${stem}.vtt`)) ? `${stem}.vtt` : undefined });
      continue;
    }
    let caps = captions.get(path) ?? [];
    if (caps.length === 0 && (await exists(`${stem}.txt`))) {
      try {
        const t = (await readFile(`${stem}.txt`, "utf8")).trim();
        if (t) caps = [t];
      } catch (e) {
        report(new SourceError(`${stem}.txt`, `cannot read caption: ${message(e)}`));
        continue;
      }
    }
    units.push({ kind: "image", path, captions: caps });
  }
  return units;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

export const sha256 = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");

/** A row's stable id: the source's real path and, within it, the caption number or the frame time. */
export const rowId = (path: string, part = "") => sha256(`${path}\0${part}`).slice(0, 32);
