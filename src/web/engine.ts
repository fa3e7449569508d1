/**
 * The page's Engine. The web build puts it in place of src/model/engine.ts, so the model classes of
 * src/model/bridgetower.ts and the tasks run unchanged on it: config and weights over HTTP (a Hub repo or any base
 * URL), the parts built by the same graph builders (model/plan.ts), one onnxruntime-web session per part. Parts
 * are loaded one after the other, so the page holds one part's weights in JavaScript at a time.
 */
import { InputError } from "../errors.js";
import type { TensorEntry } from "../io/tensors.js";
import { parseConfigText, type BridgeTowerConfig } from "../model/config.js";
import { canonicalNames } from "../model/params.js";
import type { Head } from "../model/parts.js";
import { availableHeads, buildPart, checkRequest, checkWeights, requireHead, startParts, type Part } from "../model/plan.js";
import type { Tensor } from "../model/tensor.js";
import type { Graph } from "../onnx/graph.js";
import { Int8Cache } from "./cache.js";
import { getRange, getText, Source, type SourceOptions } from "./http.js";
import { createSession, releaseSession, runSession, runtimeVersion, startRuntime, type Runtime, type RuntimeOptions, type Session } from "./runtime.js";
import { openRemoteWeights } from "./safetensors.js";
import { PageStore, PartFetcher, type PartFile, type Planned } from "./weights.js";

export interface Progress {
  /** "model.safetensors" (or a shard) while downloading, "cache" while reading cached int8 weights. */
  file: string;
  /** Bytes read so far and in all, for this `file`. */
  downloaded: number;
  total: number;
  /** Weight tensors ready (fetched and converted or quantized, or read from the cache) and in all. */
  tensors: number;
  totalTensors: number;
}

export interface LoadOptions extends SourceOptions, RuntimeOptions {
  /** "fp32" (default), or "int8": linear layers quantized in the page as Node does, kept in Cache Storage. */
  dtype?: "fp32" | "int8";
  /** Keep int8 weights in Cache Storage (default true). */
  cache?: boolean;
  onProgress?: (p: Progress) => void;
}

export type Outputs = Record<string, Tensor>;
export type { Part, TaskHead } from "../model/plan.js";

interface Built {
  part: Part;
  graph: Graph;
  planned: Planned[];
}

export class Engine {
  private sessions = new Map<string, Promise<Session>>();
  private scale?: number;

  private constructor(
    readonly config: BridgeTowerConfig,
    private readonly store: PageStore,
    private readonly src: Source,
    readonly heads: Head[],
    readonly runtime: Runtime,
    readonly options: LoadOptions,
  ) {}

  get path(): string {
    return this.src.label;
  }

  /** Loads a Hub repo id or a model folder's URL for `heads` ("available" = every head the checkpoint has). */
  static async load(idOrUrl: string, heads: Head[] | "available", options: LoadOptions = {}, who = "BridgeTowerModel"): Promise<Engine> {
    const src = Source.resolve(idOrUrl, options);
    const config = await fetchConfig(src);
    checkRequest(src.label, config, heads, options.dtype);
    const runtime = await startRuntime(options);
    const int8 = options.dtype === "int8";
    const useCache = int8 && options.cache !== false;

    // A commit names the weights exactly: with one, cached int8 weights load with no weight request at all.
    let cache = useCache && src.commit ? await Int8Cache.open(`${src.label}@${src.commit}`, runtimeVersion()) : undefined;
    let raw = cache?.entries;
    if (!raw) {
      const remote = await openRemoteWeights(src);
      raw = [...remote.entries.values()];
      if (useCache && !cache) cache = await Int8Cache.open(`${src.label}#${remote.version}`, runtimeVersion());
    }
    const store = new PageStore(canonicalNames(raw), src.label, int8);
    const chosen = heads === "available" ? availableHeads(store.entries.keys(), config, src.label) : heads;
    const built: Built[] = startParts(config, chosen).map((part) => ({ part, ...store.plan(() => buildPart(store, config, part, false)) }));
    const engine = new Engine(config, store, src, chosen, runtime, options);
    checkWeights(store, config, chosen, src.label, who, (m) => engine.warn(m));
    try {
      await engine.loadParts(built, cache);
      await cache?.commit(raw);
    } catch (e) {
      await cache?.abort();
      await engine.dispose();
      throw e;
    }
    return engine;
  }

