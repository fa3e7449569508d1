/**
 * The public model classes, named as in transformers: `BridgeTowerModel`, `BridgeTowerForImageAndTextRetrieval`,
 * `BridgeTowerForMaskedLM`, `BridgeTowerForContrastiveLearning`. Each runs three onnxruntime sessions built
 * from the config at load time (text tower, vision tower, fusion + head; see parts.ts).
 */
import type ort from "onnxruntime-node";
import { InputError, UnsupportedCheckpointError } from "../errors.js";
import { dirname } from "node:path";
import { hubFile, isLocalFolder, resolveModel, type HubOptions } from "../hub/index.js";
import { stderrProgress } from "../hub/progress.js";
import { openCheckpoint } from "../io/checkpoint.js";
import type { Graph } from "../onnx/graph.js";
import { createSession, OrtTensorCtor, type RuntimeOptions } from "../runtime/session.js";
import { contrastiveUnsupportedReason, loadConfig, numImageTokens, type BridgeTowerConfig } from "./config.js";
import { crossEntropy } from "./loss.js";
import { defaultCacheRoot } from "./quantize.js";
import {
  buildContrastiveImageHead, buildContrastiveTextHead, buildFusionPart, buildTextPart, buildVisionPart, imageBridge,
  parameterShapes, type Head,
} from "./parts.js";
import type { Tensor } from "./tensor.js";
import { WeightStore } from "./weights.js";

export interface LoadOptions extends RuntimeOptions, HubOptions {
  /**
   * "fp32" (default), or "int8": linear layers run on onnxruntime's integer kernels with weights quantized per
   * output channel (written once to a cache file under `int8CacheDir`), activations quantized per call.
   */
  dtype?: "fp32" | "int8";
  /** Where int8 weight files are kept (default $BRIDGETOWER_CACHE or ~/.cache/bridgetower). */
  int8CacheDir?: string;
  /** Called with warnings such as unexpected checkpoint keys (default: console.warn). */
  onWarning?: (message: string) => void;
}

export interface ModelInputs {
  inputIds: Tensor<BigInt64Array>;
  /** Defaults to all ones. */
  attentionMask?: Tensor<BigInt64Array>;
  pixelValues: Tensor<Float32Array>;
  /** Accepted and ignored, as transformers ignores it. */
  pixelMask?: Tensor;
  labels?: Tensor<BigInt64Array>;
}

export type Outputs = Record<string, Tensor>;
/** Outputs of the text (or vision) tower, the cacheable input of `fuse`. */
export type Encoding = Record<string, Tensor>;

type Part = "text" | "vision" | "fusion" | "itc_text" | "itc_image";

const HEAD_KEYS: Record<Exclude<Head, "none">, string[]> = {
  itm: ["itm_score."],
  mlm: ["mlm_score."],
  itc: ["itc_text_head.", "itc_image_head.", "itc_cross_modal_head.", "logit_scale"],
};
const HEAD_NAMES: Record<Exclude<Head, "none">, string> = {
  itm: "image-text matching (ITM) head `itm_score`, found in the *-itm-mlm checkpoints",
  mlm: "masked-language-modeling (MLM) head `mlm_score`, found in the *-itm-mlm checkpoints",
  itc: "contrastive (ITC) heads `itc_*_head` and `logit_scale`, found in BridgeTower/bridgetower-large-itm-mlm-itc",
};
/** Checkpoint keys that exist upstream but no forward pass reads. */
const KNOWN_UNUSED = [
  /^bridgetower\.text_model\.pooler\./,
  /\.ln_separate\./,
  /link_tower\.(LayerNorm|beta|scaled_factor)/,
  // vision blocks beyond the text depth (they exist but never run, as upstream)
  /^bridgetower\.vision_model\.visual\.transformer\.resblocks\.\d+\.(attn\.(in_proj_weight|in_proj_bias|out_proj\.(weight|bias))|ln_[12]\.(weight|bias)|mlp\.c_(fc|proj)\.(weight|bias))$/,
];

export class BridgeTowerPreTrainedModel {
  private sessions = new Map<string, Promise<ort.InferenceSession>>();

  /** @internal Use the subclasses' `fromPretrained`. */
  constructor(
    readonly config: BridgeTowerConfig,
    readonly store: WeightStore,
    readonly head: Head,
    readonly path: string,
    private readonly options: LoadOptions,
  ) {}

