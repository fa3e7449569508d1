/**
 * The page's weight store: the graph builders ask it for parameters as they ask Node's WeightStore, and every
 * parameter becomes an external-data file of its part (`w0`, `w1`, ...). The bytes are fetched by Range requests
 * (spans of neighbouring tensors), converted to float32 or quantized with Node's int8 scheme, and handed to
 * onnxruntime-web with the part's session; nothing holds the whole checkpoint.
 */
import { UnsupportedCheckpointError } from "../errors.js";
import { bytesToFloat32, numel, type TensorEntry } from "../io/tensors.js";
import type { Graph, Value } from "../onnx/graph.js";
import { quantizeTransposed } from "../model/int8.js";
import type { ParameterStore } from "../model/params.js";
import { getRange, type Source } from "./http.js";

/** One external-data file of a part's graph, and what it is made from. */
export interface Planned {
  loc: string;
  /** The checkpoint parameter. */
  name: string;
  kind: "f32" | "int8" | "scale";
  /** The parameter's shape (`[out, in]` for int8 and scale). */
  shape: number[];
}

/** The external data of one session: `path` is a `location` of its graph. */
export interface PartFile {
  path: string;
  data: Uint8Array;
}

export class PageStore implements ParameterStore {
  readonly int8?: true;
  readonly missing: string[] = [];
  private current?: { planned: Planned[]; byKey: Map<string, Planned> };

  constructor(readonly entries: Map<string, TensorEntry>, readonly label: string, int8: boolean) {
    if (int8) this.int8 = true;
  }

  /** Builds one part's graph with `build`, recording the files it reads. */
  plan(build: () => Graph): { graph: Graph; planned: Planned[] } {
    this.current = { planned: [], byKey: new Map() };
    try {
      const graph = build();
      return { graph, planned: this.current.planned };
    } finally {
      this.current = undefined;
    }
  }

  private ref(key: string, name: string, kind: Planned["kind"], shape: number[]) {
    const cur = this.current!;
    let p = cur.byKey.get(key);
    if (!p) cur.planned.push((p = { loc: `w${cur.planned.length}`, name, kind, shape }));
    cur.byKey.set(key, p);
    const length = kind === "int8" ? numel(shape) : kind === "scale" ? 4 * shape[0] : 4 * numel(shape);
    return { location: p.loc, offset: 0, length };
  }

  use(g: Graph, name: string, shape: number[], register = true): Value {
    const e = this.entries.get(name);
    if (!e) {
      if (!this.missing.includes(name)) this.missing.push(name);
      return name; // reported all together by checkMissing()
    }
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))
      throw new UnsupportedCheckpointError(e.file, `parameter ${name} has shape [${e.shape.join(", ")}] but the config implies [${shape.join(", ")}]`);
    if (!register) return name;
    // As in Node: fp32 takes float checkpoints (half ones converted, here in JS); int8 converts whatever it reads.
    if (!this.int8 && e.dtype !== "F32" && e.dtype !== "F16" && e.dtype !== "BF16")
      throw new UnsupportedCheckpointError(e.file, `parameter ${name} has dtype ${e.dtype}; expected a float type`);
    return g.external(name, "float", shape, this.ref(name, name, "f32", shape));
  }

  useInt8(g: Graph, name: string, outF: number, inF: number): { q: Value; scale: Value } {
    this.use(g, name, [outF, inF], false);
    const q = g.external(`${name}.int8`, "int8", [inF, outF], this.ref(`${name}.int8`, name, "int8", [outF, inF]));
    const scale = g.external(`${name}.scale`, "float", [outF], this.ref(`${name}.scale`, name, "scale", [outF, inF]));
    return { q, scale };
  }

  checkMissing(what: string): void {
    if (this.missing.length === 0) return;
    const list = this.missing.slice(0, 20).join(", ") + (this.missing.length > 20 ? `, … (${this.missing.length} in all)` : "");
    throw new UnsupportedCheckpointError(this.label, `missing ${this.missing.length} parameter(s) needed by ${what}: ${list}`);
  }
}

