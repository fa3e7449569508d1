/**
 * The model as three separately runnable graphs, so a task can encode an image (or a text) once and
 * reuse it: the text tower, the vision tower (each ending in the cross-modal transform + token type that
 * feeds the bridge) and the fusion with a head. Together they compute `BridgeTowerModel.forward`.
 */
import { Graph, type Value } from "../onnx/graph.js";
import { numImageTokens, splitIndex, type BridgeTowerConfig } from "./config.js";
import { contrastiveHead, itmHead, mlmHead } from "./heads.js";
import { fusion, type LastLayer } from "./fusion.js";
import { broadcastRows, extendedAttentionMask, firstToken, layerNorm, linear, toBatchMajor, type Seq } from "./nn.js";
import { textEmbeddings, textLayer } from "./text.js";
import { residualAttention, visionEmbeddings } from "./vision.js";
import { ShapeRecorder, Weights, type ParameterStore } from "./params.js";

export type Head = "none" | "itm" | "mlm" | "itc";

/** Names of the tensors passed between the parts. */
export const textBridge = (k: number) => `text_bridge.${k}`;
export const imageBridge = (k: number) => `image_bridge.${k}`;
export const TEXT_CLS = "text_cls";

function dim(g: Graph, x: Value, i: number): Value {
  return g.op("Slice", [g.op("Shape", [x]), g.ints([i]), g.ints([i + 1])]);
}

/** Text tower: input_ids, attention_mask → `text_bridge.k` `[B, T, H]` for each cross layer k, and `text_cls`. */
export function buildTextPart(store: ParameterStore, c: BridgeTowerConfig, hiddenStates = false, into?: Graph): Graph {
  const g = into ?? new Graph("bridgetower_text");
  const tc = c.textConfig;
  const H = tc.hiddenSize;
  const ids = g.input("input_ids", "int64", ["batch", "text_len"]);
  const mask = g.input("attention_mask", "int64", ["batch", "text_len"]);
  const w = new Weights(g, store, "bridgetower");
  const seq: Seq = { rows: "", batch: dim(g, ids, 0), len: dim(g, ids, 1), hidden: H };
  const ext = extendedAttentionMask(g, mask);
  const tm = w.at("text_model");
  const hs = [g.op("Reshape", [textEmbeddings(tm.at("embeddings"), tc, ids), g.ints([-1, H])])];
  for (let l = 0; l < tc.numHiddenLayers; l++) hs.push(textLayer(tm.at("encoder", "layer", l), tc, { ...seq, rows: hs[l] }, ext));
  const tokenType0 = g.op("Gather", [w.get("token_type_embeddings.weight", [2, c.hiddenSize]), g.ints([0])]);
  const S = splitIndex(c);
  for (let k = 0; k < c.numHiddenLayers; k++) {
    const t = g.op("Add", [linear(w.at("cross_modal_text_transform"), hs[S + k], H, c.hiddenSize), tokenType0]);
    g.output(toBatchMajor(g, { ...seq, hidden: c.hiddenSize }, t), textBridge(k), "float", ["batch", "text_len", c.hiddenSize]);
  }
  // The contrastive head reads the last uni-modal text layer's first token.
  g.output(firstToken(g, seq, hs[tc.numHiddenLayers]), TEXT_CLS, "float", ["batch", H]);
  if (hiddenStates) hs.forEach((h, i) => g.output(toBatchMajor(g, seq, h), `hidden_states.text.${i}`, "float"));
  return g;
}