  protected static async load<T extends BridgeTowerPreTrainedModel>(
    this: new (config: BridgeTowerConfig, store: WeightStore, head: Head, path: string, options: LoadOptions) => T,
    idOrDir: string,
    head: Head,
    options: LoadOptions = {},
  ): Promise<T> {
    // The config is checked before the (large) weights are looked for or downloaded.
    const config = await loadConfig(isLocalFolder(idOrDir) ? idOrDir : dirname((await hubFile(idOrDir, "config.json", options))!));
    if (head === "itc") {
      const why = contrastiveUnsupportedReason(config);
      if (why) throw new UnsupportedCheckpointError(idOrDir, `cannot build BridgeTowerForContrastiveLearning: ${why}`);
    }
    const { dir, weights } = await resolveModel(idOrDir, options);
    const store = await WeightStore.open(await openCheckpoint(weights));
    const model = new this(config, store, head, dir, options);
    try {
      if (options.dtype === "int8") store.enableInt8(options.int8CacheDir ?? defaultCacheRoot());
      else if (options.dtype !== undefined && options.dtype !== "fp32") throw new InputError("dtype", `must be "fp32" or "int8", got "${options.dtype}"`);
      const parts: Part[] = head === "itc" ? ["text", "vision", "fusion", "itc_text", "itc_image"] : ["text", "vision", "fusion"];
      const graphs = parts.map((p) => model.build(p, false));
      model.checkWeights();
      if (store.int8) {
        // Written on first use only (about 17 s at the large size): report progress like a download.
        const report = options.onProgress ?? stderrProgress(`${dir}: int8 weights`, { doing: "writing", done: "wrote" });
        await store.writeInt8((done, total) => report({ file: "weights-int8.bin", downloaded: done, total }));
      }
      // Sessions are created once, up front, so the first call is not slowed by them.
      for (const [i, p] of parts.entries()) model.session(p, false, graphs[i]);
      await Promise.all(model.sessions.values());
    } catch (e) {
      await model.dispose();
      throw e;
    }
    return model;
  }

  private build(part: Part, hidden: boolean): Graph {
    if (part === "text") return buildTextPart(this.store, this.config, hidden);
    if (part === "vision") return buildVisionPart(this.store, this.config, hidden);
    if (part === "itc_text") return buildContrastiveTextHead(this.store, this.config);
    if (part === "itc_image") return buildContrastiveImageHead(this.store, this.config);
    return buildFusionPart(this.store, this.config, this.head, hidden);
  }

  private checkWeights(): void {
    const missing = this.store.missing;
    if (this.head !== "none" && missing.length > 0 && missing.every((m) => HEAD_KEYS[this.head as "itm"].some((p) => m.startsWith(p))))
      throw new UnsupportedCheckpointError(this.path, `this checkpoint has no ${HEAD_NAMES[this.head as "itm"]}`);
    this.store.checkMissing(`${this.constructor.name}`);
    // Unexpected = not a parameter of BridgeTower at all (as transformers reports them); other heads' keys and
    // parameters upstream holds but never reads (text pooler, extra vision blocks) are expected.
    const known = parameterShapes(this.config, ["itm", "mlm", ...(contrastiveUnsupportedReason(this.config) ? [] : ["itc" as const])]);
    const otherHeads = Object.values(HEAD_KEYS).flat();
    const unexpected = [...this.store.entries.keys()].filter(
      (n) => !known.has(n) && !KNOWN_UNUSED.some((r) => r.test(n)) && !otherHeads.some((p) => n.startsWith(p)),
    );
    if (unexpected.length > 0)
      (this.options.onWarning ?? console.warn)(
        `${this.path}: ${unexpected.length} checkpoint tensor(s) not used by ${this.constructor.name}: ${unexpected.slice(0, 10).join(", ")}${unexpected.length > 10 ? ", …" : ""}`,
      );
  }

