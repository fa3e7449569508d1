import onnxProto from "onnx-proto";
import type { onnx as OnnxTypes } from "onnx-proto";
import type { DType } from "../io/tensors.js";

const { onnx } = onnxProto;

/** A value in the graph, referred to by its name. */
export type Value = string;

export type ElemType = "float" | "int64" | "float16" | "bfloat16" | "int32" | "uint8" | "int8" | "bool";

const ELEM: Record<ElemType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  float16: onnx.TensorProto.DataType.FLOAT16,
  bfloat16: onnx.TensorProto.DataType.BFLOAT16,
  int32: onnx.TensorProto.DataType.INT32,
  uint8: onnx.TensorProto.DataType.UINT8,
  int8: onnx.TensorProto.DataType.INT8,
  bool: onnx.TensorProto.DataType.BOOL,
};

export const ELEM_OF_DTYPE: Partial<Record<DType, ElemType>> = {
  F32: "float", F16: "float16", BF16: "bfloat16", I64: "int64", I32: "int32", U8: "uint8", I8: "int8", BOOL: "bool",
};

/** Marks a number attribute as FLOAT even when it is integral (e.g. alpha = 1). */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export const f = (v: number) => new FloatAttr(v);

export type Attr = number | number[] | string | FloatAttr | FloatAttr[];

/** Where an initializer's bytes live in a file (ONNX external data), relative to the session's data folder. */
export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

/**
 * A small ONNX graph builder. Model code adds nodes with `g.op(...)`; initializers are either small
 * inline constants or references into checkpoint files (external data), so weights never pass through JS.
 */
export class Graph {
  private nodes: OnnxTypes.INodeProto[] = [];
  private inputs: OnnxTypes.IValueInfoProto[] = [];
  private outputs: OnnxTypes.IValueInfoProto[] = [];
  // Shared with the branches of `ifElse` (they live in the top graph, visible to every branch).
  private initializers: OnnxTypes.ITensorProto[] = [];
  private names = new Set<string>();
  private counter = { n: 0 };
  private constCache = new Map<string, Value>();
  /** Names given by `input` and `output`: where parts are built into one graph, they connect by these names. */
  private defined = new Set<string>();

  /** `parent`: a branch of `ifElse`, sharing the parent's names, constants and initializers. */
  constructor(readonly name: string, parent?: Graph) {
    if (parent) {
      this.initializers = parent.initializers;
      this.names = parent.names;
      this.counter = parent.counter;
      this.constCache = parent.constCache;
    }
  }

  private fresh(hint: string): Value {
    let n = hint;
    while (this.names.has(n)) n = `${hint}_${++this.counter.n}`;
    this.names.add(n);
    return n;
  }