/** Vision tower: pixel_values → `image_bridge.k` `[B, N, H]` for each cross layer k. */
export function buildVisionPart(store: ParameterStore, c: BridgeTowerConfig, hiddenStates = false, into?: Graph): Graph {
  const g = into ?? new Graph("bridgetower_vision");
  const vc = c.visionConfig;
  const H = vc.hiddenSize;
  const N = numImageTokens(vc);
  const pixels = g.input("pixel_values", "float", ["batch", vc.numChannels, vc.imageSize, vc.imageSize]);
  const w = new Weights(g, store, "bridgetower");
  const visual = w.at("vision_model", "visual");
  const batch = dim(g, pixels, 0);
  const seq: Seq = { rows: "", batch, len: g.ints([N]), hidden: H };
  const hs = [g.op("Reshape", [visionEmbeddings(visual, vc, pixels, batch), g.ints([-1, H])])];
  // The bridge follows the text depth: vision blocks beyond it never run (as upstream).
  for (let l = 0; l < c.textConfig.numHiddenLayers; l++)
    hs.push(residualAttention(visual.at("transformer", "resblocks", l), vc, { ...seq, rows: hs[l] }));
  const tokenType1 = g.op("Gather", [w.get("token_type_embeddings.weight", [2, c.hiddenSize]), g.ints([1])]);
  const S = splitIndex(c);
  for (let k = 0; k < c.numHiddenLayers; k++) {
    // forward_post (shared ln_post), then the image transform + token type 1.
    const post = layerNorm(visual.at("ln_post"), hs[S + k], H, vc.layerNormEps);
    const i = g.op("Add", [linear(w.at("cross_modal_image_transform"), post, H, c.hiddenSize), tokenType1]);
    g.output(toBatchMajor(g, { ...seq, hidden: c.hiddenSize }, i), imageBridge(k), "float", ["batch", N, c.hiddenSize]);
  }
  // transformers returns vision hidden states token-major [N, B, H] (nn.MultiheadAttention layout).
  if (hiddenStates)
    hs.forEach((h, i) => g.output(g.op("Transpose", [toBatchMajor(g, seq, h)], { perm: [1, 0, 2] }), `hidden_states.image.${i}`, "float"));
  return g;
}

/** The cross-modal layers before the last, shared by every head: `cross.{text,image}.k` for k < X - 1. */
const trunkDepth = (c: BridgeTowerConfig) => c.numHiddenLayers - 1;
export const crossText = (k: number) => `cross.text.${k}`;
export const crossImage = (k: number) => `cross.image.${k}`;

/**
 * The graph inputs of cross layers `from`..`to - 1`, broadcast to the pair batch. A text or image encoding of
 * batch 1 is paired with every item of the other (one image, many texts and the other way round) inside the
 * graph, so callers never copy encodings; from layer 1 on, the previous layer's outputs set the pair batch.
 */
function fusionInputs(g: Graph, c: BridgeTowerConfig, from: number, to: number) {
  const H = c.hiddenSize;
  const N = numImageTokens(c.visionConfig);
  const textMask = g.input("attention_mask", "int64", ["text_batch", "text_len"]);
  const image0 = g.input(imageBridge(from), "float", ["image_batch", N, H]);
  // Expand broadcasts both ways: [Bt, ...] against [B, 1, ...] gives [max(Bt, B), ...] when one of them is 1.
  const expand = (x: Value, batch: Value, rank: number) => g.op("Expand", [x, g.op("Concat", [batch, g.ints(Array(rank - 1).fill(1))], { axis: 0 })]);
  const before = from === 0 ? undefined : {
    text: g.input(crossText(from - 1), "float", ["batch", "text_len", H]),
    image: g.input(crossImage(from - 1), "float", ["batch", N, H]),
  };
  const imageBatch = dim(g, image0, 0);
  const pairBatch = before ? dim(g, before.text, 0) : imageBatch;
  const mask = expand(textMask, pairBatch, 2);
  const tSeq: Seq = { rows: "", batch: dim(g, mask, 0), len: dim(g, mask, 1), hidden: H };
  const iSeq: Seq = { ...tSeq, len: g.ints([N]) };
  const textIn: Seq[] = [];
  const imageIn: Seq[] = [];
  const rows = (x: Value) => g.op("Reshape", [x, g.ints([-1, H])]);
  for (let k = from; k < to; k++) {
    textIn[k] = { ...tSeq, rows: rows(expand(g.input(textBridge(k), "float", ["text_batch", "text_len", H]), tSeq.batch, 3)) };
    // Layer 0's image input keeps its own batch (see fusion); the others are per pair.
    const i = k === 0 ? image0 : expand(k === from ? image0 : g.input(imageBridge(k), "float", ["image_batch", N, H]), tSeq.batch, 3);
    imageIn[k] = { ...iSeq, batch: k === 0 ? imageBatch : iSeq.batch, rows: rows(i) };
  }
  const beforeRows = before && { text: rows(before.text), image: rows(before.image) };
  return { mask, tSeq, iSeq, textIn, imageIn, before: beforeRows };
}

