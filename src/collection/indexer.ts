/** `Collection.add`: plan (incremental), then prepare / embed / commit batches through the pipeline. */
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Table } from "@lancedb/lancedb";
import { ImageError, type BridgeTowerModel, type BridgeTowerProcessor, type Tensor } from "../index.js";
import { SourceError } from "./errors.js";
import type { CollectionModel } from "./model.js";
import { runPipeline } from "./pipeline.js";
import { plan, type StoredRow, type WorkItem } from "./plan.js";
import { collectUnits, readCaptions, sha256 } from "./sources.js";
import { guard, META_COLUMNS, sql, type Row } from "./table.js";
import { extractFrame } from "./video.js";

export interface AddOptions {
  /** JSONL file of `{"image": PATH, "text": CAPTION}` lines (paths relative to the file); its images are indexed too. */
  captions?: string;
  /** Transcript cues joined on each side of a video cue. Default 2. */
  context?: number;
  /** Seconds between frames of a video without a transcript. Default 5. */
  framesEvery?: number;
  /** Also remove the rows whose source file is gone. */
  prune?: boolean;
  /** Rows per model call and per commit. Default 8. */
  batchSize?: number;
  /** Called for every file (or captions line) that cannot be read or decoded; it is skipped. */
  onFailure?: (error: SourceError) => void;
  onProgress?: (p: IndexProgress) => void;
  /** Stops after the batch being committed (a rerun completes the rest). */
  signal?: AbortSignal;
}

export interface IndexProgress {
  phase: "embed" | "ann-index";
  done: number;
  total: number;
}

export interface AddSummary {
  indexed: number;
  unchanged: number;
  removed: number;
  failed: number;
  /** True when stopped by `signal` before the end. */
  interrupted: boolean;
}

export interface IndexContext {
  uri: string;
  /** Undefined while the collection has no rows yet. */
  table: Table | undefined;
  /** The table, created when missing. */
  writable(): Promise<Table>;
  model: CollectionModel;
  framesDir?: string;
  /** Folders never walked (the database and its frames). */
  exclude: string[];
  /** Called after rows were written or deleted (ANN index upkeep). */
  afterWrite(onProgress?: (p: IndexProgress) => void): Promise<void>;
}

interface Prepared {
  pixels: Float32Array;
  sha: string;
}

export async function readRows(table: Table): Promise<StoredRow[]> {
  return (await table.query().select(META_COLUMNS).toArray()) as StoredRow[];
}

/** Writes through a temporary name, so a killed run never leaves a half-written PNG under the final name. */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

function stack(items: Float32Array[], size: number): Tensor<Float32Array> {
  const per = 3 * size * size;
  const data = new Float32Array(items.length * per);
  items.forEach((p, i) => data.set(p, i * per));
  return { data, dims: [items.length, 3, size, size] };
}

const IMAGES_PER_CALL = 2;

function chunks<T>(xs: T[], n: number): T[][] {
  return Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));
}

function rowsOf(t: Tensor): number[][] {
  const [B, C] = t.dims;
  return Array.from({ length: B }, (_, b) => Array.from((t.data as Float32Array).subarray(b * C, (b + 1) * C)));
}

export async function embedBatch(model: BridgeTowerModel, processor: BridgeTowerProcessor, maxTokens: number, batch: { item: WorkItem; prepared: Prepared }[]): Promise<Row[]> {
  const S = model.config.visionConfig.imageSize;
  const vectors = new Map<WorkItem, number[]>();
  const images = batch.filter((b) => b.item.modality === "image");
  const pairs = batch.filter((b) => b.item.modality === "pair");
  // A commit batch runs as model calls of a few images: 16 images in one call cost 25% more per image than one
  // (int8, full size: 0.74 vs 0.60 s; 2 images: within 4%), the activations no longer fitting in cache.
  for (const part of chunks(images, IMAGES_PER_CALL)) {
    const e = rowsOf(await model.itc.embedImages(stack(part.map((b) => b.prepared.pixels), S)));
    part.forEach((b, i) => vectors.set(b.item, e[i]));
  }
  for (const part of chunks(pairs, IMAGES_PER_CALL)) {
    const t = await processor.call({ text: part.map((b) => b.item.text!), padding: "longest", truncation: true, maxLength: maxTokens });
    const out = await model.itc.run({ inputIds: t.inputIds!, attentionMask: t.attentionMask, pixelValues: stack(part.map((b) => b.prepared.pixels), S) });
    const e = rowsOf(out["itc.cross_embeds"]);
    part.forEach((b, i) => vectors.set(b.item, e[i]));
  }
  return batch.map(({ item, prepared }) => ({
    id: item.id,
    source: item.unit.path,
    modality: item.modality,
    text: item.text,
    video: item.unit.kind === "video" ? item.unit.path : null,
    time_ms: item.timeMs,
    frame: item.frame,
    source_sha256: prepared.sha,
    text_sha256: item.text === null ? null : sha256(item.text),
    source_size: item.size,
    source_mtime_ms: item.mtimeMs,
    vector: vectors.get(item)!,
  }));
}

