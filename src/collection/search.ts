/** Queries: text, image or both to one ITC embedding; cosine nearest rows; optional ITM re-ranking of the top rows. */
import { access } from "node:fs/promises";
import { join } from "node:path";
import type { Table } from "@lancedb/lancedb";
import { cosine, InputError, rankImages, type ImageInput, type Tensor } from "../index.js";
import type { CollectionModel } from "./model.js";
import { META_COLUMNS, type Row } from "./table.js";

export type Query = string | { text?: string; image?: ImageInput };

export interface SearchOptions {
  /** Results returned. Default 10. */
  topK?: number;
  /** Text queries: re-score the best N rows by cosine with the ITM head on (query text, row image) and re-order them by match probability. */
  rerank?: number;
}

export interface SearchResult {
  id: string;
  /** The image or video file. */
  source: string;
  modality: "image" | "pair";
  text?: string;
  video?: string;
  time_ms?: number;
  /** Video rows: the frame's PNG (absolute path). */
  frame?: string;
  /** Cosine similarity of the query embedding with the row's. */
  score: number;
  /** With rerank: the ITM match probability. */
  itm_score?: number;
}

/**
 * With the IVF-PQ index, LanceDB ranks by compressed vectors; the best topK x this many are re-scored with the
 * full vectors, which lifts recall@10 from ~0.8-0.9 to >= 0.96 (bench/index.ts; 0.999 at 512 dimensions).
 */
export const ANN_REFINE_FACTOR = 20;

export function normalizeQuery(q: Query): { text?: string; image?: ImageInput } {
  const o = typeof q === "string" ? { text: q } : (q ?? {});
  const text = typeof o.text === "string" && o.text.trim() ? o.text : undefined;
  if (text === undefined && o.image === undefined) throw new InputError("query", "give a text, an image, or both");
  return { text, image: o.image };
}

export async function embedQuery(m: CollectionModel, q: { text?: string; image?: ImageInput }): Promise<Float32Array> {
  const processor = await m.processor();
  const i = q.image !== undefined ? await processor.call({ images: [q.image] }) : undefined;
  return m.use(false, async (model) => {
    const t = q.text !== undefined ? await processor.call({ text: [q.text], padding: "longest", truncation: true, maxLength: m.maxTokens(model) }) : undefined;
    let e: Tensor;
    if (t && i) e = (await model.itc.run({ inputIds: t.inputIds!, attentionMask: t.attentionMask, pixelValues: i.pixelValues! }))["itc.cross_embeds"];
    else if (t) e = await model.itc.embedTexts(t.inputIds!, t.attentionMask);
    else e = await model.itc.embedImages(i!.pixelValues!);
    return e.data as Float32Array;
  });
}

/** The `limit` rows nearest to `vector` by cosine, best first (exact scores from the stored vectors). */
export async function nearest(table: Table, vector: ArrayLike<number>, limit: number, framesDir: string | undefined): Promise<SearchResult[]> {
  const q = Array.from(vector);
  const rows = (await table
    .vectorSearch(q)
    .distanceType("cosine")
    .refineFactor(ANN_REFINE_FACTOR)
    .limit(limit)
    .select([...META_COLUMNS, "vector", "_distance"])
    .toArray()) as (Row & { vector: { toArray(): Float32Array } })[];
  const results = rows.map((r) => {
    const out: SearchResult = { id: r.id, source: r.source, modality: r.modality, score: cosine(q, r.vector.toArray()) };
    if (r.text !== null) out.text = r.text;
    if (r.video !== null) out.video = r.video;
    if (r.time_ms !== null) out.time_ms = r.time_ms;
    if (r.frame !== null && framesDir) out.frame = join(framesDir, r.frame);
    return out;
  });
  return results.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
}

/** The picture a row stands for: its frame (video rows) or its image file. */
export const imageOf = (r: SearchResult) => r.frame ?? r.source;

/** Re-orders the first `n` results by ITM match probability with `text` (exactly `rankImages`' order). */
export async function rerank(m: CollectionModel, results: SearchResult[], text: string, n: number): Promise<SearchResult[]> {
  const head = results.slice(0, n);
  // Rows whose picture is gone since indexing cannot be scored: they follow the re-ranked ones.
  const ok = await Promise.all(head.map((r) => access(imageOf(r)).then(() => true, () => false)));
  const scored = head.filter((_, i) => ok[i]);
  if (scored.length === 0) return results;
  const processor = await m.processor();
  const ranked = await m.use(true, (model) => rankImages(model.itm, processor, scored.map(imageOf), text));
  return reorderReranked(results, n, ok, ranked);
}

/**
 * The first `n` results re-ordered by `ranked` (ITM scores of the readable ones among them, best first, indexes into
 * those), then the unreadable ones among them, then the rest by cosine. Shared with the server, which scores the
 * pictures through its own batcher.
 */
export function reorderReranked(results: SearchResult[], n: number, readable: boolean[], ranked: { index: number; score: number }[]): SearchResult[] {
  const head = results.slice(0, n);
  const scored = head.filter((_, i) => readable[i]);
  return [...ranked.map((s) => ({ ...scored[s.index], itm_score: s.score })), ...head.filter((_, i) => !readable[i]), ...results.slice(n)];
}
