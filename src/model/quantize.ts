/**
 * int8 mode: the weights rewritten once into a cache file that onnxruntime reads as external data. Linear
 * weights are quantized per output channel (symmetric int8, transposed to `[in, out]` as DynamicQuantizeMatMul
 * wants them); every other parameter is stored as float32. The file is written on first load only, tensor by
 * tensor (memory stays at the largest tensor), and atomically; it ends with a trailer (cache-file.ts) holding its
 * key and block checksums, checked each time it is opened, so a damaged or stale file is rebuilt, never used.
 */
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { writeAll } from "../io/atomic.js";
import { checkCacheTrailer, writeCacheFile } from "../io/cache-file.js";
import type { ExternalRef } from "../onnx/graph.js";
import { runtimeVersion } from "../runtime/session.js";
import { quantizeTransposed } from "./int8.js";

export { quantizeTransposed } from "./int8.js";

interface PlanEntry {
  key: string;
  /** The checkpoint parameter it is made from. */
  name: string;
  kind: "f32" | "int8" | "scale";
  shape: number[];
  offset: number;
  length: number;
}

/** Reads a parameter as float32 (the store's job: it knows the checkpoint). */
export type ReadFloat32 = (name: string) => Promise<Float32Array>;

const ALIGN = 64;
const FORMAT = "bridgetower-int8-v3";

export function defaultCacheRoot(): string {
  return process.env.BRIDGETOWER_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "bridgetower");
}

export class Int8WeightFile {
  static readonly FILE = "weights-int8.bin";
  private plan: PlanEntry[] = [];
  private byKey = new Map<string, PlanEntry>();
  private size = 0;
  private frozen = false;
  /** Folder of the file, known once the plan is complete (it is named by the plan's hash). */
  dir = "";
  private key = "";

  constructor(private readonly cacheRoot: string, private readonly checkpointId: string) {}

  private add(key: string, name: string, kind: PlanEntry["kind"], shape: number[], bytesPer: number): ExternalRef {
    let e = this.byKey.get(key);
    if (!e) {
      if (this.frozen) throw new Error(`int8 weight file: ${key} was not planned before the file was written`);
      const length = shape.reduce((a, b) => a * b, 1) * bytesPer;
      const offset = Math.ceil(this.size / ALIGN) * ALIGN;
      e = { key, name, kind, shape, offset, length };
      this.size = offset + length;
      this.plan.push(e);
      this.byKey.set(key, e);
    }
    return { location: Int8WeightFile.FILE, offset: e.offset, length: e.length };
  }

  /** A float32 parameter, copied into the file. */
  f32(name: string, shape: number[]): ExternalRef {
    return this.add(name, name, "f32", shape, 4);
  }

  /** A linear weight `[out, in]` as int8 `[in, out]` plus its per-output-channel float32 scales `[out]`. */
  int8(name: string, outF: number, inF: number): { q: ExternalRef; scale: ExternalRef } {
    const q = this.add(`${name}.int8`, name, "int8", [inF, outF], 1);
    const scale = this.add(`${name}.scale`, name, "scale", [outF], 4);
    return { q, scale };
  }

  /**
   * Opens the file for the plan: builds it when it is missing or its trailer or key is wrong (warning with the
   * reason), and otherwise returns the block check still running, so sessions can be created meanwhile; a block
   * that fails it must be followed by `build` before any result is used. `checkpointId` names the checkpoint's
   * bytes; the key adds the format, plan and onnxruntime version.
   */
  async open(read: ReadFloat32, onProgress?: Progress, onWarning?: (m: string) => void): Promise<{ verified: Promise<string | undefined> }> {
    this.frozen = true;
    this.key = JSON.stringify({ format: FORMAT, checkpoint: this.checkpointId, onnxruntime: runtimeVersion(), plan: this.plan });
    this.dir = join(this.cacheRoot, "int8", createHash("sha256").update(this.key).digest("hex").slice(0, 24));
    const head = await checkCacheTrailer(this.path, this.key, this.size);
    if (typeof head !== "string") return { verified: head.blocks };
    if (head !== "missing") onWarning?.(`${this.path}: ${head}; rebuilding it`);
    await this.build(read, onProgress);
    return { verified: Promise.resolve(undefined) };
  }

  get path(): string {
    return join(this.dir, Int8WeightFile.FILE);
  }

  /** Writes the file (atomically, with its trailer): quantized tensor by tensor, memory at the largest one. */
  async build(read: ReadFloat32, onProgress?: Progress): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeCacheFile(this.path, this.key, this.size, async (fh) => {
      const scales = new Map<string, Float32Array>();
      for (const e of this.plan) {
        let bytes: Uint8Array;
        if (e.kind === "f32") bytes = u8(await read(e.name));
        else if (e.kind === "scale") bytes = u8(scales.get(e.name)!);
        else {
          const [inF, outF] = e.shape;
          const { q, scale } = quantizeTransposed(await read(e.name), outF, inF);
          scales.set(e.name, scale);
          bytes = u8(q);
        }
        await writeAll(fh, bytes, e.offset);
        onProgress?.(e.offset + e.length, this.size);
      }
    });
  }
}

type Progress = (done: number, total: number) => void;

const u8 = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
