/**
 * The model behind a collection: which weights (a Hub id at a commit, or a folder) and dtype, checked against
 * the collection's record, and the model itself, loaded only when something has to be embedded or re-ranked.
 */
import { realpath, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import {
  BridgeTowerModel, BridgeTowerProcessor, hubFile, InputError, loadConfig, maxTextTokens, resolveModel, UnsupportedCheckpointError, type HubOptions,
} from "../index.js";
import { ModelMismatchError } from "./errors.js";
import type { ModelRecord } from "./table.js";

/** Used for a new collection when no model is given: the released checkpoint with the contrastive (ITC) heads. */
export const DEFAULT_COLLECTION_MODEL = "BridgeTower/bridgetower-large-itm-mlm-itc";

export interface ModelOptions {
  /** Hub id or folder, or a loaded BridgeTowerModel with the ITC head (shared, not disposed by the collection). */
  model?: string | BridgeTowerModel;
  /** With a loaded model: its processor (else loaded from the model's folder). */
  processor?: BridgeTowerProcessor;
  dtype?: "fp32" | "int8";
  threads?: number;
  /** Hub revision, cache and network options for a Hub id. */
  hub?: HubOptions;
  onWarning?: (message: string) => void;
}

async function isFolder(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** A Hub cache snapshot (`models--org--name/snapshots/<commit>`) is the Hub id at that commit; any other folder is itself. */
export async function identify(dir: string): Promise<{ model: string; commit: string | null }> {
  const real = await realpath(dir);
  const repo = basename(dirname(dirname(real)));
  if (/^[0-9a-f]{40}$/.test(basename(real)) && basename(dirname(real)) === "snapshots" && repo.startsWith("models--"))
    return { model: repo.slice("models--".length).replace("--", "/"), commit: basename(real) };
  return { model: real, commit: null };
}

const describe = (r: { model: string; commit: string | null; dtype: string }) =>
  `${r.model}${r.commit ? ` at commit ${r.commit.slice(0, 12)}` : ""} (${r.dtype})`;

/** Throws ModelMismatchError unless `mine` is the model `recorded` names. */
export function checkSame(uri: string, recorded: ModelRecord, mine: ModelRecord): void {
  if (recorded.model === mine.model && recorded.commit === mine.commit && recorded.dtype === mine.dtype && recorded.dim === mine.dim) return;
  throw new ModelMismatchError(
    uri,
    `was indexed with ${describe(recorded)}, not ${describe(mine)}: embeddings of different models (or dtypes) are not comparable; ` +
      "search it with its own model (leave out --model/--dtype) or index into another --db",
  );
}

interface Loaded {
  model: BridgeTowerModel;
  itm: boolean;
  /** Calls running on it; a replaced model is disposed when the last one ends. */
  users: number;
  retired: boolean;
}

export class CollectionModel {
  private current?: Promise<Loaded>;
  private processorLoad?: Promise<BridgeTowerProcessor>;
  /** Loads and swaps happen one at a time. */
  private lock: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string, readonly record: ModelRecord, private readonly options: ModelOptions) {}

  /** Resolves the options (default: what `recorded` names) and refuses any other model than the recorded one. */
  static async resolve(uri: string, options: ModelOptions, recorded?: ModelRecord): Promise<CollectionModel> {
    const given = options.model;
    let dir: string;
    let fromHub = false;
    let dtype = options.dtype;
    if (given instanceof BridgeTowerModel) {
      dir = given.path;
      const own = given.engine.options.dtype ?? "fp32";
      if (dtype && dtype !== own) throw new InputError("dtype", `is "${dtype}" but the given model was loaded as ${own}`);
      dtype = own;
    } else if (given !== undefined || !recorded) {
      const id = given ?? DEFAULT_COLLECTION_MODEL;
      // For a Hub id only config.json first: a refused model is not downloaded.
      fromHub = !(await isFolder(id));
      dir = fromHub ? dirname((await hubFile(id, "config.json", options.hub))!) : id;
    } else if (recorded.commit === null) {
      if (!(await isFolder(recorded.model)))
        throw new ModelMismatchError(uri, `was indexed with the model folder ${recorded.model}, which is gone: pass --model`);
      dir = recorded.model;
    } else {
      dir = (await resolveModel(recorded.model, { ...options.hub, revision: recorded.commit })).dir;
    }
    const { model, commit } = await identify(dir);
    dtype ??= recorded?.dtype ?? "fp32";
    const config = await loadConfig(dir);
    if (config.contrastiveHiddenSize === undefined)
      throw new UnsupportedCheckpointError(model, `has no contrastive (ITC) heads, which search needs: use ${DEFAULT_COLLECTION_MODEL} or another ITC checkpoint`);
    const record: ModelRecord = { model, commit, dtype, dim: config.contrastiveHiddenSize };
    if (recorded) checkSame(uri, recorded, record);
    if (fromHub) dir = (await resolveModel(model, { ...options.hub, revision: commit ?? undefined })).dir;
    return new CollectionModel(dir, record, options);
  }

  /** The processor (loaded once). */
  processor(): Promise<BridgeTowerProcessor> {
    const given = this.options.model instanceof BridgeTowerModel ? this.options.processor : undefined;
    this.processorLoad ??= given ? Promise.resolve(given) : BridgeTowerProcessor.fromPretrained(this.dir);
    this.processorLoad.catch(() => (this.processorLoad = undefined));
    return this.processorLoad;
  }

  /**
   * Runs `f` with the model: its ITC head, and ITM when `itm`. Loaded on first use with the heads asked for; when ITM
   * is first needed later, a model with both heads replaces it, and the old one is disposed once calls on it end.
   */
  async use<T>(itm: boolean, f: (model: BridgeTowerModel) => Promise<T>): Promise<T> {
    const step = this.lock.then(() => this.acquire(itm));
    this.lock = step.catch(() => undefined);
    const entry = await step;
    try {
      return await f(entry.model);
    } finally {
      await this.release(entry);
    }
  }

  private async acquire(itm: boolean): Promise<Loaded> {
    const given = this.options.model;
    if (given instanceof BridgeTowerModel) return { model: given, itm: true, users: 0, retired: false };
    let entry = await this.current?.catch(() => undefined);
    if (!entry || (itm && !entry.itm)) {
      if (entry) {
        entry.retired = true;
        if (entry.users === 0) await entry.model.dispose();
      }
      const heads: ("itc" | "itm")[] = itm ? ["itc", "itm"] : ["itc"];
      const load = BridgeTowerModel.fromPretrained(this.dir, { heads, dtype: this.record.dtype, threads: this.options.threads, onWarning: this.options.onWarning });
      this.current = load.then((model) => ({ model, itm, users: 0, retired: false }));
      entry = await this.current;
    }
    entry.users++;
    return entry;
  }

  private async release(entry: Loaded): Promise<void> {
    entry.users--;
    if (entry.retired && entry.users === 0 && !(this.options.model instanceof BridgeTowerModel)) await entry.model.dispose();
  }

  /** Longest text the model takes, in tokens (longer captions and queries are truncated). */
  maxTokens(model: BridgeTowerModel): number {
    return maxTextTokens(model.config.textConfig);
  }

  /** Frees the model (a given one is left to its owner); calls still running finish first. */
  async dispose(): Promise<void> {
    await this.lock;
    const entry = await this.current?.catch(() => undefined);
    this.current = undefined;
    if (entry && !entry.retired) {
      entry.retired = true;
      if (entry.users === 0) await entry.model.dispose();
    }
  }
}
