/**
 * The graphs an export writes, built by the model's own part builders. A whole-model graph is the parts built into
 * one `Graph`: an `input()` of a name an earlier part produced reads that value, so text tower, vision tower, trunk
 * and head connect by their tensor names exactly as the library's sessions pass them.
 */
import { Graph } from "../onnx/graph.js";
import type { BridgeTowerConfig } from "../model/config.js";
import {
  buildContrastiveImageHead, buildContrastiveTextHead, buildHeadPart, buildTextPart, buildTrunkPart, buildVisionPart, hasTrunk,
} from "../model/parts.js";
import { Weights, type WeightStore } from "../model/weights.js";

export type ExportHead = "itm" | "mlm" | "itc";
export const EXPORT_HEADS: ExportHead[] = ["itm", "mlm", "itc"];

export interface GraphPlan {
  /** File name in the export folder. */
  file: string;
  graph: Graph;
  /** The graph outputs kept; the others become plain values (and are dropped when nothing reads them). */
  outputs: string[];
  /** Whether it is one of the self-contained `{head}.onnx` graphs. */
  whole: boolean;
}

/** `run()` reports the raw logit_scale parameter as `itc.logit_scale`; the graphs return it too. */
function addLogitScale(g: Graph, store: WeightStore): void {
  g.output(new Weights(g, store).get("logit_scale", []), "itc.logit_scale", "float", []);
}

/** input_ids, attention_mask, pixel_values → the head's outputs, in one graph. */
export function wholeGraph(store: WeightStore, c: BridgeTowerConfig, head: ExportHead): GraphPlan {
  const g = new Graph(`bridgetower_${head}`);
  buildTextPart(store, c, false, g);
  buildVisionPart(store, c, false, g);
  if (hasTrunk(c)) buildTrunkPart(store, c, false, g);
  const first = g.outputNames.length;
  buildHeadPart(store, c, head, false, g);
  if (head === "itc") addLogitScale(g, store);
  return { file: `${head}.onnx`, graph: g, outputs: g.outputNames.slice(first), whole: true };
}

/**
 * The separately runnable parts, in the order the library's engine builds them (so an int8 export plans the same
 * weight file as `dtype: "int8"` with these heads, and shares its cache entry).
 */
export function partGraphs(store: WeightStore, c: BridgeTowerConfig, heads: ExportHead[]): GraphPlan[] {
  const part = (file: string, graph: Graph): GraphPlan => ({ file, graph, outputs: graph.outputNames, whole: false });
  const plans = [part("text.onnx", buildTextPart(store, c)), part("vision.onnx", buildVisionPart(store, c))];
  if (hasTrunk(c)) plans.push(part("trunk.onnx", buildTrunkPart(store, c)));
  for (const h of heads) {
    const g = buildHeadPart(store, c, h);
    if (h === "itc") addLogitScale(g, store);
    plans.push(part(`head_${h}.onnx`, g));
  }
  if (heads.includes("itc"))
    plans.push(part("itc_text.onnx", buildContrastiveTextHead(store, c)), part("itc_image.onnx", buildContrastiveImageHead(store, c)));
  return plans;
}
