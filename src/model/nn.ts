/**
 * Graph building blocks shared by the towers and the fusion: Linear, LayerNorm, activations, attention.
 * Activations flow as rows `[B*L, H]` (so Linear is one Gemm with the PyTorch `[out, in]` weight used in
 * place via transB); attention reshapes to `[B, heads, L, d]` with the batch and length dims of a `Seq`.
 */
import { f, type Graph, type Value } from "../onnx/graph.js";
import type { Weights } from "./weights.js";

/** A sequence stream: rows `[B*L, H]` plus the int64 `[1]` tensors holding B and L. */
export interface Seq {
  rows: Value;
  batch: Value;
  len: Value;
  hidden: number;
}

export const withRows = (s: Seq, rows: Value): Seq => ({ ...s, rows });

/**
 * Rows of `s` broadcast to the batch of `to` (`s.batch` is 1 or equal to it). Streams whose batches are the same
 * graph value need nothing; a batch-1 image encoding fused with many texts shares its first layer this way.
 */
export function broadcastRows(g: Graph, s: Seq, to: Seq, rows: Value = s.rows): Value {
  if (s.batch === to.batch) return rows;
  const y = g.op("Expand", [toBatchMajor(g, s, rows), g.op("Concat", [to.batch, g.ints([1, 1])], { axis: 0 })]);
  return g.op("Reshape", [y, g.ints([-1, s.hidden])]);
}

/**
 * `nn.Linear(inF, outF)`: y = x Wᵀ + b, with the parameter names `weight` / `bias` (or others, e.g. `in_proj_*`).
 * fp32: one Gemm using the `[out, in]` weight in place. int8 mode: DynamicQuantizeMatMul (x quantized per call,
 * weights per output channel), onnxruntime's integer kernels.
 */
export function linear(w: Weights, x: Value, inF: number, outF: number, bias: string | false = "bias", weight = "weight"): Value {
  const b = bias ? w.get(bias, [outF]) : "";
  if (w.store.int8) {
    const { q, scale } = w.getInt8(weight, outF, inF);
    return w.g.op("DynamicQuantizeMatMul", [x, q, scale, "", b], {}, "com.microsoft");
  }
  return w.g.op("Gemm", b ? [x, w.get(weight, [outF, inF]), b] : [x, w.get(weight, [outF, inF])], { transB: 1 });
}

/** `nn.LayerNorm(H, eps)` over the last axis. */
export function layerNorm(w: Weights, x: Value, hidden: number, eps: number): Value {
  return w.g.op("LayerNormalization", [x, w.get("weight", [hidden]), w.get("bias", [hidden])], { axis: -1, epsilon: f(eps) });
}

/** transformers' ACT2FN, written as the same formulas (onnxruntime fuses the erf GELU pattern). */
export function activation(g: Graph, name: string, x: Value): Value {
  const mul = (a: Value, b: Value) => g.op("Mul", [a, b]);
  const add = (a: Value, b: Value) => g.op("Add", [a, b]);
  switch (name) {
    case "gelu":
    case "gelu_python": // 0.5 x (1 + erf(x / sqrt 2))
      return mul(mul(x, g.scalar(0.5)), add(g.scalar(1), g.op("Erf", [g.op("Div", [x, g.scalar(Math.SQRT2)])])));
    case "gelu_new":
    case "gelu_pytorch_tanh": {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const x3 = g.op("Pow", [x, g.scalar(3)]);
      const inner = mul(g.scalar(Math.sqrt(2 / Math.PI)), add(x, mul(g.scalar(0.044715), x3)));
      return mul(mul(g.scalar(0.5), x), add(g.scalar(1), g.op("Tanh", [inner])));
    }
    case "gelu_fast": {
      // 0.5 x (1 + tanh(x * 0.7978845608 * (1 + 0.044715 x^2)))
      const inner = mul(mul(x, g.scalar(0.7978845608)), add(g.scalar(1), mul(g.scalar(0.044715), mul(x, x))));
      return mul(mul(g.scalar(0.5), x), add(g.scalar(1), g.op("Tanh", [inner])));
    }
    case "quick_gelu":
      return mul(x, g.op("Sigmoid", [mul(g.scalar(1.702), x)]));
    case "relu":
      return g.op("Relu", [x]);
    case "silu":
    case "swish":
      return mul(x, g.op("Sigmoid", [x]));
    case "tanh":
      return g.op("Tanh", [x]);
    case "sigmoid":
      return g.op("Sigmoid", [x]);
    default:
      throw new Error(`unsupported activation ${name}`); // configs are validated before graphs are built
  }
}

