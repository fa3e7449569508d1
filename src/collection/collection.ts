/**
 * A searchable collection of images, captioned images and video frames with their BridgeTower ITC embeddings,
 * in an embedded LanceDB database (a local folder, or object storage: s3://, gs://, az://).
 */
import { existsSync, realpathSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Connection, Table } from "@lancedb/lancedb";
import { InputError } from "../index.js";
import { CollectionError } from "./errors.js";
import { addSources, removeRows, readRows, type AddOptions, type AddSummary, type IndexProgress } from "./indexer.js";
import { checkSame, CollectionModel, type ModelOptions } from "./model.js";
import { embedQuery, nearest, normalizeQuery, rerank, type Query, type SearchOptions, type SearchResult } from "./search.js";
import { guard, lance, openTable, readRecord, sql, type ModelRecord } from "./table.js";

/** Rows from which adding builds the ANN index (IVF-PQ, see search.ts); below it search is exact (flat). */
export const ANN_MIN_ROWS = 50_000;

export interface CollectionOptions extends ModelOptions {
  /** Create the collection when it does not exist (recording the model). Default false: open only. */
  create?: boolean;
  /** Where video frames are written. Default DIR/frames for a local database; required on object storage for videos. */
  framesDir?: string;
  /** Object storage credentials and settings, passed to LanceDB (e.g. aws_region, aws_access_key_id). */
  storageOptions?: Record<string, string>;
  /** Seconds between checks for other processes' writes. Default 0 (every read) locally, 5 on object storage. */
  readConsistencyInterval?: number;
}