  private session(part: Part, hidden: boolean, graph?: Graph): Promise<ort.InferenceSession> {
    const key = `${part}:${hidden}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = createSession(graph ?? this.build(part, hidden), this.store.dataDir, this.options);
      this.sessions.set(key, s);
    }
    return s;
  }

  protected async runPart(part: Part, hidden: boolean, feeds: Record<string, Tensor>): Promise<Outputs> {
    const s = await this.session(part, hidden);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of s.inputNames) {
      const t = feeds[name];
      if (!t) throw new InputError(name, "missing input");
      if (t.data.length !== t.dims.reduce((a, b) => a * b, 1))
        throw new InputError(name, `has ${t.data.length} values but shape [${t.dims.join(", ")}]`);
      ortFeeds[name] = new OrtTensorCtor(t.data instanceof BigInt64Array ? "int64" : "float32", t.data, t.dims);
    }
    return (await s.run(ortFeeds)) as unknown as Outputs;
  }

  /** Runs the text tower; the result can be fused with any image encoding of the same batch size. */
  async encodeText(inputIds: Tensor<BigInt64Array>, attentionMask?: Tensor<BigInt64Array>, hiddenStates = false): Promise<Encoding> {
    const mask = attentionMask ?? ones(inputIds.dims);
    this.checkText(inputIds, mask);
    const out = await this.runPart("text", hiddenStates, { input_ids: inputIds, attention_mask: mask });
    out.attention_mask = mask;
    return out;
  }

  /** Runs the vision tower on `[B, C, S, S]` pixel values. */
  async encodeImage(pixelValues: Tensor<Float32Array>, hiddenStates = false): Promise<Encoding> {
    const v = this.config.visionConfig;
    if (!(pixelValues.data instanceof Float32Array)) throw new InputError("pixel_values", "must be a float32 tensor");
    const [, C, h, w] = pixelValues.dims;
    if (pixelValues.dims.length !== 4 || C !== v.numChannels)
      throw new InputError("pixel_values", `expected shape [batch, ${v.numChannels}, ${v.imageSize}, ${v.imageSize}], got [${pixelValues.dims.join(", ")}]`);
    if (h !== v.imageSize || w !== v.imageSize)
      throw new InputError("pixel_values", `input image size (${h}*${w}) doesn't match model (${v.imageSize}*${v.imageSize})`);
    return this.runPart("vision", hiddenStates, { pixel_values: pixelValues });
  }

  /**
   * The cross-modal layers and the head on a text and an image encoding of equal batch size, or one of them
   * of batch 1 paired with every item of the other (one image against many texts, or the other way round).
   */
  async fuse(text: Encoding, image: Encoding, hiddenStates = false): Promise<Outputs> {
    const bt = text.attention_mask.dims[0];
    const bi = image[imageBridge(0)].dims[0];
    if (bt !== bi && bt !== 1 && bi !== 1) throw new InputError("", `text batch (${bt}) and image batch (${bi}) differ and neither is 1`);
    return this.runPart("fusion", hiddenStates, { ...text, ...image });
  }

  /**
   * The full forward pass. Output names follow the fixtures: `text_features`, `image_features`, `pooler_output`,
   * `itm.logits`, `mlm.logits`, `itc.*`, losses when `labels` are given (ITC: always), and with `outputHiddenStates`
   * `hidden_states.text.i`, `hidden_states.image.i` (token-major, as transformers returns them) and `cross.{text,image}.k`.
   */
  async run(inputs: ModelInputs, outputHiddenStates = false): Promise<Outputs> {
    const [text, image] = await Promise.all([
      this.encodeText(inputs.inputIds, inputs.attentionMask, outputHiddenStates),
      this.encodeImage(inputs.pixelValues, outputHiddenStates),
    ]);
    const fused = await this.fuse(text, image, outputHiddenStates);
    const out: Outputs = { ...fused };
    if (outputHiddenStates)
      for (const enc of [text, image]) for (const [k, v] of Object.entries(enc)) if (k.startsWith("hidden_states.")) out[k] = v;
    this.addLosses(out, inputs.labels);
    return out;
  }

  private addLosses(out: Outputs, labels?: Tensor<BigInt64Array>): void {
    const scalar = (v: number): Tensor => ({ data: Float32Array.of(v), dims: [] });
    if (this.head === "itm" && labels) out["itm.loss"] = scalar(crossEntropy(out["itm.logits"].data as Float32Array, 2, labels.data));
    if (this.head === "mlm" && labels)
      out["mlm.loss"] = scalar(crossEntropy(out["mlm.logits"].data as Float32Array, this.config.textConfig.vocabSize, labels.data));
    if (this.head === "itc") {
      const B = out["itc.text_embeds"].dims[0];
      const arange = Array.from({ length: B }, (_, i) => i);
      const ce = (n: string) => crossEntropy(out[n].data as Float32Array, B, arange);
      out["itc.loss"] = scalar((ce("itc.logits_text_to_image") + ce("itc.logits_text_to_cross") + ce("itc.logits_image_to_cross")) / 3);
    }
  }

