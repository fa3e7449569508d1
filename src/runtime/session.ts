import { availableParallelism } from "node:os";
import ort from "onnxruntime-node";
import type { Graph } from "../onnx/graph.js";

export interface RuntimeOptions {
  /** Intra-op threads for onnxruntime (default: all cores). */
  threads?: number;
}

export const OrtTensorCtor = ort.Tensor;

/** The onnxruntime-node version (part of every derived cache file's key). */
export function runtimeVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

/**
 * Creates an onnxruntime session for a graph whose weights are external data in `dataDir`
 * (the folder of the checkpoint's real file, so Hugging Face cache symlinks work).
 */
export async function createSession(graph: Graph, dataDir: string, options: RuntimeOptions = {}): Promise<ort.InferenceSession> {
  const threads = options.threads && options.threads > 0 ? options.threads : availableParallelism();
  return ort.InferenceSession.create(graph.toBytes(), {
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    extra: {
      session: {
        model_external_initializers_file_folder_path: dataDir,
        // Each session has its own thread pool, and a model runs three sessions in a row: without this, the pool
        // of the part that just finished keeps spinning and slows the next part (the text tower by ~45% after
        // the vision tower, ~3% on a whole pair, measured).
        force_spinning_stop: "1",
        // Weights stay file-backed pages (shared by the parts, heads and processes) instead of a packed copy per
        // session: creating the sessions of the full-size model takes ~0.5 s instead of ~6.5 s, for a few percent
        // more per call on short texts (MLAS packs each weight inside the call). Measured in BENCHMARKS.md.
        disable_prepacking: "1",
      },
    },
  });
}