export async function addSources(ctx: IndexContext, sources: string[], o: AddOptions = {}): Promise<AddSummary> {
  const summary: AddSummary = { indexed: 0, unchanged: 0, removed: 0, failed: 0, interrupted: false };
  const report = (e: SourceError) => {
    summary.failed++;
    o.onFailure?.(e);
  };
  const captions = o.captions ? await readCaptions(o.captions, report) : new Map<string, string[]>();
  const units = await collectUnits(sources, captions, ctx.exclude, report);
  const existing = ctx.table ? await readRows(ctx.table) : [];
  const p = await plan(units, existing, { context: o.context ?? 2, framesEveryMs: (o.framesEvery ?? 5) * 1000, framesDir: ctx.framesDir }, report);
  summary.unchanged = p.unchanged;
  const total = p.work.length;
  o.onProgress?.({ phase: "embed", done: 0, total });
  // One decoded image serves all of its captions (adjacent items).
  let last: { path: string; pixels: Promise<Prepared> } | undefined;
  const prepareImage = async (path: string): Promise<Prepared> => {
    const processor = await ctx.model.processor();
    const bytes = await readFile(path);
    try {
      const { pixelValues } = await processor.call({ images: [new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)] });
      return { pixels: pixelValues!.data, sha: sha256(bytes) };
    } catch (e) {
      // The decoder names its input "<bytes>"; the file is what the user needs to see.
      if (e instanceof ImageError) throw new SourceError(path, e.message.replace(/^<bytes>: /, ""));
      throw e;
    }
  };
  const prepare = async (item: WorkItem): Promise<Prepared> => {
    if (item.unit.kind === "image") {
      if (last?.path !== item.unit.path) last = { path: item.unit.path, pixels: prepareImage(item.unit.path) };
      return last.pixels;
    }
    const png = await extractFrame(item.unit.path, item.timeMs!);
    const processor = await ctx.model.processor();
    const pixels = (await processor.call({ images: [png] })).pixelValues!.data;
    await writeAtomic(join(ctx.framesDir!, item.frame!), png);
    return { pixels, sha: item.sourceSha };
  };
  let wrote = false;
  let skipped = 0;
  if (total > 0) {
    // Loaded first: a model that cannot load is one error, not a failure per item.
    const processor = await ctx.model.processor();
    await ctx.model.use(false, async () => undefined);
    const table = await ctx.writable();
    await runPipeline(p.work, {
      batchSize: o.batchSize ?? 8,
      concurrency: 2,
      prepare,
      embed: (batch) => ctx.model.use(false, (model) => embedBatch(model, processor, ctx.model.maxTokens(model), batch)),
      write: async (rows) => {
        const data = rows as unknown as Record<string, unknown>[];
        await guard(ctx.uri, "cannot write to the collection", () => table.mergeInsert("id").whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(data));
        wrote = true;
      },
      onFailure: (item, e) => {
        skipped++;
        report(e instanceof SourceError ? e : new SourceError(item.unit.path, (e as Error)?.message ?? String(e)));
      },
      onCommit: (n) => {
        summary.indexed += n;
        o.onProgress?.({ phase: "embed", done: summary.indexed + skipped, total });
      },
      signal: o.signal,
    });
  }
  summary.interrupted = o.signal?.aborted === true && summary.indexed + skipped < total;
  if (!summary.interrupted) {
    const gone = new Set(o.prune ? [...new Set(existing.map((r) => r.source))].filter((s) => !existsSync(s)) : []);
    if (ctx.table) summary.removed = await removeRows(ctx.table, [...p.stale, ...existing.filter((r) => gone.has(r.source))], ctx.framesDir);
  }
  if (wrote || summary.removed > 0) await ctx.afterWrite(o.onProgress);
  return summary;
}

/** Deletes rows by id (in chunks) and then the frames no remaining row points to. */
export async function removeRows(table: Table, rows: StoredRow[], framesDir?: string): Promise<number> {
  if (rows.length === 0) return 0;
  const ids = [...new Set(rows.map((r) => r.id))];
  for (let i = 0; i < ids.length; i += 500) await table.delete(`id IN (${ids.slice(i, i + 500).map(sql).join(", ")})`);
  const frames = new Set(rows.map((r) => r.frame).filter((f): f is string => !!f));
  if (framesDir && frames.size) {
    const kept = new Set(((await table.query().where("frame IS NOT NULL").select(["frame"]).toArray()) as { frame: string }[]).map((r) => r.frame));
    for (const f of frames) if (!kept.has(f)) await rm(join(framesDir, f), { force: true });
  }
  return ids.length;
}
