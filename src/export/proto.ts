/** Turning a built graph into a file of its own: kept outputs only, dead nodes dropped, weights relocated. */
import onnxProto from "onnx-proto";
import type { onnx as OnnxTypes } from "onnx-proto";
import { isAbsolute } from "node:path";

const { onnx } = onnxProto;
type GraphProto = OnnxTypes.IGraphProto;
type NodeProto = OnnxTypes.INodeProto;

/** The protobuf limit of one message: bigger graphs cannot be written (nor read) at all. */
const MAX_GRAPH_BYTES = 2 ** 31 - 1;

export interface Finish {
  /** Graph outputs to keep. */
  outputs: string[];
  /** Checkpoint-relative external-data location → file name in the export folder. */
  locations: Map<string, string>;
  /** Symbolic dims to rename per graph input, e.g. pixel_values: { batch: "image_batch" }. */
  dims?: Record<string, Record<string, string>>;
}

/** Every value a node reads, including those its subgraphs (`If` branches) read from the enclosing graph. */
function reads(n: NodeProto): string[] {
  const out = (n.input ?? []).filter((v) => v !== "");
  for (const a of n.attribute ?? []) for (const g of [a.g, ...(a.graphs ?? [])]) if (g) for (const m of g.node ?? []) out.push(...reads(m));
  return out;
}

/** Keeps `outputs` and what they depend on (nodes are in topological order, as the builder adds them). */
function prune(graph: GraphProto, outputs: string[]): void {
  const keep = new Set(outputs);
  const missing = outputs.filter((o) => !(graph.output ?? []).some((v) => v.name === o));
  if (missing.length > 0) throw new Error(`export: the graph has no output ${missing.join(", ")}`);
  graph.output = (graph.output ?? []).filter((o) => keep.has(o.name!));
  const needed = new Set(outputs);
  const nodes: NodeProto[] = [];
  for (const n of [...(graph.node ?? [])].reverse()) {
    if (!(n.output ?? []).some((o) => needed.has(o))) continue;
    nodes.push(n);
    for (const v of reads(n)) needed.add(v);
  }
  graph.node = nodes.reverse();
  graph.initializer = (graph.initializer ?? []).filter((t) => needed.has(t.name!));
  graph.input = (graph.input ?? []).filter((i) => needed.has(i.name!));
}

/** A location inside the export folder: a plain file name, never absolute nor climbing out. */
export function safeLocation(loc: string): boolean {
  return loc !== "" && !isAbsolute(loc) && !loc.includes("/") && !loc.includes("\\") && loc !== "." && loc !== "..";
}

/** Points every external initializer at its file in the export folder (copies of the objects, the graph keeps its own). */
function relocate(graph: GraphProto, locations: Map<string, string>): void {
  graph.initializer = (graph.initializer ?? []).map((t) => {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) return t;
    const externalData = (t.externalData ?? []).map((e) => {
      if (e.key !== "location") return { ...e };
      const to = locations.get(e.value!);
      if (to === undefined || !safeLocation(to)) throw new Error(`export: initializer ${t.name} reads "${e.value}", which is not exported`);
      return { key: "location", value: to };
    });
    return { ...t, externalData };
  });
}

function renameDims(graph: GraphProto, dims: Record<string, Record<string, string>>): void {
  for (const i of graph.input ?? []) {
    const rename = dims[i.name!];
    for (const d of (rename && i.type?.tensorType?.shape?.dim) || []) if (d.dimParam && rename[d.dimParam]) d.dimParam = rename[d.dimParam];
  }
}

/** The finished graph's bytes. */
export function finishModel(model: OnnxTypes.ModelProto, f: Finish): Uint8Array {
  const graph = model.graph!;
  prune(graph, f.outputs);
  relocate(graph, f.locations);
  if (f.dims) renameDims(graph, f.dims);
  const bytes = onnx.ModelProto.encode(model).finish();
  if (bytes.length >= MAX_GRAPH_BYTES) throw new Error(`export: graph ${graph.name} would take ${bytes.length} bytes, over protobuf's 2 GiB`);
  return bytes;
}

/** Operators outside the default ONNX domain, as "domain:op" (subgraphs included). */
export function customOperators(model: OnnxTypes.IModelProto): string[] {
  const found = new Set<string>();
  const walk = (g: GraphProto) => {
    for (const n of g.node ?? []) {
      if (n.domain && n.domain !== "ai.onnx") found.add(`${n.domain}:${n.opType}`);
      for (const a of n.attribute ?? []) for (const s of [a.g, ...(a.graphs ?? [])]) if (s) walk(s);
    }
  };
  walk(model.graph!);
  return [...found].sort();
}

/** The opsets a graph imports, as { domain: version } ("ai.onnx" for the default domain). */
export function opsets(model: OnnxTypes.IModelProto): Record<string, number> {
  return Object.fromEntries((model.opsetImport ?? []).map((o) => [o.domain || "ai.onnx", Number(o.version)]));
}

/** Every external-data location a serialized graph reads (for checks). */
export function externalLocations(bytes: Uint8Array): string[] {
  const model = onnx.ModelProto.decode(bytes);
  const locs = new Set<string>();
  for (const t of model.graph?.initializer ?? []) for (const e of t.externalData ?? []) if (e.key === "location" && e.value) locs.add(e.value);
  return [...locs];
}