  private checkText(ids: Tensor<BigInt64Array>, mask: Tensor<BigInt64Array>): void {
    const t = this.config.textConfig;
    if (!(ids.data instanceof BigInt64Array)) throw new InputError("input_ids", "must be an integer (int64) tensor");
    if (!(mask.data instanceof BigInt64Array)) throw new InputError("attention_mask", "must be an integer (int64) tensor");
    if (ids.dims.length !== 2) throw new InputError("input_ids", `expected shape [batch, length], got [${ids.dims.join(", ")}]`);
    if (mask.dims.length !== 2 || mask.dims[0] !== ids.dims[0] || mask.dims[1] !== ids.dims[1])
      throw new InputError("attention_mask", `shape [${mask.dims.join(", ")}] differs from input_ids [${ids.dims.join(", ")}]`);
    const maxLen = t.maxPositionEmbeddings - t.padTokenId - 1;
    if (ids.dims[1] > maxLen)
      throw new InputError("input_ids", `text is ${ids.dims[1]} tokens long but the model has positions for ${maxLen}: truncate the text (e.g. truncation with max_length ${maxLen})`);
    for (const id of ids.data)
      if (id < 0n || id >= BigInt(t.vocabSize)) throw new InputError("input_ids", `token id ${id} is outside the vocabulary (0..${t.vocabSize - 1})`);
  }

  /** Number of image tokens the vision tower produces. */
  get numImageTokens(): number {
    return numImageTokens(this.config.visionConfig);
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) await s.then((x) => x.release()).catch(() => {});
    this.sessions.clear();
    await this.store.close();
  }
}

function ones(dims: readonly number[]): Tensor<BigInt64Array> {
  return { data: new BigInt64Array(dims.reduce((a, b) => a * b, 1)).fill(1n), dims };
}

export class BridgeTowerModel extends BridgeTowerPreTrainedModel {
  /** Loads a model folder or a Hugging Face Hub id (downloaded into the Hugging Face cache). */
  static async fromPretrained(dir: string, options?: LoadOptions): Promise<BridgeTowerModel> {
    return this.load(dir, "none", options);
  }
}

export class BridgeTowerForImageAndTextRetrieval extends BridgeTowerPreTrainedModel {
  /** Loads a model folder or a Hugging Face Hub id (downloaded into the Hugging Face cache). */
  static async fromPretrained(dir: string, options?: LoadOptions): Promise<BridgeTowerForImageAndTextRetrieval> {
    return this.load(dir, "itm", options);
  }
}

export class BridgeTowerForMaskedLM extends BridgeTowerPreTrainedModel {
  /** Loads a model folder or a Hugging Face Hub id (downloaded into the Hugging Face cache). */
  static async fromPretrained(dir: string, options?: LoadOptions): Promise<BridgeTowerForMaskedLM> {
    return this.load(dir, "mlm", options);
  }
}

export class BridgeTowerForContrastiveLearning extends BridgeTowerPreTrainedModel {
  /** Loads a model folder or a Hugging Face Hub id (downloaded into the Hugging Face cache). */
  static async fromPretrained(dir: string, options?: LoadOptions): Promise<BridgeTowerForContrastiveLearning> {
    return this.load(dir, "itc", options);
  }

  /** L2-normalised text embeddings `[B, C]` (text tower + `itc_text_head` only). */
  async embedTexts(inputIds: Tensor<BigInt64Array>, attentionMask?: Tensor<BigInt64Array>): Promise<Tensor<Float32Array>> {
    const text = await this.encodeText(inputIds, attentionMask);
    return (await this.runPart("itc_text", false, text))["itc.text_embeds"] as Tensor<Float32Array>;
  }

  /** L2-normalised image embeddings `[B, C]` (vision tower + `itc_image_head` only). */
  async embedImages(pixelValues: Tensor<Float32Array>): Promise<Tensor<Float32Array>> {
    const image = await this.encodeImage(pixelValues);
    return (await this.runPart("itc_image", false, image))["itc.image_embeds"] as Tensor<Float32Array>;
  }

  /** The trained `logit_scale` parameter (raw, before exp). */
  async logitScale(): Promise<number> {
    return (await this.store.readFloat32("logit_scale"))[0];
  }
}
