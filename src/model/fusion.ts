/** The cross-modal part of `BridgeTowerModel`: link towers, `BridgeTowerBertCrossLayer`s and poolers. */
import type { Value } from "../onnx/graph.js";
import type { BridgeTowerConfig } from "./config.js";
import { crossAttention, shortCaption, type ShortCaption } from "./short-attention.js";
import { bertAttention, bertFeedForward } from "./text.js";
import { firstToken, layerNorm, linear, withRows, type Seq } from "./nn.js";
import type { Weights } from "./weights.js";

/**
 * `BridgeTowerBertCrossLayer`: self-attention, cross-attention over `enc`, feed-forward (built from text_config).
 * `query` (default: every row of `x`) selects the rows computed; keys and values always use every row of `x`.
 */
export function crossLayer(
  w: Weights, c: BridgeTowerConfig, x: Seq, enc: Seq, selfMask?: Value, crossMask?: Value, query: Seq = x, short?: ShortCaption,
): Value {
  const t = c.textConfig;
  const a = bertAttention(w.at("attention"), t, query, x, selfMask);
  // From the cross-attention on, the stream has the batch of `enc` (they differ only for a shared batch-1 `x`).
  const ca = crossAttention(w.at("crossattention"), t, withRows(query, a), enc, crossMask, short);
  return bertFeedForward(w, t, ca);
}

/** `BridgeTowerLinkTower`: LN(a + b), LN(a * scaled_factor + b) or LN(a * (1 - beta) + b * beta). */
export function linkTower(w: Weights, c: BridgeTowerConfig, hidden: Value, crossModal: Value): Value {
  const g = w.g;
  let sum: Value;
  switch (c.linkTowerType) {
    case "add":
      sum = g.op("Add", [hidden, crossModal]);
      break;
    case "scaled_add":
      sum = g.op("Add", [g.op("Mul", [hidden, w.get("scaled_factor", [])]), crossModal]);
      break;
    case "interpolate": {
      const beta = w.get("beta", []);
      sum = g.op("Add", [g.op("Mul", [hidden, g.op("Sub", [g.scalar(1), beta])]), g.op("Mul", [crossModal, beta])]);
      break;
    }
  }
  return layerNorm(w.at("LayerNorm"), sum, c.hiddenSize, c.layerNormEps);
}

/** `BridgeTowerPooler`: tanh(dense(x[:, 0])), given the first-token rows `[B, H]`. */
export function pooler(w: Weights, first: Value, hidden: number): Value {
  return w.g.op("Tanh", [linear(w.at("dense"), first, hidden, hidden)]);
}

export interface FusionOutputs {
  /** Outputs of every cross-modal layer pair (the last pair are the features, or their first token only). */
  crossText: Value[];
  crossImage: Value[];
  poolerOutput?: Value;
}

/**
 * What the last cross-modal layer must produce for each stream: every token (features, hidden states), only
 * the first token (the heads that read the poolers: ITM, ITC), or nothing (MLM reads only the text stream).
 * The numbers are the same; only unread rows are skipped.
 */
export type LastLayer = "full" | "first" | "none";

/**
 * The bridge of `BridgeTowerModel.forward`, cross-modal layers `from` to the last. `textIn[k]` / `imageIn[k]` are
 * the uni-modal outputs feeding cross layer k, already through `cross_modal_*_transform` + token type.
 * `imageIn[0]` may keep the image encoding's own batch (1 when one image is scored against many texts): the
 * first layer's image self-attention and the text stream's keys/values over the image then run once, not per pair.
 * With `from > 0`, `before` holds the outputs of layer `from - 1` (per pair); `to` stops early (the shared trunk).
 */
export function fusion(
  w: Weights, c: BridgeTowerConfig, textIn: Seq[], imageIn: Seq[], textMask: Value, last: { text: LastLayer; image: LastLayer },
  range: { from?: number; to?: number; before?: { text: Value; image: Value } } = {},
): FusionOutputs {
  const g = w.g;
  const H = c.hiddenSize;
  const eps = c.layerNormEps;
  const X = c.numHiddenLayers;
  const from = range.from ?? 0;
  const to = range.to ?? X;
  const crossText: Value[] = Array(X).fill("");
  const crossImage: Value[] = Array(X).fill("");
  if (range.before) [crossText[from - 1], crossImage[from - 1]] = [range.before.text, range.before.image];
  let t = textIn[from];
  let i = imageIn[from];
  const isShort = shortCaption(w, c.textConfig, t);
  const short = (side: ShortCaption["side"]) => (isShort ? { side, cond: isShort } : undefined);
  for (let k = from; k < to; k++) {
    if (k === 0) {
      // Layer 0: LayerNorm only, no link tower.
      t = withRows(textIn[0], layerNorm(w.at("cross_modal_text_layernorm"), textIn[0].rows, H, eps));
      i = withRows(imageIn[0], layerNorm(w.at("cross_modal_image_layernorm"), imageIn[0].rows, H, eps));
    } else {
      // Both streams at depth k read the same (t, i) pair.
      t = withRows(t, linkTower(w.at("cross_modal_text_link_tower", k - 1), c, textIn[k].rows, crossText[k - 1]));
      i = withRows(i, linkTower(w.at("cross_modal_image_link_tower", k - 1), c, imageIn[k].rows, crossImage[k - 1]));
    }
    const mode = (m: LastLayer) => (k < X - 1 ? "full" : m);
    // The image self-mask and the text cross-mask over image tokens are all zeros upstream: omitted.
    crossText[k] = crossLayerRows(w.at("cross_modal_text_layers", k), c, t, i, mode(last.text), textMask, undefined, short("queries"));
    crossImage[k] = crossLayerRows(w.at("cross_modal_image_layers", k), c, i, t, mode(last.image), undefined, textMask, short("keys"));
    i = { ...i, batch: t.batch }; // after layer 0 both streams are per pair
  }
  if (to < X || last.text === "none" || last.image === "none") return { crossText, crossImage };
  // The poolers read the first token: rows of the last layer, or the whole last layer when it is full.
  const cls = (s: Seq, v: Value, m: LastLayer) => (m === "first" ? v : firstToken(g, withRows(s, v)));
  const textPool = pooler(w.at("cross_modal_text_pooler"), cls(t, crossText[X - 1], last.text), H);
  const imagePool = pooler(w.at("cross_modal_image_pooler"), cls(i, crossImage[X - 1], last.image), H);
  const poolerOutput = g.op("Concat", [textPool, imagePool], { axis: 1 }); // [B, 2H], text first
  return { crossText, crossImage, poolerOutput };
}

/** A cross layer over every token, over the first token only (keys and values still use every token), or skipped. */
function crossLayerRows(
  w: Weights, c: BridgeTowerConfig, x: Seq, enc: Seq, m: LastLayer, selfMask?: Value, crossMask?: Value, short?: ShortCaption,
): Value {
  if (m === "none") return "";
  if (m === "full") return crossLayer(w, c, x, enc, selfMask, crossMask, x, short);
  const query = { ...x, rows: firstToken(w.g, x), len: w.g.ints([1]) };
  // One image query row over the caption: the plain projections of one row are cheaper than folding them.
  return crossLayer(w, c, x, enc, selfMask, crossMask, query, short?.side === "keys" ? undefined : short);
}
