/** The CLIP ViT vision tower (`BridgeTowerVisionModel.visual`), with the names of modeling_bridgetower.py. */
import type { Value } from "../onnx/graph.js";
import { numImageTokens, type BridgeTowerVisionConfig } from "./config.js";
import { activation, attention, layerNorm, linear, type Seq } from "./nn.js";
import type { Weights } from "./weights.js";

/** `BridgeTowerVisionEmbeddings` + `ln_pre`: patch conv, class token, positions; returns `[B, N, Hv]`. */
export function visionEmbeddings(w: Weights, c: BridgeTowerVisionConfig, pixelValues: Value, batch: Value): Value {
  const g = w.g;
  const H = c.hiddenSize;
  const P = c.patchSize;
  const N = numImageTokens(c);
  const e = w.at("embeddings");
  const patches = g.op("Conv", [pixelValues, e.get("patch_embedding.weight", [H, c.numChannels, P, P])], {
    kernel_shape: [P, P],
    strides: [P, P],
  }); // [B, H, G, G]
  const flat = g.op("Transpose", [g.op("Reshape", [patches, g.ints([0, H, -1])])], { perm: [0, 2, 1] }); // [B, G*G, H]
  const cls = g.op("Expand", [
    g.op("Reshape", [e.get("class_embedding", [H]), g.ints([1, 1, H])]),
    g.op("Concat", [batch, g.ints([1, H])], { axis: 0 }),
  ]);
  const x = g.op("Add", [g.op("Concat", [cls, flat], { axis: 1 }), e.get("position_embedding.weight", [N, H])]);
  return layerNorm(w.at("ln_pre"), x, H, c.layerNormEps);
}

/** `BridgeTowerResidualAttention` (pre-LN CLIP block) on rows `[B*N, Hv]`. */
export function residualAttention(w: Weights, c: BridgeTowerVisionConfig, x: Seq): Value {
  const g = w.g;
  const H = c.hiddenSize;
  const eps = c.layerNormEps;
  // nn.MultiheadAttention: in_proj rows [0:H] = q, [H:2H] = k, [2H:3H] = v; hidden // 64 heads.
  const attn = w.at("attn");
  const qkv = linear(attn, layerNorm(w.at("ln_1"), x.rows, H, eps), H, 3 * H, "in_proj_bias", "in_proj_weight");
  const [q, k, v] = g.opN("Split", [qkv, g.ints([H, H, H])], 3, { axis: 1 });
  const ctx = attention(g, q, k, v, x, x, H / 64);
  const r = g.op("Add", [x.rows, linear(attn.at("out_proj"), ctx, H, H)]);
  const mlp = w.at("mlp");
  const hidden = activation(g, "quick_gelu", linear(mlp.at("c_fc"), layerNorm(w.at("ln_2"), r, H, eps), H, 4 * H));
  return g.op("Add", [r, linear(mlp.at("c_proj"), hidden, 4 * H, H)]);
}
