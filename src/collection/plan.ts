/**
 * The incremental part of indexing: from the units to index and the rows already in the table, the rows to
 * embed (new or changed: other source bytes or text), how many are unchanged, and the stale rows of the
 * units seen this run (e.g. cues a changed transcript no longer has).
 */
import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { SourceError } from "./errors.js";
import { rowId, sha256, sha256File, type Report, type Unit } from "./sources.js";
import type { Row } from "./table.js";
import { frameTimes, videoDurationMs } from "./video.js";
import { parseVtt, withContext } from "./vtt.js";

export type StoredRow = Omit<Row, "vector">;

export interface WorkItem {
  id: string;
  unit: Unit;
  modality: Row["modality"];
  text: string | null;
  timeMs: number | null;
  /** Video rows: the frame's PNG relative to the frames folder. */
  frame: string | null;
  sourceSha: string;
  size: number;
  mtimeMs: number;
}

export interface PlanOptions {
  /** Cues on each side joined to a cue's text. */
  context: number;
  /** Frame spacing for videos without a transcript. */
  framesEveryMs: number;
  /** Where frames are written; undefined: videos cannot be indexed (object-storage database without one). */
  framesDir?: string;
}

export interface Plan {
  work: WorkItem[];
  unchanged: number;
  stale: StoredRow[];
}

interface Planned {
  id: string;
  modality: Row["modality"];
  text: string | null;
  timeMs: number | null;
  frame: string | null;
}

async function videoItems(unit: Extract<Unit, { kind: "video" }>, sha: string, o: PlanOptions, report: Report): Promise<Planned[] | undefined> {
  if (!o.framesDir) {
    report(new SourceError(unit.path, "videos need a local folder for their frames (framesDir / --frames-dir) when the database is on object storage"));
    return undefined;
  }
  let cues: ReturnType<typeof parseVtt> = [];
  if (unit.vtt) {
    try {
      cues = parseVtt(await readFile(unit.vtt, "utf8"), unit.vtt);
    } catch (e) {
      report(e instanceof SourceError ? e : new SourceError(unit.vtt, `cannot read transcript: ${(e as Error).message}`));
      return undefined;
    }
  }
  const seen = new Map<number, number>();
  // Two cues can share a midpoint: the second gets its own id (and the same frame).
  const key = (t: number) => {
    const n = seen.get(t) ?? 0;
    seen.set(t, n + 1);
    return `@${t}${n ? `#${n}` : ""}`;
  };
  const frame = (t: number) => `${sha}/${t}.png`;
  if (cues.length > 0) {
    const texts = withContext(cues, o.context);
    return cues.map((c, i) => {
      const t = Math.round((c.startMs + c.endMs) / 2);
      return { id: rowId(unit.path, key(t)), modality: "pair", text: texts[i], timeMs: t, frame: frame(t) };
    });
  }
  try {
    const times = frameTimes(await videoDurationMs(unit.path), o.framesEveryMs);
    return times.map((t) => ({ id: rowId(unit.path, key(t)), modality: "image", text: null, timeMs: t, frame: frame(t) }));
  } catch (e) {
    report(e instanceof SourceError ? e : new SourceError(unit.path, (e as Error).message));
    return undefined;
  }
}

function imageItems(unit: Extract<Unit, { kind: "image" }>): Planned[] {
  if (unit.captions.length === 0) return [{ id: rowId(unit.path), modality: "image", text: null, timeMs: null, frame: null }];
  return unit.captions.map((text, k) => ({ id: rowId(unit.path, `#${k}`), modality: "pair", text, timeMs: null, frame: null }));
}

export async function plan(units: Unit[], existing: StoredRow[], o: PlanOptions, report: Report): Promise<Plan> {
  const byId = new Map(existing.map((r) => [r.id, r]));
  const bySource = new Map<string, StoredRow[]>();
  for (const r of existing) {
    const list = bySource.get(r.source);
    if (list) list.push(r);
    else bySource.set(r.source, [r]);
  }
  const result: Plan = { work: [], unchanged: 0, stale: [] };
  for (const unit of units) {
    let size: number, mtimeMs: number, sha: string;
    const old = bySource.get(unit.path) ?? [];
    try {
      const s = await stat(unit.path);
      size = s.size;
      mtimeMs = s.mtimeMs;
      // Same size and mtime as when hashed: the stored hash is trusted (as git and rsync do), so a rerun reads no bytes.
      const known = old.find((r) => r.source_size === size && r.source_mtime_ms === mtimeMs);
      sha = known ? known.source_sha256 : await sha256File(unit.path);
    } catch (e) {
      report(new SourceError(unit.path, `cannot read: ${(e as Error).message}`));
      continue;
    }
    const items = unit.kind === "image" ? imageItems(unit) : await videoItems(unit, sha, o, report);
    if (!items) continue;
    const ids = new Set(items.map((i) => i.id));
    result.stale.push(...old.filter((r) => !ids.has(r.id)));
    for (const p of items) {
      const r = byId.get(p.id);
      const textSha = p.text === null ? null : sha256(p.text);
      const same = r && r.source === unit.path && r.source_sha256 === sha && r.text_sha256 === textSha && r.modality === p.modality &&
        r.frame === p.frame && (p.frame === null || existsSync(join(o.framesDir!, p.frame)));
      if (same) {
        result.unchanged++;
        continue;
      }
      result.work.push({ ...p, unit, sourceSha: sha, size, mtimeMs });
    }
  }
  return result;
}
