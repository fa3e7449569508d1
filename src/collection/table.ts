/** The LanceDB side: one table `items` per database, its Arrow schema, and the model recorded in its metadata. */
import type { Connection, Table } from "@lancedb/lancedb";
import { CollectionError } from "./errors.js";

export const TABLE = "items";
const META_KEY = "bridgetower.collection";

/** Which weights made the vectors: a Hub id with its commit, or a local folder (real path); and the dtype. */
export interface ModelRecord {
  model: string;
  commit: string | null;
  dtype: "fp32" | "int8";
  /** The contrastive embedding size. */
  dim: number;
}

/** One row. `modality` "image": the image's ITC embedding; "pair": the (image, text) cross embedding. */
export interface Row {
  id: string;
  /** Real path of the image or video file the row comes from. */
  source: string;
  modality: "image" | "pair";
  text: string | null;
  /** Video rows: the video (same as source). */
  video: string | null;
  time_ms: number | null;
  /** Video rows: the frame's PNG, relative to the frames folder. */
  frame: string | null;
  source_sha256: string;
  text_sha256: string | null;
  /** Size and mtime when hashed: a rerun trusts the stored hash while both are unchanged. */
  source_size: number;
  source_mtime_ms: number;
  vector: number[];
}

/** The columns read back for bookkeeping (everything but the vector). */
export const META_COLUMNS = ["id", "source", "modality", "text", "video", "time_ms", "frame", "source_sha256", "text_sha256", "source_size", "source_mtime_ms"];

type LanceModule = typeof import("@lancedb/lancedb");
let lanceModule: Promise<LanceModule> | undefined;

/** Loaded on first use (so other commands do not pay for it), with LanceDB's Rust warnings kept off stderr. */
export function lance(): Promise<LanceModule> {
  process.env.LANCEDB_LOG ??= "error";
  return (lanceModule ??= import("@lancedb/lancedb"));
}

export async function schemaFor(record: ModelRecord) {
  const { Schema, Field, Utf8, Int32, Float64, Float32, FixedSizeList } = await import("apache-arrow");
  const text = (name: string, nullable = true) => new Field(name, new Utf8(), nullable);
  return new Schema(
    [
      text("id", false), text("source", false), text("modality", false), text("text"), text("video"),
      new Field("time_ms", new Int32(), true), text("frame"), text("source_sha256", false), text("text_sha256"),
      new Field("source_size", new Float64(), false), new Field("source_mtime_ms", new Float64(), false),
      new Field("vector", new FixedSizeList(record.dim, new Field("item", new Float32(), true)), false),
    ],
    new Map([[META_KEY, JSON.stringify({ format: 1, ...record })]]),
  );
}

/** The model a table was made with; CollectionError when the table is not a bridgetower collection. */
export async function readRecord(table: Table, uri: string): Promise<ModelRecord> {
  const raw = (await table.schema()).metadata.get(META_KEY);
  let r: Partial<ModelRecord> & { format?: number } = {};
  try {
    r = raw ? JSON.parse(raw) : {};
  } catch {
    // reported below
  }
  if (r.format !== 1 || typeof r.model !== "string" || typeof r.dim !== "number" || (r.dtype !== "fp32" && r.dtype !== "int8"))
    throw new CollectionError(uri, `table "${TABLE}" is not a bridgetower collection (no model record in its metadata)`);
  return { model: r.model, commit: r.commit ?? null, dtype: r.dtype, dim: r.dim };
}

/** Opens the table, or creates it (empty, with the model record) when `create` and it does not exist yet. */
export async function openTable(db: Connection, uri: string, create: ModelRecord | undefined): Promise<Table | undefined> {
  if ((await db.tableNames()).includes(TABLE)) return db.openTable(TABLE);
  if (!create) return undefined;
  // existOk: two processes creating the same collection at once both end with the one table.
  return db.createEmptyTable(TABLE, await schemaFor(create), { mode: "create", existOk: true });
}

/**
 * LanceDB's errors carry a Rust source location and a chain of causes: keep the operation and the root cause, as
 * a CollectionError naming the database.
 */
export function dbError(uri: string, doing: string, e: unknown): CollectionError {
  if (e instanceof CollectionError) return e;
  const text = String((e as Error)?.message ?? e);
  const causes = text.split(/\s*Caused by:\s*/).map((c) => c.replace(/,? \/\S+\.rs:\d+:\d+/g, "").trim()).filter(Boolean);
  return new CollectionError(uri, `${doing}: ${causes.at(-1) ?? text}`, { cause: e });
}

/** Runs a LanceDB call, turning its failure into a one-line CollectionError. */
export async function guard<T>(uri: string, doing: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw dbError(uri, doing, e);
  }
}

/** SQL string literal (LanceDB filters are SQL). */
export const sql = (s: string) => `'${s.replace(/'/g, "''")}'`;