const SPAN = 16 << 20;
const GAP = 64 << 10;
const u8 = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const keyOf = (p: Planned) => `${p.kind}:${p.name}`;

/** Float32 values of a stored tensor; a view when the bytes are float32 and aligned. */
function floats(bytes: Uint8Array, e: TensorEntry): Float32Array {
  if (e.dtype === "F32" && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return bytesToFloat32(bytes, e.dtype);
}

export interface FetchProgress {
  bytes(n: number): void;
  tensor(): void;
}

/**
 * Makes the files of the parts of one load from the checkpoint. A file several parts read (the last cross layer
 * of each head) is made once and kept until its last part has it.
 */
export class PartFetcher {
  private uses = new Map<string, number>();
  private kept = new Map<string, Uint8Array>();

  constructor(private readonly src: Source, private readonly store: PageStore, parts: Planned[][]) {
    for (const planned of parts) for (const p of planned) this.uses.set(keyOf(p), (this.uses.get(keyOf(p)) ?? 0) + 1);
  }

  /** Bytes the network will send for `parts` (each checkpoint tensor once). */
  bytesFor(parts: Planned[][]): number {
    const names = new Set(parts.flat().map((p) => p.name));
    return [...names].reduce((n, name) => n + this.store.entries.get(name)!.byteLength, 0);
  }

  async fetch(planned: Planned[], progress: FetchProgress): Promise<PartFile[]> {
    const made = new Map<string, Uint8Array>();
    const need = [...new Set(planned.filter((p) => !this.kept.has(keyOf(p))).map((p) => p.name))]
      .map((name) => this.store.entries.get(name)!)
      .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.offset - b.offset));
    for (const span of spans(need)) {
      const first = span[0];
      const last = span[span.length - 1];
      // Progress counts tensor bytes only (not the small gaps a span also carries).
      const length = last.offset + last.byteLength - first.offset;
      const useful = span.reduce((n, e) => n + e.byteLength, 0);
      let received = 0;
      let told = 0;
      const tell = (n: number) => {
        received += n;
        const now = Math.floor((useful * received) / length);
        progress.bytes(now - told);
        told = now;
      };
      const { bytes } = await getRange(this.src, first.file, first.offset, length, tell);
      for (const e of span) {
        const raw = bytes.subarray(e.offset - first.offset, e.offset - first.offset + e.byteLength);
        for (const p of planned.filter((x) => x.name === e.name && x.kind !== "scale")) {
          if (p.kind === "f32") made.set(keyOf(p), e.dtype === "F32" ? raw : u8(floats(raw, e)));
          else {
            const [outF, inF] = p.shape;
            const { q, scale } = quantizeTransposed(floats(raw, e), outF, inF);
            made.set(keyOf(p), u8(q));
            made.set(`scale:${p.name}`, u8(scale));
          }
        }
      }
      await new Promise((r) => setTimeout(r, 0)); // let the page breathe between spans
    }
    return planned.map((p) => {
      const key = keyOf(p);
      const data = this.kept.get(key) ?? made.get(key)!;
      const left = (this.uses.get(key) ?? 1) - 1;
      this.uses.set(key, left);
      if (left > 0) this.kept.set(key, data);
      else this.kept.delete(key);
      progress.tensor();
      return { path: p.loc, data };
    });
  }
}

/** Neighbouring tensors of one file grouped into requests of at most SPAN bytes (a larger tensor alone). */
function spans(sorted: TensorEntry[]): TensorEntry[][] {
  const out: TensorEntry[][] = [];
  for (const e of sorted) {
    const cur = out[out.length - 1];
    const last = cur?.[cur.length - 1];
    if (cur && last!.file === e.file && e.offset - (last!.offset + last!.byteLength) <= GAP && e.offset + e.byteLength - cur[0].offset <= SPAN) cur.push(e);
    else out.push([e]);
  }
  return out;
}
