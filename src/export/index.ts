/**
 * `exportModel`: a checkpoint as self-contained ONNX graphs for any onnxruntime (Python, C#, Java, Rust, Triton, web),
 * one per head, with the weights as external data beside them and the files a user needs to preprocess inputs.
 */
import { realpathSync } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { InputError, UnsupportedCheckpointError } from "../errors.js";
import { hubFile, isLocalFolder, resolveModel, type HubOptions } from "../hub/index.js";
import { stderrProgress } from "../hub/progress.js";
import { openCheckpoint } from "../io/checkpoint.js";
import { contrastiveUnsupportedReason, loadConfig, type BridgeTowerConfig } from "../model/config.js";
import { defaultCacheRoot, Int8WeightFile } from "../model/quantize.js";
import { WeightStore } from "../model/weights.js";
import type { TensorSource } from "../io/tensors.js";
import { checkOutDir, publish, stagingDir } from "./folder.js";
import { EXPORT_HEADS, partGraphs, wholeGraph, type ExportHead, type GraphPlan } from "./graphs.js";
import { copyUserFiles, linkWeights, MANIFEST, writeGraphs, writeManifest, type ExportManifest } from "./write.js";

export type { ExportHead } from "./graphs.js";
export type { ExportManifest, GraphInfo } from "./write.js";

export interface ExportOptions extends HubOptions {
  /** The folder to write: created, or replaced with `force`; refused when it is not empty otherwise. */
  out: string;
  /** "fp32" (default: the checkpoint's weights as they are) or "int8" (the quantized graphs of `dtype: "int8"`). */
  dtype?: "fp32" | "int8";
  /** Heads to export (default "available": every head the checkpoint has). */
  heads?: ExportHead[] | "available";
  /** Also write the separately runnable parts (text, vision, trunk, head_*) and a README on chaining them. */
  parts?: boolean;
  /** Replace a non-empty `out`. */
  force?: boolean;
  /** Where int8 weight files are cached (default $BRIDGETOWER_CACHE or ~/.cache/bridgetower), as for loading. */
  int8CacheDir?: string;
  /** One line per step ("building graphs", "wrote itm.onnx", ...). Byte progress goes to `onProgress`. */
  onStep?: (message: string) => void;
  onWarning?: (message: string) => void;
}

export interface ExportResult {
  out: string;
  heads: ExportHead[];
  /** Files written, relative to `out`. */
  files: string[];
  manifest: ExportManifest;
}

