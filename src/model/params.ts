/**
 * What the graph builders ask of a weight store, and `Weights`, the named view they ask through. Kept free of
 * Node built-ins so the same builders run in a page (src/web/weights.ts is the page's store; weights.ts Node's).
 */
import type { Graph, Value } from "../onnx/graph.js";

export interface ParameterStore {
  /** Set in int8 mode: linear layers then take `useInt8`. */
  readonly int8?: unknown;
  /** Registers parameter `name` of `shape` in graph `g` (float32 in the graph) and returns its value. */
  use(g: Graph, name: string, shape: number[], register?: boolean): Value;
  /** A linear weight `[outF, inF]` as int8 `[inF, outF]` plus per-output-channel scales (int8 mode). */
  useInt8(g: Graph, name: string, outF: number, inF: number): { q: Value; scale: Value };
}

/** Backbone keys live under this prefix in head checkpoints (`base_model_prefix` in transformers). */
export const BACKBONE_PREFIX = "bridgetower.";
const HEAD_PREFIXES = ["itm_score.", "mlm_score.", "itc_text_head.", "itc_image_head.", "itc_cross_modal_head.", "logit_scale"];

/** Buffers that old pickles carry and `from_pretrained` ignores. */
const IGNORED = [/(^|\.)position_ids$/, /(^|\.)token_type_ids$/];

/**
 * Checkpoint tensors under canonical names: backbone under `bridgetower.`, heads without prefix, as in head
 * checkpoints; a bare `BridgeTowerModel` checkpoint gets the prefix added, like `from_pretrained`.
 */
export function canonicalNames<T extends { name: string }>(entries: T[]): Map<string, T> {
  const out = new Map<string, T>();
  const hasPrefix = entries.some((e) => e.name.startsWith(BACKBONE_PREFIX));
  for (const e of entries) {
    if (IGNORED.some((r) => r.test(e.name))) continue;
    const isHead = HEAD_PREFIXES.some((p) => e.name.startsWith(p));
    out.set(hasPrefix || isHead ? e.name : BACKBONE_PREFIX + e.name, e);
  }
  return out;
}

/** A store with no weights that only records the shapes the graphs ask for (see `parameterShapes`). */
export class ShapeRecorder implements ParameterStore {
  readonly requested = new Map<string, number[]>();

  use(_g: Graph, name: string, shape: number[]): Value {
    this.requested.set(name, shape);
    return name;
  }

  useInt8(): never {
    throw new Error("ShapeRecorder has no int8 mode");
  }
}

/**
 * A view of the store under a dotted prefix, like candle's `VarBuilder::pp`: model code asks for
 * `w.at("attention").at("self").get("query.weight", [H, H])` with Hugging Face's parameter names.
 */
export class Weights {
  constructor(readonly g: Graph, readonly store: ParameterStore, readonly prefix = "") {}

  /** The same parameters, for nodes of another graph (a branch of `Graph.ifElse`). */
  on(g: Graph): Weights {
    return new Weights(g, this.store, this.prefix);
  }

  at(...parts: (string | number)[]): Weights {
    const p = parts.join(".");
    return new Weights(this.g, this.store, this.prefix ? `${this.prefix}.${p}` : p);
  }

  name(leaf: string): string {
    return this.prefix ? `${this.prefix}.${leaf}` : leaf;
  }

  get(leaf: string, shape: number[]): Value {
    return this.store.use(this.g, this.name(leaf), shape);
  }

  /** A linear weight `[outF, inF]` as int8 `[inF, outF]` plus scales (int8 mode only). */
  getInt8(leaf: string, outF: number, inF: number): { q: Value; scale: Value } {
    return this.store.useInt8(this.g, this.name(leaf), outF, inF);
  }

}