/** The shared trunk: bridge inputs of layers 0..X-2 and attention_mask → `cross.{text,image}.{X-2}` (all k with hidden states). */
export function buildTrunkPart(store: ParameterStore, c: BridgeTowerConfig, hiddenStates = false, into?: Graph): Graph {
  const g = into ?? new Graph("bridgetower_cross_trunk");
  const D = trunkDepth(c);
  const { mask, tSeq, iSeq, textIn, imageIn } = fusionInputs(g, c, 0, D);
  const out = fusion(new Weights(g, store, "bridgetower"), c, textIn, imageIn, extendedAttentionMask(g, mask), { text: "full", image: "full" }, { to: D });
  for (let k = hiddenStates ? 0 : D - 1; k < D; k++) {
    g.output(toBatchMajor(g, tSeq, out.crossText[k]), crossText(k), "float", ["batch", "text_len", c.hiddenSize]);
    g.output(toBatchMajor(g, iSeq, out.crossImage[k]), crossImage(k), "float", ["batch", numImageTokens(c.visionConfig), c.hiddenSize]);
  }
  return g;
}

/** Whether the model has a trunk part (one cross layer only: the head part does it all). */
export const hasTrunk = (c: BridgeTowerConfig) => trunkDepth(c) > 0;

/**
 * The last cross-modal layer, the poolers and one head: features, pooler_output and the head's outputs. Each
 * head computes only the rows of the last layer it reads, so heads have parts of their own after the trunk.
 */
export function buildHeadPart(store: ParameterStore, c: BridgeTowerConfig, head: Head, hiddenStates = false, into?: Graph): Graph {
  const g = into ?? new Graph(`bridgetower_head_${head}`);
  const H = c.hiddenSize;
  const N = numImageTokens(c.visionConfig);
  const X = c.numHiddenLayers;
  const { mask, tSeq, iSeq, textIn, imageIn, before } = fusionInputs(g, c, X - 1, X);
  const root = new Weights(g, store);
  const w = root.at("bridgetower");
  // Features of every token only where they are returned or read: the heads need less of the last layer.
  const full = head === "none" || hiddenStates;
  const last: { text: LastLayer; image: LastLayer } = full
    ? { text: "full", image: "full" }
    : head === "mlm" ? { text: "full", image: "none" } : { text: "first", image: "first" };
  const out = fusion(w, c, textIn, imageIn, extendedAttentionMask(g, mask), last, { from: X - 1, before });
  if (last.text === "full") g.output(toBatchMajor(g, tSeq, out.crossText[X - 1]), "text_features", "float", ["batch", "text_len", H]);
  if (last.image === "full") g.output(toBatchMajor(g, iSeq, out.crossImage[X - 1]), "image_features", "float", ["batch", N, H]);
  if (out.poolerOutput) g.output(out.poolerOutput, "pooler_output", "float", ["batch", 2 * H]);
  if (hiddenStates) {
    g.output(toBatchMajor(g, tSeq, out.crossText[X - 1]), crossText(X - 1), "float");
    g.output(toBatchMajor(g, iSeq, out.crossImage[X - 1]), crossImage(X - 1), "float");
  }
  if (head === "itm") g.output(itmHead(root.at("itm_score"), c, out.poolerOutput!), "itm.logits", "float", ["batch", 2]);
  if (head === "mlm") {
    const V = c.textConfig.vocabSize;
    const logits = mlmHead(root.at("mlm_score"), root, c, out.crossText[X - 1]);
    g.output(toBatchMajor(g, { ...tSeq, hidden: V }, logits), "mlm.logits", "float", ["batch", "text_len", V]);
  }
  if (head === "itc") {
    const lastImage = imageIn[X - 1];
    buildContrastive(g, root, c, out.poolerOutput!, { ...tSeq, len: lastImage.len, rows: broadcastRows(g, lastImage, tSeq) });
  }
  return g;
}

