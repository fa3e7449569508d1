/** The files of an export folder: weights, graphs, the user's preprocessing files and `bridgetower-export.json`. */
import { readFileSync } from "node:fs";
import { copyFile, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { onnx as OnnxTypes } from "onnx-proto";
import { DEFAULT_FILES } from "../hub/index.js";
import { linkOrCopy } from "./folder.js";
import type { ExportHead, GraphPlan } from "./graphs.js";
import { customOperators, finishModel, opsets } from "./proto.js";
import { partsReadme } from "./readme.js";

export const MANIFEST = "bridgetower-export.json";

export interface GraphInfo {
  file: string;
  /** A self-contained `{head}.onnx` (true) or one part of the chain (false). */
  whole: boolean;
  inputs: Record<string, (number | string)[]>;
  outputs: Record<string, (number | string)[]>;
  custom_operators: string[];
}

export interface ExportManifest {
  format: "bridgetower-onnx-export/1";
  source: { hub: string; revision: string; commit: string } | { folder: string };
  dtype: "fp32" | "int8";
  heads: ExportHead[];
  graphs: GraphInfo[];
  /** External-data files the graphs read, in this folder. */
  weights: string[];
  ir_version: number;
  opsets: Record<string, number>;
  /** Operators outside the default ONNX domain: these graphs run on onnxruntime (not on every ONNX engine). */
  custom_operators: string[];
  onnxruntime_tested: string;
  bridgetower_version: string;
  /** Every other file of the folder, with its size in bytes. */
  files: Record<string, number>;
}

/** Links (or copies) the weight files into the folder under their exported names. */
export async function linkWeights(files: { path: string; to: string }[], dir: string, step: (m: string) => void): Promise<void> {
  for (const f of files) {
    const how = await linkOrCopy(f.path, join(dir, f.to));
    step(`${how} ${f.to} (${((await stat(f.path)).size / 2 ** 20).toFixed(1)} MiB)`);
  }
}

const dims = (v: OnnxTypes.IValueInfoProto): (number | string)[] =>
  (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));

/** Writes each graph with its weights pointing at `locations`; returns what the manifest says of them. */
export async function writeGraphs(plans: GraphPlan[], locations: Map<string, string>, dir: string, step: (m: string) => void) {
  const infos: (GraphInfo & { model: OnnxTypes.ModelProto })[] = [];
  for (const p of plans) {
    const model = p.graph.toModel();
    // Whole graphs take a text batch and an image batch: equal, or one of them 1 (paired with every item of the other).
    const rename = p.whole ? { input_ids: { batch: "text_batch" }, attention_mask: { batch: "text_batch" }, pixel_values: { batch: "image_batch" } } : undefined;
    const bytes = finishModel(model, { outputs: p.outputs, locations, dims: rename });
    await writeFile(join(dir, p.file), bytes);
    const g = model.graph!;
    infos.push({
      file: p.file, whole: p.whole, model,
      inputs: Object.fromEntries((g.input ?? []).map((v) => [v.name!, dims(v)])),
      outputs: Object.fromEntries((g.output ?? []).map((v) => [v.name!, dims(v)])),
      custom_operators: customOperators(model),
    });
    step(`wrote ${p.file} (${(bytes.length / 2 ** 10).toFixed(0)} KiB)`);
  }
  return infos;
}

/** config.json, preprocessor_config.json and the tokenizer files the source has (what the processor loads). */
export async function copyUserFiles(src: string, dir: string): Promise<string[]> {
  const copied: string[] = [];
  for (const f of ["config.json", ...DEFAULT_FILES]) {
    const ok = await copyFile(join(src, f), join(dir, f)).then(() => true, (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return false;
      throw e;
    });
    if (ok) copied.push(f);
  }
  return copied;
}

const require = createRequire(import.meta.url);
const packageVersion = (): string => JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version;

export async function writeManifest(
  dir: string,
  m: {
    source: ExportManifest["source"]; dtype: ExportManifest["dtype"]; heads: ExportHead[]; weights: string[]; copied: string[]; parts: boolean;
    graphs: Awaited<ReturnType<typeof writeGraphs>>;
  },
): Promise<ExportManifest> {
  const first = m.graphs[0].model;
  const graphs: GraphInfo[] = m.graphs.map(({ model: _, ...g }) => g);
  const manifest: ExportManifest = {
    format: "bridgetower-onnx-export/1",
    source: m.source,
    dtype: m.dtype,
    heads: m.heads,
    graphs,
    weights: m.weights,
    ir_version: Number(first.irVersion),
    opsets: opsets(first),
    custom_operators: [...new Set(graphs.flatMap((g) => g.custom_operators))].sort(),
    onnxruntime_tested: `onnxruntime-node ${require("onnxruntime-node/package.json").version}`,
    bridgetower_version: packageVersion(),
    files: {},
  };
  if (m.parts) await writeFile(join(dir, "README.md"), partsReadme(manifest));
  const names = [...m.weights, ...graphs.map((g) => g.file), ...m.copied, ...(m.parts ? ["README.md"] : [])];
  for (const f of names) manifest.files[f] = (await stat(join(dir, f))).size;
  await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
