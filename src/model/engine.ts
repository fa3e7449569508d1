/**
 * One loaded checkpoint: its weights, config and onnxruntime sessions, shared by every head that runs on it. The
 * towers and the cross-modal trunk are one session each whatever heads are loaded; each head adds a small session
 * of its own (the last cross layer at the rows it reads, the poolers, the head), so serving ITM, MLM and ITC from one
 * checkpoint holds one copy of the weights.
 */
import type ort from "onnxruntime-node";
import { dirname } from "node:path";
import { InputError, UnsupportedCheckpointError } from "../errors.js";
import { hubFile, isLocalFolder, resolveModel, type HubOptions } from "../hub/index.js";
import { stderrProgress } from "../hub/progress.js";
import { openCheckpoint } from "../io/checkpoint.js";
import type { Graph } from "../onnx/graph.js";
import { createSession, OrtTensorCtor, type RuntimeOptions } from "../runtime/session.js";
import { contrastiveUnsupportedReason, loadConfig, type BridgeTowerConfig } from "./config.js";
import {
  buildContrastiveImageHead, buildContrastiveTextHead, buildHeadPart, buildTextPart, buildTrunkPart, buildVisionPart, hasTrunk,
  parameterShapes, type Head,
} from "./parts.js";
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
export type TaskHead = Exclude<Head, "none">;
export type Part = "text" | "vision" | "trunk" | `head:${Head}` | "itc_text" | "itc_image";