/** Writes `options.out` from a model folder or Hub id. Nothing is left under `out` when it fails. */
export async function exportModel(idOrDir: string, options: ExportOptions): Promise<ExportResult> {
  const step = options.onStep ?? (() => {});
  const dtype = options.dtype ?? "fp32";
  if (dtype !== "fp32" && dtype !== "int8") throw new InputError("dtype", `must be "fp32" or "int8", got "${dtype}"`);
  if (typeof options.out !== "string" || options.out === "") throw new InputError("out", "an output folder is required");
  const asked = options.heads ?? "available";
  if (asked !== "available") checkHeadNames(asked);
  const local = isLocalFolder(idOrDir);
  await checkOutDir(options.out, options.force ?? false, local ? [idOrDir] : []);
  step(`reading ${idOrDir}`);
  // The config is checked before the (large) weights are looked for or downloaded.
  const config = await loadConfig(local ? idOrDir : dirname((await hubFile(idOrDir, "config.json", options))!));
  const { dir, weights, fromHub } = await resolveModel(idOrDir, options);
  const sources = await openCheckpoint(weights);
  const store = await WeightStore.open(sources).catch(async (e) => {
    await Promise.all(sources.map((s) => s.close()));
    throw e;
  });
  try {
    const heads = chooseHeads(sources, config, asked, dir);
    const why = contrastiveUnsupportedReason(config);
    if (asked === "available" && why) step(`no itc graph: ${why}`);
    const cacheRoot = options.int8CacheDir ?? defaultCacheRoot();
    await checkOutDir(options.out, options.force ?? false, [dir, ...sources.map((s) => s.path), ...(dtype === "int8" ? [cacheRoot] : [])]);
    // fp32 locations are relative to the checkpoint's real folder; read before int8 mode changes dataDir.
    const checkpointFiles = sources.map((s) => relative(store.dataDir, realpathSync(s.path)).split(sep).join("/"));
    // Named from the path the source was opened by: a Hugging Face cache blob has no extension.
    const torchZip = sources.some((s) => s.path.endsWith(".bin"));
    if (dtype === "int8") store.enableInt8(cacheRoot);
    step(`building graphs for ${heads.join(", ")} (${dtype})`);
    // The parts first, in the engine's order: an int8 export then plans the library's int8 file for these heads.
    const parts = partGraphs(store, config, heads);
    const wholes = heads.map((h) => wholeGraph(store, config, h));
    store.checkMissing("bridgetower export");
    const plans: GraphPlan[] = [...wholes, ...(options.parts ? parts : [])];

    const staging = await stagingDir(options.out);
    try {
      let weightFiles: { from: string; to: string }[];
      if (store.int8) {
        const report = options.onProgress ?? stderrProgress(`${dir}: int8 weights`, { doing: "writing", done: "wrote" });
        await store.ensureInt8((done, total) => report({ file: Int8WeightFile.FILE, downloaded: done, total }), options.onWarning ?? console.warn);
        weightFiles = [{ from: Int8WeightFile.FILE, to: Int8WeightFile.FILE }];
      } else {
        weightFiles = checkpointFiles.map((f, i) => ({ from: f, to: exportedWeightName(torchZip, i, checkpointFiles.length) }));
      }
      const weightPaths = weightFiles.map((w) => ({ ...w, path: join(store.dataDir, ...w.from.split("/")) }));
      await linkWeights(weightPaths, staging, step);
      const locations = new Map(weightFiles.map((w) => [w.from, w.to]));
      const graphs = await writeGraphs(plans, locations, staging, step);
      const copied = await copyUserFiles(dir, staging);
      const source = fromHub
        ? { hub: idOrDir, revision: options.revision ?? "main", commit: basename(dir) }
        : { folder: resolve(dir) };
      const manifest = await writeManifest(staging, { source, dtype, heads, graphs, weights: weightFiles.map((w) => w.to), copied, parts: !!options.parts });
      step(`moving into ${options.out}`);
      await publish(staging, options.out, options.force ?? false);
      return { out: resolve(options.out), heads, files: [...Object.keys(manifest.files), MANIFEST], manifest };
    } catch (e) {
      await rmQuiet(staging);
      throw e;
    }
  } finally {
    await store.close();
  }
}

async function rmQuiet(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true }).catch(() => {});
}

/** weights.safetensors (or weights.bin for a PyTorch zip); shards keep their numbering. */
function exportedWeightName(torchZip: boolean, i: number, n: number): string {
  const ext = torchZip ? "bin" : "safetensors";
  return n === 1 ? `weights.${ext}` : `weights-${String(i + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.${ext}`;
}

function checkHeadNames(heads: unknown): void {
  if (!Array.isArray(heads) || heads.length === 0) throw new InputError("heads", `must name at least one of ${EXPORT_HEADS.join(", ")} (or be "available")`);
  for (const h of heads) if (!EXPORT_HEADS.includes(h)) throw new InputError("heads", `unknown head "${h}": expected ${EXPORT_HEADS.join(", ")}`);
}

/**
 * A head is in the checkpoint when every parameter of its own (outside the shared backbone) is: found by building
 * its graph against the checkpoint's names, so the rule cannot drift from what the graphs read.
 */
function headMissing(sources: TensorSource[], c: BridgeTowerConfig, head: ExportHead): string[] {
  const probe = new WeightStore(sources);
  wholeGraph(probe, c, head);
  return probe.missing.filter((m) => !m.startsWith("bridgetower."));
}

function chooseHeads(sources: TensorSource[], c: BridgeTowerConfig, asked: ExportHead[] | "available", dir: string): ExportHead[] {
  const why = contrastiveUnsupportedReason(c);
  if (asked === "available") {
    const heads = EXPORT_HEADS.filter((h) => (h !== "itc" || !why) && headMissing(sources, c, h).length === 0);
    if (heads.length === 0) throw new UnsupportedCheckpointError(dir, `this checkpoint has none of the ${EXPORT_HEADS.join(", ")} heads`);
    return heads;
  }
  const heads = EXPORT_HEADS.filter((h) => asked.includes(h));
  for (const h of heads) {
    if (h === "itc" && why) throw new UnsupportedCheckpointError(dir, `cannot export the itc head: ${why}`);
    const missing = headMissing(sources, c, h);
    if (missing.length > 0)
      throw new UnsupportedCheckpointError(dir, `this checkpoint has no ${h} head (missing ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""})`);
  }
  return heads;
}
