/**
 * The RoBERTa text tower (`BridgeTowerTextModel`) and the BERT-style blocks the cross-modal layers reuse,
 * with the module and parameter names of modeling_bridgetower.py.
 */
import type { Value } from "../onnx/graph.js";
import type { BridgeTowerTextConfig } from "./config.js";
import { activation, attention, broadcastRows, layerNorm, linear, type Seq } from "./nn.js";
import type { Weights } from "./weights.js";

/** `BridgeTowerTextEmbeddings`: word + token type 0 + RoBERTa positions (pad-aware), then LayerNorm. */
export function textEmbeddings(w: Weights, c: BridgeTowerTextConfig, inputIds: Value): Value {
  const g = w.g;
  const H = c.hiddenSize;
  // create_position_ids_from_input_ids: cumsum(ids != pad) * (ids != pad) + pad
  const notPad = g.op("Cast", [g.op("Not", [g.op("Equal", [inputIds, g.constant([c.padTokenId], [], "int64")])])], { to: 7 });
  const cum = g.op("CumSum", [notPad, g.constant([1], [], "int64")]);
  const positionIds = g.op("Add", [g.op("Mul", [cum, notPad]), g.constant([c.padTokenId], [], "int64")]);
  const words = g.op("Gather", [w.get("word_embeddings.weight", [c.vocabSize, H]), inputIds]);
  const tokenType = g.op("Gather", [w.get("token_type_embeddings.weight", [c.typeVocabSize, H]), g.ints([0])]);
  const positions = g.op("Gather", [w.get("position_embeddings.weight", [c.maxPositionEmbeddings, H]), positionIds]);
  const e = g.op("Add", [g.op("Add", [words, tokenType]), positions]); // (word + type) + position, as upstream
  return layerNorm(w.at("LayerNorm"), e, H, c.layerNormEps);
}

/**
 * `BridgeTowerSelfAttention` + `BridgeTowerSelfOutput` = `BridgeTowerAttention`: LN(dense(attn(x, enc)) + x).
 * The result has the batch of `enc` when `x` is a shared batch-1 stream (see broadcastRows).
 */
export function bertAttention(w: Weights, c: BridgeTowerTextConfig, x: Seq, enc: Seq, mask?: Value): Value {
  const ctx = selfAttention(w.at("self"), c, x, enc, mask);
  return selfOutput(w.at("output"), c, x, enc, linear(w.at("output", "dense"), ctx, c.hiddenSize, c.hiddenSize));
}

/** `BridgeTowerSelfAttention`: context rows of queries `x` over keys and values from `enc`. */
export function selfAttention(w: Weights, c: BridgeTowerTextConfig, x: Seq, enc: Seq, mask?: Value): Value {
  const H = c.hiddenSize;
  const q = linear(w.at("query"), x.rows, H, H);
  const k = linear(w.at("key"), enc.rows, H, H);
  const v = linear(w.at("value"), enc.rows, H, H);
  return attention(w.g, q, k, v, x, enc, c.numAttentionHeads, mask);
}

/** The rest of `BridgeTowerSelfOutput` after its dense layer: LN(dense + x). */
export function selfOutput(w: Weights, c: BridgeTowerTextConfig, x: Seq, enc: Seq, dense: Value): Value {
  return layerNorm(w.at("LayerNorm"), w.g.op("Add", [dense, broadcastRows(w.g, x, enc)]), c.hiddenSize, c.layerNormEps);
}

/** `BridgeTowerIntermediate` + `BridgeTowerOutput`: LN(dense(act(dense(x))) + x). */
export function bertFeedForward(w: Weights, c: BridgeTowerTextConfig, x: Value): Value {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const h = activation(w.g, c.hiddenAct, linear(w.at("intermediate", "dense"), x, H, I));
  const out = w.at("output");
  return layerNorm(out.at("LayerNorm"), w.g.op("Add", [linear(out.at("dense"), h, I, H), x]), H, c.layerNormEps);
}

/** `BridgeTowerTextLayer` (post-LN BERT layer). */
export function textLayer(w: Weights, c: BridgeTowerTextConfig, x: Seq, mask: Value): Value {
  const a = bertAttention(w.at("attention"), c, x, x, mask);
  return bertFeedForward(w, c, a);
}
