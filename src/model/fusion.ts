/** The cross-modal part of `BridgeTowerModel`: link towers, `BridgeTowerBertCrossLayer`s and poolers. */
import type { Value } from "../onnx/graph.js";
import type { BridgeTowerConfig } from "./config.js";
import { bertAttention, bertFeedForward } from "./text.js";
import { firstToken, layerNorm, linear, withRows, type Seq } from "./nn.js";
import type { Weights } from "./weights.js";

/** `BridgeTowerBertCrossLayer`: self-attention, cross-attention over `enc`, feed-forward (built from text_config). */
export function crossLayer(w: Weights, c: BridgeTowerConfig, x: Seq, enc: Seq, selfMask?: Value, crossMask?: Value): Value {
  const t = c.textConfig;
  const a = bertAttention(w.at("attention"), t, x, x, selfMask);
  const ca = bertAttention(w.at("crossattention"), t, withRows(x, a), enc, crossMask);
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

/** `BridgeTowerPooler`: tanh(dense(x[:, 0])). */
export function pooler(w: Weights, s: Seq, hidden: number): Value {
  return w.g.op("Tanh", [linear(w.at("dense"), firstToken(w.g, s), hidden, hidden)]);
}

export interface FusionOutputs {
  /** Outputs of every cross-modal layer pair (the last pair are the features). */
  crossText: Value[];
  crossImage: Value[];
  poolerOutput: Value;
}

/**
 * The bridge of `BridgeTowerModel.forward` from the first cross-modal layer on. `textIn[k]` / `imageIn[k]` are
 * the uni-modal outputs feeding cross layer k, already through `cross_modal_*_transform` + token type.
 */
export function fusion(w: Weights, c: BridgeTowerConfig, textIn: Seq[], imageIn: Seq[], textMask: Value): FusionOutputs {
  const H = c.hiddenSize;
  const eps = c.layerNormEps;
  // Layer 0: LayerNorm only, no link tower.
  let t = withRows(textIn[0], layerNorm(w.at("cross_modal_text_layernorm"), textIn[0].rows, H, eps));
  let i = withRows(imageIn[0], layerNorm(w.at("cross_modal_image_layernorm"), imageIn[0].rows, H, eps));
  const crossText: Value[] = [];
  const crossImage: Value[] = [];
  for (let k = 0; k < c.numHiddenLayers; k++) {
    if (k > 0) {
      // Both streams at depth k read the same (t, i) pair.
      const tIn = linkTower(w.at("cross_modal_text_link_tower", k - 1), c, textIn[k].rows, crossText[k - 1]);
      const iIn = linkTower(w.at("cross_modal_image_link_tower", k - 1), c, imageIn[k].rows, crossImage[k - 1]);
      t = withRows(t, tIn);
      i = withRows(i, iIn);
    }
    // The image self-mask and the text cross-mask over image tokens are all zeros upstream: omitted.
    crossText.push(crossLayer(w.at("cross_modal_text_layers", k), c, t, i, textMask, undefined));
    crossImage.push(crossLayer(w.at("cross_modal_image_layers", k), c, i, t, undefined, textMask));
  }
  const last = c.numHiddenLayers - 1;
  const textPool = pooler(w.at("cross_modal_text_pooler"), withRows(t, crossText[last]), H);
  const imagePool = pooler(w.at("cross_modal_image_pooler"), withRows(i, crossImage[last]), H);
  const poolerOutput = w.g.op("Concat", [textPool, imagePool], { axis: 1 }); // [B, 2H], text first
  return { crossText, crossImage, poolerOutput };
}