/** The contrastive text embedding alone, from the text tower's `text_cls`: `[B, C]`. */
export function buildContrastiveTextHead(store: ParameterStore, c: BridgeTowerConfig): Graph {
  const g = new Graph("bridgetower_itc_text");
  const Ht = c.textConfig.hiddenSize;
  const textCls = g.input(TEXT_CLS, "float", ["batch", Ht]);
  g.output(contrastiveHead(new Weights(g, store, "itc_text_head"), textCls, Ht, c.contrastiveHiddenSize!), "itc.text_embeds", "float", ["batch", c.contrastiveHiddenSize!]);
  return g;
}

/** The contrastive image embedding alone, from the vision tower's last bridge output: `[B, C]`. */
export function buildContrastiveImageHead(store: ParameterStore, c: BridgeTowerConfig): Graph {
  const g = new Graph("bridgetower_itc_image");
  const H = c.hiddenSize;
  const N = numImageTokens(c.visionConfig);
  const last = g.input(imageBridge(c.numHiddenLayers - 1), "float", ["batch", N, H]);
  const cls = g.op("Gather", [last, g.constant([0], [], "int64")], { axis: 1 });
  g.output(contrastiveHead(new Weights(g, store, "itc_image_head"), cls, H, c.contrastiveHiddenSize!), "itc.image_embeds", "float", ["batch", c.contrastiveHiddenSize!]);
  return g;
}

/** `BridgeTowerForContrastiveLearning`'s embeddings, their stack and the similarity matrices. */
function buildContrastive(g: Graph, root: Weights, c: BridgeTowerConfig, pooler: Value, lastImage: Seq): void {
  const H = c.hiddenSize;
  const C = c.contrastiveHiddenSize!;
  const cls = g.input(TEXT_CLS, "float", ["text_batch", c.textConfig.hiddenSize]);
  const textCls = g.op("Expand", [cls, g.op("Concat", [lastImage.batch, g.ints([1])], { axis: 0 })]);
  const t = contrastiveHead(root.at("itc_text_head"), textCls, c.textConfig.hiddenSize, C);
  const i = contrastiveHead(root.at("itc_image_head"), firstToken(g, lastImage), H, C);
  const x = contrastiveHead(root.at("itc_cross_modal_head"), pooler, 2 * H, C);
  const unsq = (v: Value) => g.op("Unsqueeze", [v, g.ints([1])]);
  g.output(g.op("Concat", [unsq(t), unsq(i), unsq(x)], { axis: 1 }), "itc.logits", "float", ["batch", 3, C]);
  g.output(t, "itc.text_embeds", "float", ["batch", C]);
  g.output(i, "itc.image_embeds", "float", ["batch", C]);
  g.output(x, "itc.cross_embeds", "float", ["batch", C]);
  const scale = g.op("Exp", [root.get("logit_scale", [])]);
  const sim = (a: Value, b: Value) => g.op("Mul", [g.op("MatMul", [a, g.op("Transpose", [b], { perm: [1, 0] })]), scale]);
  g.output(scale, "itc.logit_scale_exp", "float", []);
  g.output(sim(t, i), "itc.logits_text_to_image", "float", ["batch", "batch"]);
  g.output(sim(t, x), "itc.logits_text_to_cross", "float", ["batch", "batch"]);
  g.output(sim(i, x), "itc.logits_image_to_cross", "float", ["batch", "batch"]);
}

/** Every parameter (name → shape) a checkpoint with these heads holds, including upstream's unused text pooler. */
export function parameterShapes(config: BridgeTowerConfig, heads: Head[]): Map<string, number[]> {
  const store = new ShapeRecorder();
  buildTextPart(store, config);
  buildVisionPart(store, config);
  if (hasTrunk(config)) buildTrunkPart(store, config);
  for (const h of heads) buildHeadPart(store, config, h);
  const H = config.textConfig.hiddenSize;
  store.requested.set("bridgetower.text_model.pooler.dense.weight", [H, H]);
  store.requested.set("bridgetower.text_model.pooler.dense.bias", [H]);
  return store.requested;
}
