/**
 * One loaded checkpoint: its weights, config and onnxruntime sessions, shared by every head that runs on it. The
 * towers and the cross-modal trunk are one session each whatever heads are loaded; each head adds a small session
 * of its own (the last cross layer at the rows it reads, the poolers, the head), so serving ITM, MLM and ITC from one
 * checkpoint holds one copy of the weights.
 */
import type ort from "onnxruntime-node";
import { dirname } from "node:path";
import { InputError } from "../errors.js";
import { hubFile, isLocalFolder, resolveModel, type HubOptions } from "../hub/index.js";
import { stderrProgress } from "../hub/progress.js";
import { openCheckpoint } from "../io/checkpoint.js";
import type { Graph } from "../onnx/graph.js";
import { createSession, OrtTensorCtor, type RuntimeOptions } from "../runtime/session.js";
import { loadConfig, type BridgeTowerConfig } from "./config.js";
import type { Head } from "./parts.js";
import { availableHeads, buildPart, checkRequest, checkWeights, requireHead, startParts, type Part } from "./plan.js";
import { defaultCacheRoot } from "./quantize.js";
import type { Tensor } from "./tensor.js";
import { WeightStore } from "./weights.js";

export interface LoadOptions extends RuntimeOptions, HubOptions {
  /**
   * "fp32" (default), or "int8": linear layers run on onnxruntime's integer kernels with weights quantized per
   * output channel (written once to a cache file under `int8CacheDir`), activations quantized per call.
   */
  dtype?: "fp32" | "int8";
  /** Where int8 weight files are kept (default $BRIDGETOWER_CACHE or ~/.cache/bridgetower). */
  int8CacheDir?: string;
  /** Called with warnings such as unexpected checkpoint keys or a rebuilt cache file (default: console.warn). */
  onWarning?: (message: string) => void;
}

export type Outputs = Record<string, Tensor>;
export type { Part, TaskHead } from "./plan.js";
export { TASK_HEADS } from "./plan.js";

export class Engine {
  private sessions = new Map<string, Promise<ort.InferenceSession>>();

  private constructor(
    readonly config: BridgeTowerConfig,
    readonly store: WeightStore,
    /** The heads this engine runs ("none" = features and pooler only). */
    readonly heads: Head[],
    readonly path: string,
    readonly options: LoadOptions,
  ) {}

  /**
   * Loads a folder or Hub id for `heads`; "available" = every task head the checkpoint holds (at least one).
   * `who` names the class in errors.
   */
  static async load(idOrDir: string, heads: Head[] | "available", options: LoadOptions, who: string): Promise<Engine> {
    // The config is checked before the (large) weights are looked for or downloaded.
    const config = await loadConfig(isLocalFolder(idOrDir) ? idOrDir : dirname((await hubFile(idOrDir, "config.json", options))!));
    checkRequest(idOrDir, config, heads, options.dtype);
    const { dir, weights } = await resolveModel(idOrDir, options);
    const store = await WeightStore.open(await openCheckpoint(weights));
    const chosen = heads === "available" ? availableHeads(store.entries.keys(), config, dir) : heads;
    const engine = new Engine(config, store, chosen, dir, options);
    try {
      if (options.dtype === "int8") store.enableInt8(options.int8CacheDir ?? defaultCacheRoot());
      const parts = startParts(config, chosen);
      const graphs = parts.map((p) => buildPart(store, config, p, false));
      checkWeights(store, config, chosen, dir, who, (m) => engine.warn(m));
      // int8: written on first use only (about 17 s at the large size, with progress like a download); otherwise its
      // block check (~1 GB read) runs in a worker while the sessions are created, and is awaited before any use.
      const report = options.onProgress ?? stderrProgress(`${dir}: int8 weights`, { doing: "writing", done: "wrote" });
      const progress = (done: number, total: number) => report({ file: "weights-int8.bin", downloaded: done, total });
      const { verified } = store.int8 ? await store.openInt8(progress, (m) => engine.warn(m)) : { verified: undefined };
      await engine.startSessions(parts, graphs);
      const problem = await verified;
      if (problem) {
        engine.warn(`${store.int8!.path}: ${problem}; rebuilding it`);
        await engine.releaseSessions();
        await store.rebuildInt8(progress);
        await engine.startSessions(parts, graphs);
      }
    } catch (e) {
      await engine.dispose();
      throw e;
    }
    return engine;
  }

  /** Sessions are created once, up front, so the first call is not slowed by them. */
  private async startSessions(parts: Part[], graphs: Graph[]): Promise<void> {
    for (const [i, p] of parts.entries()) this.session(p, false, graphs[i]);
    await Promise.all(this.sessions.values());
  }

  private async releaseSessions(): Promise<void> {
    for (const s of this.sessions.values()) await s.then((x) => x.release()).catch(() => {});
    this.sessions.clear();
  }

  warn(message: string): void {
    (this.options.onWarning ?? console.warn)(message);
  }

  /** Throws the error a head class gives for a checkpoint without that head. */
  requireHead(head: Head): void {
    requireHead(this.path, this.heads, head);
  }

  private session(part: Part, hidden: boolean, graph?: Graph): Promise<ort.InferenceSession> {
    const key = `${part}:${hidden}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = createSession(graph ?? buildPart(this.store, this.config, part, hidden), this.store.dataDir, this.options);
      this.sessions.set(key, s);
    }
    return s;
  }

  /** Runs one part; `feeds` may hold more tensors than the part reads. */
  async run(part: Part, hidden: boolean, feeds: Record<string, Tensor>): Promise<Outputs> {
    const s = await this.session(part, hidden);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of s.inputNames) {
      const t = feeds[name];
      if (!t) throw new InputError(name, "missing input");
      if (t.data.length !== t.dims.reduce((a, b) => a * b, 1))
        throw new InputError(name, `has ${t.data.length} values but shape [${t.dims.join(", ")}]`);
      ortFeeds[name] = new OrtTensorCtor(t.data instanceof BigInt64Array ? "int64" : "float32", t.data, t.dims);
    }
    return (await s.run(ortFeeds)) as unknown as Outputs;
  }

  /** The trained `logit_scale` parameter (raw, before exp). */
  logitScale(): Promise<number> {
    // Read once: every ITC run returns it, and a server runs ITC batches on its hot path.
    this.logitScaleRead ??= this.store.readFloat32("logit_scale").then((x) => x[0]);
    return this.logitScaleRead;
  }

  private logitScaleRead?: Promise<number>;

  async dispose(): Promise<void> {
    await this.releaseSessions();
    await this.store.close();
  }
}
