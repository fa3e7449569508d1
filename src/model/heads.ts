/** The task heads: `BridgeTowerITMHead`, `BridgeTowerMLMHead`, `BridgeTowerContrastiveHead`s. */
import type { Value } from "../onnx/graph.js";
import type { BridgeTowerConfig } from "./config.js";
import { activation, layerNorm, linear } from "./nn.js";
import type { Weights } from "./weights.js";

/** `itm_score`: fc(pooler_output) → `[B, 2]`, index 1 = match. */
export function itmHead(w: Weights, c: BridgeTowerConfig, pooler: Value): Value {
  return linear(w.at("fc"), pooler, 2 * c.hiddenSize, 2);
}

/** `mlm_score`: transform (dense, act, LayerNorm), decoder without bias, plus a separate bias. Rows `[B*T, V]`. */
export function mlmHead(w: Weights, root: Weights, c: BridgeTowerConfig, textRows: Value): Value {
  const g = w.g;
  const H = c.hiddenSize;
  const V = c.textConfig.vocabSize;
  const t = w.at("transform");
  const h = layerNorm(t.at("LayerNorm"), activation(g, c.hiddenAct, linear(t.at("dense"), textRows, H, H)), H, c.layerNormEps);
  // Tied only when the top-level tie_word_embeddings is true (all official checkpoints: false).
  const decoder = c.tieWordEmbeddings ? root.at("bridgetower.text_model.embeddings.word_embeddings") : w.at("decoder");
  return g.op("Add", [linear(decoder, h, H, V, false), w.get("bias", [V])]);
}

/** `BridgeTowerContrastiveHead` then F.normalize(p=2, dim=-1, eps=1e-12). */
export function contrastiveHead(w: Weights, x: Value, inF: number, outF: number): Value {
  const g = w.g;
  const y = linear(w.at("fc"), x, inF, outF);
  const norm = g.op("Max", [g.op("ReduceL2", [y], { axes: [-1], keepdims: 1 }), g.scalar(1e-12)]);
  return g.op("Div", [y, norm]);
}