  /** Declares a graph input, or returns `name` when this graph already has it (an input, or another part's output). */
  input(name: string, elem: ElemType, dims: (number | string)[]): Value {
    if (this.defined.has(name)) return name;
    this.defined.add(name);
    this.names.add(name);
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  /** Declares `v` as a graph output named `name`. */
  output(v: Value, name: string, elem: ElemType = "float", dims?: (number | string)[]): void {
    if (v !== name) {
      this.names.add(name);
      this.nodes.push({ opType: "Identity", input: [v], output: [name], name: `out_${name}` });
    }
    this.defined.add(name);
    this.outputs.push(valueInfo(name, elem, dims));
  }

  /** An initializer whose bytes are read by onnxruntime from a file (in place, no copy through JS). */
  external(name: string, elem: ElemType, dims: number[], ref: ExternalRef): Value {
    if (this.names.has(name)) return name;
    this.names.add(name);
    this.initializers.push({
      name,
      dataType: ELEM[elem],
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: "location", value: ref.location },
        { key: "offset", value: String(ref.offset) },
        { key: "length", value: String(ref.length) },
      ],
    });
    return name;
  }

  /** An initializer stored inside the model (small tensors, or converted ones). */
  inline(name: string, elem: ElemType, dims: number[], bytes: Uint8Array): Value {
    if (this.names.has(name)) return name;
    this.names.add(name);
    return this.addInline(name, elem, dims, bytes);
  }

  private addInline(name: string, elem: ElemType, dims: number[], bytes: Uint8Array): Value {
    this.initializers.push({ name, dataType: ELEM[elem], dims, rawData: bytes });
    return name;
  }

  /** A float32 or int64 constant, deduplicated by value. */
  constant(values: number[] | Float32Array, dims: number[] = [values.length], elem: "float" | "int64" = "float"): Value {
    const key = `${elem}:${dims.join(",")}:${Array.from(values).join(",")}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const bytes =
      elem === "float"
        ? new Uint8Array(Float32Array.from(values).buffer)
        : new Uint8Array(BigInt64Array.from(Array.from(values), (x) => BigInt(x)).buffer);
    const name = this.addInline(this.fresh(`const_${this.constCache.size}`), elem, dims, bytes);
    this.constCache.set(key, name);
    return name;
  }

  ints(values: number[]): Value {
    return this.constant(values, [values.length], "int64");
  }

  scalar(v: number): Value {
    return this.constant([v], []);
  }

  /** Adds a node with one output. */
  op(opType: string, inputs: (Value | "")[], attrs: Record<string, Attr> = {}, domain = ""): Value {
    return this.opN(opType, inputs, 1, attrs, domain)[0];
  }

  /** Adds a node with `n` outputs. */
  opN(opType: string, inputs: (Value | "")[], n: number, attrs: Record<string, Attr> = {}, domain = ""): Value[] {
    const outs = Array.from({ length: n }, (_, i) => this.fresh(`${opType}_${this.nodes.length}${n > 1 ? `_${i}` : ""}`));
    this.nodes.push({
      opType,
      domain,
      input: inputs,
      output: outs,
      name: `${opType}_${this.nodes.length}`,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /**
   * ONNX `If` on a one-element bool `cond`: `then` and `otherwise` add their nodes to a branch graph (which can read
   * every value of this one) and return `n` float values each. Returns the `n` values of the branch taken.
   */
  ifElse(cond: Value, n: number, then: (g: Graph) => Value[], otherwise: (g: Graph) => Value[]): Value[] {
    const branch = (build: (g: Graph) => Value[], label: string): OnnxTypes.IGraphProto => {
      const b = new Graph(`${this.name}_${label}`, this);
      const outs = build(b);
      if (outs.length !== n) throw new Error(`ifElse: the ${label} branch returned ${outs.length} values, expected ${n}`);
      for (const v of outs) b.output(v, this.fresh(`${label}_out`));
      return { name: b.name, node: b.nodes, output: b.outputs };
    };
    const outs = Array.from({ length: n }, () => this.fresh(`If_${this.nodes.length}`));
    const T = onnx.AttributeProto.AttributeType;
    const attribute = [
      { name: "then_branch", type: T.GRAPH, g: branch(then, "then") },
      { name: "else_branch", type: T.GRAPH, g: branch(otherwise, "else") },
    ];
    this.nodes.push({ opType: "If", domain: "", input: [cond], output: outs, name: `If_${this.nodes.length}`, attribute });
    return outs;
  }

  /** Names of the graph outputs declared so far. */
  get outputNames(): string[] {
    return this.outputs.map((o) => o.name!);
  }

  /** Serializes to an ONNX ModelProto (opset 17 plus the com.microsoft domain). */
  toBytes(): Uint8Array {
    return onnx.ModelProto.encode(this.toModel()).finish();
  }

  /** The ModelProto `toBytes` writes, for callers that rework it (the exporter). */
  toModel(): OnnxTypes.ModelProto {
    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: "bridgetower",
      opsetImport: [
        { domain: "", version: 17 },
        { domain: "com.microsoft", version: 1 },
      ],
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    });
  }
}

function valueInfo(name: string, elem: ElemType, dims?: (number | string)[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[elem],
        shape: dims ? { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) } : undefined,
      },
    },
  };
}

function attribute(name: string, v: Attr): OnnxTypes.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (v instanceof FloatAttr) return { name, type: T.FLOAT, f: v.value };
  if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) {
    if (v.length > 0 && v[0] instanceof FloatAttr) return { name, type: T.FLOATS, floats: (v as FloatAttr[]).map((x) => x.value) };
    return { name, type: T.INTS, ints: v as number[] };
  }
  if (Number.isInteger(v)) return { name, type: T.INT, i: v };
  return { name, type: T.FLOAT, f: v };
}