  /** Creates the sessions of `built`, their files from the cache where it has them, else from the checkpoint. */
  private async loadParts(built: Built[], cache: Int8Cache | undefined): Promise<void> {
    const report = this.options.onProgress;
    const totalTensors = built.reduce((n, b) => n + b.planned.length, 0);
    let tensors = 0;
    const done = { cache: 0, net: 0 };
    const hits = new Set(built.filter((b) => cache?.has(b.part, b.planned)).map((b) => b.part));
    const toFetch = built.filter((b) => !hits.has(b.part)).map((b) => b.planned);
    const fetcher = new PartFetcher(this.src, this.store, toFetch);
    const netTotal = fetcher.bytesFor(toFetch);
    const cacheTotal = built.filter((b) => hits.has(b.part)).reduce((n, b) => n + b.planned.reduce((m, p) => m + bytesOf(p), 0), 0);
    const file = [...new Set(toFetch.flat().map((p) => this.store.entries.get(p.name)!.file))].join(", ") || "model.safetensors";
    const progress = {
      bytes: (n: number) => {
        done.net += n;
        report?.({ file, downloaded: done.net, total: netTotal, tensors, totalTensors });
      },
      tensor: () => void tensors++,
    };
    for (const b of built) {
      let files = hits.has(b.part) ? await cache!.read(b.part, b.planned) : undefined;
      if (files) {
        done.cache += files.reduce((n, f) => n + f.data.byteLength, 0);
        tensors += files.length;
        report?.({ file: "cache", downloaded: done.cache, total: cacheTotal, tensors, totalTensors });
      } else {
        // A cache entry that turned out unreadable is rebuilt from the checkpoint.
        files = await (hits.has(b.part) ? new PartFetcher(this.src, this.store, [b.planned]) : fetcher).fetch(b.planned, progress);
        report?.({ file, downloaded: done.net, total: netTotal, tensors, totalTensors });
        if (cache) await cache.write(b.part, b.planned, files);
      }
      this.keepScale(b.planned, files);
      const session = createSession(this.runtime, b.graph, files);
      this.sessions.set(`${b.part}:false`, session);
      await session;
    }
  }

  /** `logit_scale` is read where a part already has it, so `logitScale()` needs no request of its own. */
  private keepScale(planned: Planned[], files: PartFile[]): void {
    const i = planned.findIndex((p) => p.name === "logit_scale" && p.kind === "f32");
    if (i >= 0) this.scale = new Float32Array(files[i].data.slice().buffer)[0];
  }

  warn(message: string): void {
    (this.options.onWarning ?? ((m: string) => console.warn(m)))(message);
  }

  requireHead(head: Head): void {
    requireHead(this.path, this.heads, head);
  }

  /** The session of a part; those with hidden states are built on first use (their weights fetched again). */
  private session(part: Part, hidden: boolean): Promise<Session> {
    const key = `${part}:${hidden}`;
    let s = this.sessions.get(key);
    if (!s) {
      const { graph, planned } = this.store.plan(() => buildPart(this.store, this.config, part, hidden));
      s = new PartFetcher(this.src, this.store, [planned])
        .fetch(planned, { bytes: () => {}, tensor: () => {} })
        .then((files) => createSession(this.runtime, graph, files));
      this.sessions.set(key, s);
    }
    return s;
  }

  /** Runs one part; `feeds` may hold more tensors than the part reads. */
  async run(part: Part, hidden: boolean, feeds: Record<string, Tensor>): Promise<Outputs> {
    const s = await this.session(part, hidden);
    const inputs: Record<string, Tensor> = {};
    for (const name of s.inputNames) {
      const t = feeds[name];
      if (!t) throw new InputError(name, "missing input");
      if (t.data.length !== t.dims.reduce((a, b) => a * b, 1)) throw new InputError(name, `has ${t.data.length} values but shape [${t.dims.join(", ")}]`);
      inputs[name] = t;
    }
    return runSession(s, inputs);
  }

  /** The trained `logit_scale` parameter (raw, before exp). */
  async logitScale(): Promise<number> {
    if (this.scale === undefined) {
      const e = this.store.entries.get("logit_scale") as TensorEntry;
      const { bytes } = await getRange(this.src, e.file, e.offset, e.byteLength);
      this.scale = new DataView(bytes.buffer).getFloat32(0, true);
    }
    return this.scale;
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await s.then(releaseSession).catch(() => {});
    this.sessions.clear();
  }
}

const bytesOf = (p: Planned) => (p.kind === "int8" ? p.shape[0] * p.shape[1] : p.kind === "scale" ? 4 * p.shape[0] : 4 * p.shape.reduce((a, b) => a * b, 1));

async function fetchConfig(src: Source): Promise<BridgeTowerConfig> {
  return parseConfigText((await getText(src, "config.json"))!, src.url("config.json"));
}
