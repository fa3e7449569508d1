/**
 * A remote checkpoint's tensor list: the safetensors header read by two small Range requests (length, then JSON)
 * and checked by the same code as a local file (io/safetensors-header.ts). Tensors are fetched later, by range.
 */
import { HubError } from "../errors.js";
import { checkSize, headerLength, parseHeader } from "../io/safetensors-header.js";
import type { TensorEntry } from "../io/tensors.js";
import { getRange, getText, type Source } from "./http.js";

export interface RemoteWeights {
  /** By checkpoint name; `file` is the file's name in the model folder, `offset` absolute in it. */
  entries: Map<string, TensorEntry>;
  /** ETag (or Last-Modified) and size of each file: what a cache built from them is checked against. */
  version: string;
}

async function openOne(src: Source, file: string, optional: boolean): Promise<RemoteWeights | undefined> {
  const first = optional ? await getRange(src, file, 0, 8, undefined, true) : await getRange(src, file, 0, 8);
  if (!first) return undefined;
  const url = src.url(file);
  const size = first.total ?? Number.MAX_SAFE_INTEGER; // unknown when the server hides Content-Range
  checkSize(url, size);
  const header = await getRange(src, file, 8, headerLength(url, size, first.bytes));
  const { entries } = parseHeader(url, size, header.bytes);
  for (const [name, e] of entries) entries.set(name, { ...e, file });
  return { entries, version: `${file}:${first.version ?? ""}:${first.total ?? ""}` };
}

/** model.safetensors, else the shards named by model.safetensors.index.json (the order transformers prefers). */
export async function openRemoteWeights(src: Source): Promise<RemoteWeights> {
  const single = await openOne(src, "model.safetensors", true);
  if (single) return single;
  const index = await getText(src, "model.safetensors.index.json", true);
  if (index === undefined)
    throw new HubError(src.label, "has no model.safetensors (nor model.safetensors.index.json): the page reads safetensors weights only (`bridgetower convert` turns a pytorch_model.bin into one)");
  let map: unknown;
  try {
    map = (JSON.parse(index) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new HubError(src.label, `model.safetensors.index.json is not valid JSON (${(e as Error).message})`);
  }
  if (typeof map !== "object" || map === null) throw new HubError(src.label, "model.safetensors.index.json has no weight_map");
  const shards = [...new Set(Object.values(map))];
  if (shards.some((n) => typeof n !== "string")) throw new HubError(src.label, "model.safetensors.index.json has a weight_map entry that is not a file name");
  const entries = new Map<string, TensorEntry>();
  const versions: string[] = [];
  for (const shard of shards as string[]) {
    const w = (await openOne(src, shard, false))!;
    for (const [k, v] of w.entries) entries.set(k, v);
    versions.push(w.version);
  }
  return { entries, version: versions.join("|") };
}
