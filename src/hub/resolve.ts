/** A model folder from a local path or a Hub id, with the files a BridgeTower model needs. */
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { HubError } from "../errors.js";
import { exists } from "./cache.js";
import { checkFileName, getFile, type Session } from "./file.js";
import { settings, type HubOptions } from "./options.js";

/** Optional files fetched beside config.json and the weights unless `files` says otherwise. */
export const DEFAULT_FILES = [
  "preprocessor_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "vocab.json",
  "merges.txt",
];

/** In the order transformers prefers them. */
const WEIGHTS = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"];

export function isLocalFolder(idOrPath: string): boolean {
  try {
    return statSync(idOrPath).isDirectory();
  } catch {
    return false;
  }
}

function notAFolder(idOrPath: string): void {
  try {
    if (statSync(idOrPath).isFile()) throw new HubError(idOrPath, "is a file, not a model folder or Hub repo id");
  } catch (e) {
    if (e instanceof HubError) throw e;
  }
}

/** Returns the local path of `file`, downloading into the cache when needed; undefined when an `optional` file is absent. */
export async function hubFile(
  repoId: string,
  file: string,
  options: HubOptions & { optional?: boolean } = {},
): Promise<string | undefined> {
  if (isLocalFolder(repoId)) {
    checkFileName(repoId, file);
    const p = join(repoId, ...file.split("/"));
    if (await exists(p)) return p;
    if (options.optional) return undefined;
    throw new HubError(repoId, `the folder has no file "${file}"`);
  }
  notAFolder(repoId);
  const got = await getFile(repoId, file, settings(options), options.optional ?? false);
  return "path" in got ? got.path : undefined;
}

async function shardNames(repoId: string, index: string): Promise<string[]> {
  let map: unknown;
  try {
    map = (JSON.parse(await readFile(index, "utf8")) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new HubError(repoId, `model.safetensors.index.json is not valid JSON (${(e as Error).message})`);
  }
  if (typeof map !== "object" || map === null) {
    throw new HubError(repoId, "model.safetensors.index.json has no weight_map");
  }
  const names = [...new Set(Object.values(map))];
  if (names.some((n) => typeof n !== "string")) {
    throw new HubError(repoId, "model.safetensors.index.json has a weight_map entry that is not a file name");
  }
  return names as string[];
}

/**
 * Resolves a model folder: a local folder is returned as is; a Hub id gets config.json, the optional files
 * (`files`, default DEFAULT_FILES, skipped when the repo lacks them) and the weights (model.safetensors, else
 * the sharded model.safetensors.index.json and its shards, else pytorch_model.bin), all from one commit.
 * `dir` is the snapshot folder; `weights` the weights file (the index file when sharded).
 */
export async function resolveModel(
  idOrPath: string,
  options: HubOptions & { files?: string[] } = {},
): Promise<{ dir: string; weights: string; fromHub: boolean }> {
  if (isLocalFolder(idOrPath)) {
    for (const w of WEIGHTS) {
      const p = join(idOrPath, w);
      if (await exists(p)) return { dir: idOrPath, weights: p, fromHub: false };
    }
    throw new HubError(idOrPath, `the folder has no weights: expected one of ${WEIGHTS.join(", ")}`);
  }
  notAFolder(idOrPath);
  const base = settings(options);
  const session: Session = {};
  const config = await getFile(idOrPath, "config.json", base, false, session);
  if (!("path" in config)) throw new HubError(idOrPath, "config.json is missing");
  // The rest comes from the same commit, even if the branch moves meanwhile.
  const s = { ...base, revision: config.commit };
  for (const f of options.files ?? DEFAULT_FILES) await getFile(idOrPath, f, s, true, session);
  for (const w of WEIGHTS) {
    const got = await getFile(idOrPath, w, s, true, session);
    if (!("path" in got)) continue;
    if (w.endsWith(".index.json")) {
      for (const shard of await shardNames(idOrPath, got.path)) await getFile(idOrPath, shard, s, false, session);
    }
    return { dir: dirname(config.path), weights: got.path, fromHub: true };
  }
  throw new HubError(
    idOrPath,
    `the repository has no weights at revision "${base.revision}": expected one of ${WEIGHTS.join(", ")}`,
  );
}