/** `[B*L, H]` rows to `[B, heads, L, d]` (or `[B, heads, d, L]` with `keysT`). */
export function splitHeads(g: Graph, x: Value, s: Seq, heads: number, keysT = false): Value {
  const shape = g.op("Concat", [s.batch, s.len, g.ints([heads, s.hidden / heads])], { axis: 0 });
  return g.op("Transpose", [g.op("Reshape", [x, shape])], { perm: keysT ? [0, 2, 3, 1] : [0, 2, 1, 3] });
}

/**
 * Scaled dot-product attention of queries `q` (rows of stream `qs`) over keys/values `k`, `v` (rows of
 * stream `ks`), with an optional additive mask `[B, 1, 1, Lk]`. Returns context rows `[B*Lq, H]`, B being the
 * larger of the two streams' batches (the other one is 1 or equal).
 * Without a mask (the vision tower, image self-attention) it is onnxruntime's fused MultiHeadAttention
 * (measured 2% faster on the vision tower, equal within 3e-6). With a mask it is written out as transformers
 * computes it: scores / sqrt(d) + mask, softmax, times v (the mask holds finfo(float32).min, which the fused
 * kernel's mask_filter_value does not reproduce).
 */
export function attention(g: Graph, q: Value, k: Value, v: Value, qs: Seq, ks: Seq, heads: number, mask?: Value): Value {
  const d = qs.hidden / heads;
  if (!mask) {
    const kv = (x: Value) => toBatchMajor(g, { ...ks, batch: qs.batch }, broadcastRows(g, ks, qs, x));
    const out = g.op("MultiHeadAttention", [toBatchMajor(g, qs, q), kv(k), kv(v)], { num_heads: heads, scale: f(1 / Math.sqrt(d)) }, "com.microsoft");
    return g.op("Reshape", [out, g.ints([-1, qs.hidden])]);
  }
  const probs = attentionProbs(g, g.op("MatMul", [splitHeads(g, q, qs, heads), splitHeads(g, k, ks, heads, true)]), d, mask); // [B, h, Lq, Lk]
  return mergeHeads(g, g.op("MatMul", [probs, splitHeads(g, v, ks, heads)]), qs.hidden);
}

/** softmax(scores / sqrt(d) + mask) over the keys, as transformers computes it. */
export function attentionProbs(g: Graph, scores: Value, d: number, mask?: Value): Value {
  const scaled = g.op("Div", [scores, g.scalar(Math.sqrt(d))]);
  return g.op("Softmax", [mask ? g.op("Add", [scaled, mask]) : scaled], { axis: -1 });
}

/** Per-head context `[B, heads, L, d]` back to rows `[B*L, hidden]`. */
export function mergeHeads(g: Graph, ctx: Value, hidden: number): Value {
  return g.op("Reshape", [g.op("Transpose", [ctx], { perm: [0, 2, 1, 3] }), g.ints([-1, hidden])]);
}

/** Additive attention mask `(1 - mask) * finfo(float32).min`, shape `[B, 1, 1, L]`, from an int64 `[B, L]` mask. */
export function extendedAttentionMask(g: Graph, mask: Value): Value {
  const m = g.op("Cast", [mask], { to: 1 });
  const ext = g.op("Mul", [g.op("Sub", [g.scalar(1), m]), g.scalar(-3.4028234663852886e38)]);
  return g.op("Unsqueeze", [ext, g.ints([1, 2])]);
}

/** Rows `[B*L, H]` back to `[B, L, H]`. */
export function toBatchMajor(g: Graph, s: Seq, rows: Value = s.rows): Value {
  return g.op("Reshape", [rows, g.op("Concat", [s.batch, s.len, g.ints([s.hidden])], { axis: 0 })]);
}

/** `x[:, 0]` of rows: the first token of each sequence, `[B, H]`. */
export function firstToken(g: Graph, s: Seq, rows: Value = s.rows): Value {
  return g.op("Gather", [toBatchMajor(g, s, rows), g.constant([0], [], "int64")], { axis: 1 });
}