export const TASK_HEADS: TaskHead[] = ["itm", "mlm", "itc"];
const HEAD_KEYS: Record<TaskHead, string[]> = {
  itm: ["itm_score."],
  mlm: ["mlm_score."],
  itc: ["itc_text_head.", "itc_image_head.", "itc_cross_modal_head.", "logit_scale"],
};
const HEAD_NAMES: Record<TaskHead, string> = {
  itm: "image-text matching (ITM) head `itm_score`, found in the *-itm-mlm checkpoints",
  mlm: "masked-language-modeling (MLM) head `mlm_score`, found in the *-itm-mlm checkpoints",
  itc: "contrastive (ITC) heads `itc_*_head` and `logit_scale`, found in BridgeTower/bridgetower-large-itm-mlm-itc",
};
/** Checkpoint keys that exist upstream but no forward pass reads. */
const KNOWN_UNUSED = [
  /^bridgetower\.text_model\.pooler\./,
  /\.ln_separate\./,
  /link_tower\.(LayerNorm|beta|scaled_factor)/,
  // vision blocks beyond the text depth (they exist but never run, as upstream)
  /^bridgetower\.vision_model\.visual\.transformer\.resblocks\.\d+\.(attn\.(in_proj_weight|in_proj_bias|out_proj\.(weight|bias))|ln_[12]\.(weight|bias)|mlp\.c_(fc|proj)\.(weight|bias))$/,
];

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
    if (options.dtype !== undefined && options.dtype !== "fp32" && options.dtype !== "int8")
      throw new InputError("dtype", `must be "fp32" or "int8", got "${options.dtype}"`);
    if (heads !== "available") checkHeadNames(heads);
    if (heads !== "available" && heads.includes("itc")) {
      const why = contrastiveUnsupportedReason(config);
      if (why) throw new UnsupportedCheckpointError(idOrDir, `cannot build BridgeTowerForContrastiveLearning: ${why}`);
    }
    const { dir, weights } = await resolveModel(idOrDir, options);
    const store = await WeightStore.open(await openCheckpoint(weights));
    const chosen = heads === "available" ? availableHeads(store, config, dir) : heads;
    const engine = new Engine(config, store, chosen, dir, options);
    try {
      if (options.dtype === "int8") store.enableInt8(options.int8CacheDir ?? defaultCacheRoot());
      const parts = engine.startParts();
      const graphs = parts.map((p) => engine.build(p, false));
      engine.checkWeights(who);
      if (store.int8) {
        // Written on first use only (about 17 s at the large size): report progress like a download.
        const report = options.onProgress ?? stderrProgress(`${dir}: int8 weights`, { doing: "writing", done: "wrote" });
        await store.writeInt8((done, total) => report({ file: "weights-int8.bin", downloaded: done, total }), options.onWarning ?? console.warn);
      }
      // Sessions are created once, up front, so the first call is not slowed by them.
      for (const [i, p] of parts.entries()) engine.session(p, false, graphs[i]);
      await Promise.all(engine.sessions.values());
    } catch (e) {
      await engine.dispose();
      throw e;
    }
    return engine;
  }

  /** The parts every call needs, created at load. */
  private startParts(): Part[] {
    const parts: Part[] = ["text", "vision"];
    if (hasTrunk(this.config)) parts.push("trunk");
    for (const h of this.heads) parts.push(`head:${h}`);
    if (this.heads.includes("itc")) parts.push("itc_text", "itc_image");
    return parts;
  }

  private build(part: Part, hidden: boolean): Graph {
    if (part === "text") return buildTextPart(this.store, this.config, hidden);
    if (part === "vision") return buildVisionPart(this.store, this.config, hidden);
    if (part === "trunk") return buildTrunkPart(this.store, this.config, hidden);
    if (part === "itc_text") return buildContrastiveTextHead(this.store, this.config);
    if (part === "itc_image") return buildContrastiveImageHead(this.store, this.config);
    return buildHeadPart(this.store, this.config, part.slice("head:".length) as Head, hidden);
  }

  private checkWeights(who: string): void {
    const missing = this.store.missing;
    for (const head of this.heads) {
      if (head === "none") continue;
      if (missing.length > 0 && missing.some((m) => HEAD_KEYS[head].some((p) => m.startsWith(p))))
        throw new UnsupportedCheckpointError(this.path, `this checkpoint has no ${HEAD_NAMES[head]}`);
    }
    this.store.checkMissing(who);
    // Unexpected = not a parameter of BridgeTower at all (as transformers reports them); other heads' keys and
    // parameters upstream holds but never reads (text pooler, extra vision blocks) are expected.
    const known = parameterShapes(this.config, ["itm", "mlm", ...(contrastiveUnsupportedReason(this.config) ? [] : ["itc" as const])]);
    const otherHeads = Object.values(HEAD_KEYS).flat();
    const unexpected = [...this.store.entries.keys()].filter(
      (n) => !known.has(n) && !KNOWN_UNUSED.some((r) => r.test(n)) && !otherHeads.some((p) => n.startsWith(p)),
    );
    if (unexpected.length > 0)
      this.warn(`${this.path}: ${unexpected.length} checkpoint tensor(s) not used by ${who}: ${unexpected.slice(0, 10).join(", ")}${unexpected.length > 10 ? ", …" : ""}`);
  }

  warn(message: string): void {
    (this.options.onWarning ?? console.warn)(message);
  }

  /** Throws the error a head class gives for a checkpoint without that head. */
  requireHead(head: Head): void {
    if (head === "none" || this.heads.includes(head)) return;
    throw new UnsupportedCheckpointError(this.path, `head "${head}" was not loaded with this model (loaded: ${this.heads.join(", ")}): name it in \`heads\` when loading`);
  }

  private session(part: Part, hidden: boolean, graph?: Graph): Promise<ort.InferenceSession> {
    const key = `${part}:${hidden}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = createSession(graph ?? this.build(part, hidden), this.store.dataDir, this.options);
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
  async logitScale(): Promise<number> {
    return (await this.store.readFloat32("logit_scale"))[0];
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await s.then((x) => x.release()).catch(() => {});
    this.sessions.clear();
    await this.store.close();
  }
}

function checkHeadNames(heads: Head[]): void {
  if (!Array.isArray(heads) || heads.length === 0) throw new InputError("heads", `must name at least one of ${TASK_HEADS.join(", ")} (or be "available")`);
  for (const h of heads)
    if (h !== "none" && !TASK_HEADS.includes(h as TaskHead)) throw new InputError("heads", `unknown head "${h}": expected ${TASK_HEADS.join(", ")}`);
}

/** The task heads whose parameters are all in the checkpoint (ITC only where the config can build it). */
function availableHeads(store: WeightStore, config: BridgeTowerConfig, dir: string): Head[] {
  const has = (h: TaskHead) => HEAD_KEYS[h].every((p) => [...store.entries.keys()].some((k) => k.startsWith(p)));
  const heads = TASK_HEADS.filter((h) => has(h) && (h !== "itc" || !contrastiveUnsupportedReason(config)));
  if (heads.length === 0) throw new UnsupportedCheckpointError(dir, `this checkpoint has none of the ${TASK_HEADS.join(", ")} heads`);
  return heads;
}
