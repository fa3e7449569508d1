import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { CheckpointFormatError } from "../errors.js";
import { SafetensorsFile } from "./safetensors.js";
import type { TensorSource } from "./tensors.js";
import { TorchBinFile } from "./torchbin.js";

/** Opens a checkpoint file (or a sharded safetensors index) as tensor sources; the hub resolver picks which file. */
export async function openCheckpoint(path: string): Promise<TensorSource[]> {
  if (path.endsWith(".index.json")) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(await readFile(path, "utf8"));
    } catch (e) {
      throw new CheckpointFormatError(path, `cannot read the shard index (${(e as Error).message})`);
    }
    if (!index.weight_map || typeof index.weight_map !== "object") throw new CheckpointFormatError(path, "the shard index has no weight_map");
    const shards = [...new Set(Object.values(index.weight_map))];
    const sources: TensorSource[] = [];
    try {
      for (const s of shards) {
        const p = resolve(dirname(path), s);
        if (dirname(p) !== resolve(dirname(path))) throw new CheckpointFormatError(path, `shard "${s}" is outside the model folder`);
        sources.push(await SafetensorsFile.open(p));
      }
    } catch (e) {
      await Promise.all(sources.map((s) => s.close()));
      throw e;
    }
    return sources;
  }
  if (path.endsWith(".bin")) return [await TorchBinFile.open(path)];
  return [await SafetensorsFile.open(path)];
}
