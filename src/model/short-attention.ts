/**
 * Cross-attention between a long stream (442 image tokens at the large size) and a short one (a caption), with
 * the short side's projections folded into the attention. The same math as `BridgeTowerSelfAttention` over
 * `encoder_hidden_states`, reassociated:
 *   image queries over text keys:  (X Wq_hᵀ + bq_h) K_hᵀ = X (Wq_hᵀ K_hᵀ) + bq_h K_hᵀ, and the output projection
 *                                  Σ_h P_h V_h Wo_hᵀ = [P_1 .. P_n] [V_1 Wo_1ᵀ; ..; V_n Wo_nᵀ];
 *   text queries over image keys:  q_h (X Wk_hᵀ + bk_h)ᵀ = (q_h Wk_h) Xᵀ + const (the key bias shifts every score
 *                                  of a row alike, which softmax ignores), P_h (X Wv_hᵀ + bv_h) = (P_h X) Wv_hᵀ + bv_h
 *                                  (each row of P sums to 1).
 * The long side is then multiplied by heads × short_len columns instead of by a hidden × hidden weight: for a
 * 12-token caption at the large size, 192 instead of 1024, about 5x fewer operations for these products. It pays
 * only while heads × short_len < hidden, so the fusion graph picks this or the plain path per call (see fusion.ts).
 */
import type { Graph, Value } from "../onnx/graph.js";
import type { BridgeTowerTextConfig } from "./config.js";
import { attentionProbs, linear, mergeHeads, splitHeads, toBatchMajor, type Seq } from "./nn.js";
import { bertAttention, selfAttention, selfOutput } from "./text.js";
import type { Weights } from "./weights.js";

/** The caption's side of a cross-attention, and the per-call bool `[1]` "heads × caption length < hidden". */
export interface ShortCaption {
  side: "queries" | "keys";
  cond: Value;
}

/**
 * The condition under which folding pays, from the text stream's length; undefined in int8 mode (whose linear
 * layers are integer kernels: the folded products would be float).
 */
export function shortCaption(w: Weights, c: BridgeTowerTextConfig, text: Seq): Value | undefined {
  if (w.store.int8) return undefined;
  const g = w.g;
  return g.op("Less", [g.op("Mul", [text.len, g.ints([c.numAttentionHeads])]), g.ints([c.hiddenSize])]);
}

/**
 * `BridgeTowerAttention` of `x` over `enc` (as bertAttention), computed folded when `short.cond` holds at run time.
 */
export function crossAttention(w: Weights, c: BridgeTowerTextConfig, x: Seq, enc: Seq, mask?: Value, short?: ShortCaption): Value {
  if (!short) return bertAttention(w, c, x, enc, mask);
  const H = c.hiddenSize;
  const dense = (b: Weights, ctx: Value) => linear(b.at("output", "dense"), ctx, H, H);
  const folded = (g: Graph) => {
    const b = w.on(g);
    return [short.side === "keys" ? longOverShort(b, c, x, enc, mask) : dense(b, shortOverLong(b, c, x, enc, mask))];
  };
  const plain = (g: Graph) => {
    const b = w.on(g);
    return [dense(b, selfAttention(b.at("self"), c, x, enc, mask))];
  };
  const [out] = w.g.ifElse(short.cond, 1, folded, plain);
  return selfOutput(w.at("output"), c, x, enc, out);
}

/** A `[H_out, H_in]` weight as `[heads, d, H_in]`: row block h is head h's projection. */
function headRows(g: Graph, weight: Value, heads: number, hidden: number): Value {
  return g.op("Reshape", [weight, g.ints([heads, hidden / heads, hidden])]);
}

/** `[B, L, H]` as `[B, 1, L, H]`, to broadcast over heads. */
function overHeads(g: Graph, s: Seq): Value {
  return g.op("Unsqueeze", [toBatchMajor(g, s), g.ints([1])]);
}

/**
 * `attention.self` + `attention.output.dense` of long queries `x` over a short `enc`: returns dense(attn) rows
 * `[B*Lx, H]` (before the residual and LayerNorm), B the larger batch.
 */
function longOverShort(w: Weights, c: BridgeTowerTextConfig, x: Seq, enc: Seq, mask?: Value): Value {
  const g = w.g;
  const H = c.hiddenSize;
  const heads = c.numAttentionHeads;
  const self = w.at("self");
  const query = self.at("query");
  const kT = splitHeads(g, linear(self.at("key"), enc.rows, H, H), enc, heads, true); // [B, h, d, Lt]
  const v = splitHeads(g, linear(self.at("value"), enc.rows, H, H), enc, heads); // [B, h, Lt, d]
  const wqT = g.op("Transpose", [headRows(g, query.get("weight", [H, H]), heads, H)], { perm: [0, 2, 1] }); // [h, H, d]
  const m = g.op("MatMul", [wqT, kT]); // [B, h, H, Lt] = Wq_hᵀ K_hᵀ
  const bias = g.op("MatMul", [g.op("Reshape", [query.get("bias", [H]), g.ints([heads, 1, H / heads])]), kT]); // [B, h, 1, Lt]
  const probs = attentionProbs(g, g.op("Add", [g.op("MatMul", [overHeads(g, x), m]), bias]), H / heads, mask); // [B, h, Lx, Lt]
  const dense = w.at("output", "dense");
  const woT = headRows(g, g.op("Transpose", [dense.get("weight", [H, H])]), heads, H); // [h, d, H]: Wo_hᵀ
  const u = g.op("MatMul", [v, woT]); // [B, h, Lt, H] = V_h Wo_hᵀ
  const p = g.op("Reshape", [g.op("Transpose", [probs], { perm: [0, 2, 1, 3] }), g.ints([0, 0, -1])]); // [B, Lx, h*Lt]
  const out = g.op("Add", [g.op("MatMul", [p, g.op("Reshape", [u, g.ints([0, -1, H])])]), dense.get("bias", [H])]); // [B, Lx, H]
  return g.op("Reshape", [out, g.ints([-1, H])]);
}

/** `attention.self` of short queries `x` over a long `enc`: returns the context rows `[B*Lx, H]`, B the larger batch. */
function shortOverLong(w: Weights, c: BridgeTowerTextConfig, x: Seq, enc: Seq, mask?: Value): Value {
  const g = w.g;
  const H = c.hiddenSize;
  const heads = c.numAttentionHeads;
  const self = w.at("self");
  const q = splitHeads(g, linear(self.at("query"), x.rows, H, H), x, heads); // [B, h, Lx, d]
  const a = g.op("MatMul", [q, headRows(g, self.get("key.weight", [H, H]), heads, H)]); // [B, h, Lx, H] = q_h Wk_h
  const e = overHeads(g, enc); // [B, 1, Le, H]
  const probs = attentionProbs(g, g.op("MatMul", [a, g.op("Transpose", [e], { perm: [0, 1, 3, 2] })]), H / heads, mask); // [B, h, Lx, Le]
  const wvT = g.op("Transpose", [headRows(g, self.get("value.weight", [H, H]), heads, H)], { perm: [0, 2, 1] }); // [h, H, d]
  const vb = g.op("Reshape", [self.get("value.bias", [H]), g.ints([heads, 1, H / heads])]);
  const ctx = g.op("Add", [g.op("MatMul", [g.op("MatMul", [probs, e]), wvT]), vb]); // [B, h, Lx, d]
  return mergeHeads(g, ctx, H);
}