const isRemote = (uri: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(uri);

export class Collection {
  private constructor(
    /** The database: a local folder (absolute) or an object-storage URI. */
    readonly uri: string,
    private readonly db: Connection,
    /** Undefined until the first rows are written to a new collection. */
    private table: Table | undefined,
    private readonly models: CollectionModel,
    /** Where video frames are (undefined: an object-storage database without framesDir). */
    readonly framesDir: string | undefined,
  ) {}

  /**
   * Opens the collection in `uri`, refusing a model other than the one it records. With `create`, a missing one is
   * created (recording the model) when its first rows are written, so a run that fails first leaves no table.
   */
  static async open(uri: string, options: CollectionOptions = {}): Promise<Collection> {
    const remote = isRemote(uri);
    const where = remote ? uri : resolve(uri);
    const missing = () => new CollectionError(uri, "no collection here (build one with `bridgetower index ... --db DIR`)");
    if (!remote) {
      if (existsSync(where) && !statSync(where).isDirectory()) throw new CollectionError(uri, "is a file, not a collection folder");
      if (!options.create && !existsSync(where)) throw missing();
    }
    const { connect } = await lance();
    const db = await guard(uri, "cannot open the database", () =>
      connect(where, { readConsistencyInterval: options.readConsistencyInterval ?? (remote ? 5 : 0), storageOptions: options.storageOptions }),
    );
    let models: CollectionModel | undefined;
    try {
      const table = await guard(uri, "cannot open the collection", () => openTable(db, where, undefined));
      if (!table && !options.create) throw missing();
      models = await CollectionModel.resolve(uri, options, table ? await readRecord(table, uri) : undefined);
      const framesDir = options.framesDir ? resolve(options.framesDir) : remote ? undefined : join(where, "frames");
      return new Collection(where, db, table, models, framesDir);
    } catch (e) {
      await models?.dispose();
      db.close();
      throw e;
    }
  }

  /** The table, created with the model's record if it does not exist yet. */
  private async writable(): Promise<Table> {
    if (this.table) return this.table;
    const table = (await guard(this.uri, "cannot create the collection", () => openTable(this.db, this.uri, this.models.record)))!;
    // Another process may have created it first, with another model.
    const now = await readRecord(table, this.uri);
    try {
      checkSame(this.uri, now, this.models.record);
    } catch (e) {
      table.close();
      throw e;
    }
    return (this.table = table);
  }

  /** The model the vectors were made with (Hub id and commit, or folder), its dtype and embedding size. */
  get model(): ModelRecord {
    return { ...this.models.record };
  }

  /** Number of rows. */
  async count(): Promise<number> {
    return this.table ? this.table.countRows() : 0;
  }

  /**
   * Indexes image and video files and folders (recursively): new or changed sources are embedded and committed
   * in batches, unchanged ones skipped. Never throws for a bad source file: it is reported through `onFailure`.
   */
  async add(sources: string[], options: AddOptions = {}): Promise<AddSummary> {
    const b = options.batchSize;
    if (b !== undefined && !(Number.isInteger(b) && b >= 1)) throw new InputError("batchSize", `must be a positive integer, got ${b}`);
    const every = options.framesEvery;
    if (every !== undefined && !(every > 0)) throw new InputError("framesEvery", `must be a positive number of seconds, got ${every}`);
    const ctx = options.context;
    if (ctx !== undefined && !(Number.isInteger(ctx) && ctx >= 0)) throw new InputError("context", `must be a non-negative integer, got ${ctx}`);
    const exclude = this.framesDir ? [this.framesDir] : [];
    if (!isRemote(this.uri) && existsSync(this.uri)) exclude.push(realpathSync(this.uri));
    return addSources(
      { uri: this.uri, table: this.table, writable: () => this.writable(), model: this.models, framesDir: this.framesDir, exclude, afterWrite: (p) => this.maintain(p) },
      sources,
      options,
    );
  }

  /** Removes rows by id (and their frames); returns how many existed. */
  async remove(ids: string[]): Promise<number> {
    if (!this.table) return 0;
    const wanted = new Set(ids);
    const rows = (await readRows(this.table)).filter((r) => wanted.has(r.id));
    const n = await removeRows(this.table, rows, this.framesDir);
    if (n) await this.maintain();
    return n;
  }

  /** Removes the rows whose source file no longer exists; returns how many. */
  async prune(): Promise<number> {
    if (!this.table) return 0;
    const rows = await readRows(this.table);
    const gone = new Set([...new Set(rows.map((r) => r.source))].filter((s) => !existsSync(s)));
    const n = await removeRows(this.table, rows.filter((r) => gone.has(r.source)), this.framesDir);
    if (n) await this.maintain();
    return n;
  }

  /** Text → ITC text embedding, image → ITC image embedding, both → the pair's cross embedding; best first by cosine. */
  async search(query: Query, options: SearchOptions = {}): Promise<SearchResult[]> {
    const q = normalizeQuery(query);
    const topK = options.topK ?? 10;
    if (!(Number.isInteger(topK) && topK >= 1)) throw new InputError("topK", `must be a positive integer, got ${topK}`);
    const n = options.rerank ?? 0;
    if (!(Number.isInteger(n) && n >= 0)) throw new InputError("rerank", `must be a non-negative integer, got ${options.rerank}`);
    if (n > 0 && q.text === undefined) throw new InputError("rerank", "re-ranking needs a text query (ITM scores the query text against each image)");
    if (!this.table) return [];
    const results = await nearest(this.table, await embedQuery(this.models, q), Math.max(topK, n), this.framesDir);
    return (n > 0 ? await rerank(this.models, results, q.text!, n) : results).slice(0, topK);
  }

  /** Nearest rows to an embedding of the collection's size (no model involved). */
  async searchVector(vector: ArrayLike<number>, options: { topK?: number } = {}): Promise<SearchResult[]> {
    if (vector.length !== this.models.record.dim) throw new InputError("vector", `has ${vector.length} values; the collection's embeddings have ${this.models.record.dim}`);
    return this.table ? nearest(this.table, vector, options.topK ?? 10, this.framesDir) : [];
  }

  /**
   * The picture file of row `id` (its frame for video rows, else its image), as the collection records it; undefined
   * for an unknown id. Paths come only from the table, never from the caller.
   */
  async itemImagePath(id: string): Promise<string | undefined> {
    if (!this.table || !/^[0-9a-f]{32}$/.test(id)) return undefined;
    const [r] = (await this.table.query().where(`id = ${sql(id)}`).select(["source", "frame"]).limit(1).toArray()) as { source: string; frame: string | null }[];
    if (!r) return undefined;
    if (r.frame === null) return r.source;
    if (!this.framesDir || r.frame.includes("..")) return undefined;
    return join(this.framesDir, r.frame);
  }

  /** Builds (or rebuilds) the ANN index over the vectors; searches use it from then on. */
  async createIndex(): Promise<void> {
    const { Index } = await lance();
    await (await this.writable()).createIndex("vector", { config: Index.ivfPq({ distanceType: "cosine" }), replace: true });
  }

  /** Whether the ANN index exists. */
  async hasIndex(): Promise<boolean> {
    return !!this.table && (await this.table.listIndices()).some((i) => i.columns.includes("vector"));
  }

  /** After writes: compacts small commits, folds new rows into the ANN index, or builds it past ANN_MIN_ROWS. */
  private async maintain(onProgress?: (p: IndexProgress) => void): Promise<void> {
    if (!this.table) return;
    const table = this.table;
    await guard(this.uri, "cannot compact the collection", () => table.optimize());
    if (await this.hasIndex()) return;
    const rows = await table.countRows();
    if (rows >= ANN_MIN_ROWS) {
      onProgress?.({ phase: "ann-index", done: 0, total: rows });
      await this.createIndex();
      onProgress?.({ phase: "ann-index", done: rows, total: rows });
    }
  }

  /** Frees the model (unless it was given loaded) and the database handles. */
  async close(): Promise<void> {
    await this.models.dispose();
    this.table?.close();
    this.db.close();
  }
}

