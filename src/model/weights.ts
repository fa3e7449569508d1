import { dirname, relative, sep } from "node:path";
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, realpathSync, statSync } from "node:fs";
import { CheckpointFormatError, UnsupportedCheckpointError } from "../errors.js";
import { bytesToFloat32, type TensorEntry, type TensorSource } from "../io/tensors.js";
import { ELEM_OF_DTYPE, type Graph, type Value } from "../onnx/graph.js";
import { Int8WeightFile } from "./quantize.js";
import { canonicalNames, type ParameterStore } from "./params.js";

export { Weights } from "./params.js";

export { BACKBONE_PREFIX } from "./params.js";

/**
 * All tensors of a checkpoint under canonical names (backbone under `bridgetower.`, heads without prefix,
 * as in head checkpoints; a bare `BridgeTowerModel` checkpoint gets the prefix added, like `from_pretrained`).
 * Records what the graphs asked for, to report missing keys (and to generate checkpoints).
 */
export class WeightStore implements ParameterStore {
  readonly entries = new Map<string, TensorEntry & { source: TensorSource }>();
  /** The folder onnxruntime resolves external-data locations against. */
  private checkpointDir: string;
  /** In int8 mode, every parameter comes from this rewritten file instead of the checkpoint. */
  int8?: Int8WeightFile;
  private casts = new WeakMap<Graph, Map<string, Value>>();
  readonly missing: string[] = [];
  /** Shapes the graphs asked for, by parameter name (also for missing ones: used to generate checkpoints). */
  readonly requested = new Map<string, number[]>();

  constructor(readonly sources: TensorSource[]) {
    const entries = sources.flatMap((s) => [...s.entries.values()].map((e) => ({ ...e, source: s })));
    for (const [name, e] of canonicalNames(entries)) this.entries.set(name, e);
    // Checkpoint files may be symlinks (Hugging Face cache): onnxruntime needs the real folder.
    const dirs = new Set(sources.map((s) => dirname(realpathSync(s.path))));
    if (dirs.size > 1) throw new CheckpointFormatError(sources[0].path, "all weight files must be in one folder");
    this.checkpointDir = [...dirs][0] ?? ".";
  }

  get dataDir(): string {
    return this.int8 ? this.int8.dir : this.checkpointDir;
  }

  /** Switches to int8 mode: graphs built from now on read the int8 file opened by `openInt8`. */
  enableInt8(cacheRoot: string): void {
    this.int8 = new Int8WeightFile(cacheRoot, this.sources.map(fileIdentity).join("|"));
  }

  /** Opens (building if needed) the int8 file for everything the graphs built so far asked for; see Int8WeightFile.open. */
  openInt8(onProgress?: (done: number, total: number) => void, onWarning?: (m: string) => void): Promise<{ verified: Promise<string | undefined> }> {
    return this.int8!.open((name) => this.readFloat32(name), onProgress, onWarning);
  }

  /** Opens the int8 file and waits for its whole check, rebuilding it if needed (for readers that copy it). */
  async ensureInt8(onProgress?: (done: number, total: number) => void, onWarning?: (m: string) => void): Promise<void> {
    const problem = await (await this.openInt8(onProgress, onWarning)).verified;
    if (!problem) return;
    onWarning?.(`${this.int8!.path}: ${problem}; rebuilding it`);
    await this.rebuildInt8(onProgress);
  }

  /** Rebuilds the int8 file (after its block check failed). */
  rebuildInt8(onProgress?: (done: number, total: number) => void): Promise<void> {
    return this.int8!.build((name) => this.readFloat32(name), onProgress);
  }

  /** A linear weight `[outF, inF]` quantized to int8 `[inF, outF]` with per-output-channel scales (int8 mode). */
  useInt8(g: Graph, name: string, outF: number, inF: number): { q: Value; scale: Value } {
    this.use(g, name, [outF, inF], false); // checks presence and shape
    const { q, scale } = this.int8!.int8(name, outF, inF);
    return { q: g.external(`${name}.int8`, "int8", [inF, outF], q), scale: g.external(`${name}.scale`, "float", [outF], scale) };
  }

  /** Bytes of tensors that are not stored contiguously in their file (strided views of a pickle). */
  private gathered = new Map<string, Uint8Array>();

  /** Opens a store, reading into memory the (rare) tensors onnxruntime cannot use in place. */
  static async open(sources: TensorSource[]): Promise<WeightStore> {
    const store = new WeightStore(sources);
    for (const [name, e] of store.entries) if (e.offset < 0) store.gathered.set(name, await e.source.readBytes(e.name));
    return store;
  }

  /** Registers tensor `name` in graph `g` as an initializer (float32 in the graph) and returns its value. */
  use(g: Graph, name: string, shape: number[], register = true): Value {
    const e = this.entries.get(name);
    this.requested.set(name, shape);
    if (!e) {
      if (!this.missing.includes(name)) this.missing.push(name);
      return name; // reported all together by checkMissing()
    }
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))
      throw new UnsupportedCheckpointError(
        e.file,
        `parameter ${name} has shape [${e.shape.join(", ")}] but the config implies [${shape.join(", ")}]`,
      );
    if (!register) return name;
    if (this.int8) return g.external(name, "float", shape, this.int8.f32(name, shape));
    const elem = ELEM_OF_DTYPE[e.dtype];
    const bytes = this.gathered.get(name);
    if (bytes) return g.inline(name, "float", shape, new Uint8Array(bytesToFloat32(bytes, e.dtype).buffer));
    if (e.dtype === "F32") return g.external(name, "float", shape, this.ref(e));
    if (e.dtype === "F16" || e.dtype === "BF16") {
      // Half-precision weights stay half on disk; the Cast is folded into float32 at session creation.
      let casts = this.casts.get(g);
      if (!casts) this.casts.set(g, (casts = new Map()));
      const hit = casts.get(name);
      if (hit) return hit;
      const half = g.external(`${name}.${e.dtype.toLowerCase()}`, elem!, shape, this.ref(e));
      const out = g.op("Cast", [half], { to: 1 /* FLOAT */ });
      casts.set(name, out);
      return out;
    }
    throw new UnsupportedCheckpointError(e.file, `parameter ${name} has dtype ${e.dtype}; expected a float type`);
  }

  private ref(e: TensorEntry) {
    const location = relative(this.dataDir, realpathSync(e.file)).split(sep).join("/");
    return { location, offset: e.offset, length: e.byteLength };
  }

  /** Reads a (small) tensor into float32, e.g. `logit_scale`. */
  async readFloat32(name: string): Promise<Float32Array> {
    const e = this.entries.get(name);
    if (!e) throw new UnsupportedCheckpointError(this.sources[0]?.path ?? "", `the checkpoint has no ${name}`);
    return bytesToFloat32(await e.source.readBytes(e.name), e.dtype);
  }

  /** Throws one error listing every parameter the graph asked for and the checkpoint lacks. */
  checkMissing(what: string): void {
    if (this.missing.length === 0) return;
    const list = this.missing.slice(0, 20).join(", ") + (this.missing.length > 20 ? `, … (${this.missing.length} in all)` : "");
    throw new UnsupportedCheckpointError(this.sources[0]?.path ?? "", `missing ${this.missing.length} parameter(s) needed by ${what}: ${list}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.close()));
  }
}

/**
 * What a derived cache file is keyed by: the weight file's path, size, mtime and a hash of its first and last
 * 64 KiB (the safetensors header, or a zip's central directory), so a file replaced in place is noticed.
 */
function fileIdentity(s: TensorSource): string {
  const path = realpathSync(s.path);
  const { size, mtimeMs } = statSync(path);
  const fd = openSync(path, "r");
  try {
    const h = createHash("sha256");
    const n = Math.min(size, 65536);
    for (const at of new Set([0, Math.max(0, size - n)])) {
      const buf = Buffer.alloc(n);
      readSync(fd, buf, 0, n, at);
      h.update(buf);
    }
    return `${path}:${size}:${mtimeMs}:${h.digest("hex").slice(0, 32)}`;
  } finally {
    closeSync(fd);
  }
}
