/**
 * The public model classes, named as in transformers: `BridgeTowerModel`, `BridgeTowerForImageAndTextRetrieval`,
 * `BridgeTowerForMaskedLM`, `BridgeTowerForContrastiveLearning`. Each is a head over an `Engine` (engine.ts): the
 * loaded checkpoint and its sessions (text tower, vision tower, cross-modal trunk, one part per head), which
 * `BridgeTowerModel.fromPretrained(id, { heads })` shares between several heads.
 */
import { InputError } from "../errors.js";
import { maxTextTokens, numImageTokens } from "./config.js";
import { Engine, type LoadOptions, type Outputs, type TaskHead } from "./engine.js";
import { crossEntropy } from "./loss.js";
import { crossImage, crossText, hasTrunk, imageBridge, type Head } from "./parts.js";
import type { Tensor } from "./tensor.js";

export type { LoadOptions, Outputs } from "./engine.js";

export interface ModelInputs {
  inputIds: Tensor<BigInt64Array>;
  /** Defaults to all ones. */
  attentionMask?: Tensor<BigInt64Array>;
  pixelValues: Tensor<Float32Array>;
  /** Accepted and ignored, as transformers ignores it. */
  pixelMask?: Tensor;
  labels?: Tensor<BigInt64Array>;
}

/** Outputs of the text (or vision) tower, the cacheable input of `fuse`. */
export type Encoding = Record<string, Tensor>;

export class BridgeTowerPreTrainedModel {
  /** @internal Use the subclasses' `fromPretrained`. `owner`: disposing this model disposes the engine. */
  constructor(readonly engine: Engine, readonly head: Head, private readonly owner = true) {}

  get config() {
    return this.engine.config;
  }

  get path(): string {
    return this.engine.path;
  }

  protected static async load<T extends BridgeTowerPreTrainedModel>(
    this: new (engine: Engine, head: Head) => T, idOrDir: string, head: Head, options: LoadOptions = {},
  ): Promise<T> {
    return new this(await Engine.load(idOrDir, [head], options, this.name), head);
  }

  /** Runs the text tower; the result can be fused with any image encoding of the same batch size. */
  async encodeText(inputIds: Tensor<BigInt64Array>, attentionMask?: Tensor<BigInt64Array>, hiddenStates = false): Promise<Encoding> {
    const mask = attentionMask ?? ones(inputIds.dims);
    this.checkText(inputIds, mask);
    const out = await this.engine.run("text", hiddenStates, { input_ids: inputIds, attention_mask: mask });
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
    return this.engine.run("vision", hiddenStates, { pixel_values: pixelValues });
  }

  /**
   * The cross-modal layers and the head on a text and an image encoding of equal batch size, or one of them
   * of batch 1 paired with every item of the other (one image against many texts, or the other way round).
   */
  async fuse(text: Encoding, image: Encoding, hiddenStates = false): Promise<Outputs> {
    return (await this.fuseHeads(text, image, [this.head], hiddenStates))[0];
  }

  /** The trunk once, then each head's part: one output set per head. */
  protected async fuseHeads(text: Encoding, image: Encoding, heads: Head[], hiddenStates: boolean): Promise<Outputs[]> {
    const bt = text.attention_mask.dims[0];
    const bi = image[imageBridge(0)].dims[0];
    if (bt !== bi && bt !== 1 && bi !== 1) throw new InputError("", `text batch (${bt}) and image batch (${bi}) differ and neither is 1`);
    const feeds = { ...text, ...image };
    const trunk = hasTrunk(this.config) ? await this.engine.run("trunk", hiddenStates, feeds) : {};
    const results: Outputs[] = [];
    for (const h of heads) {
      const out = await this.engine.run(`head:${h}`, hiddenStates, { ...feeds, ...trunk });
      // The trunk's last layer is the heads' input; with hidden states, every layer is an output.
      results.push(hiddenStates ? { ...trunk, ...out } : out);
    }
    return results;
  }

  /**
   * The full forward pass. Output names follow the fixtures: `text_features`, `image_features`, `pooler_output`,
   * `itm.logits`, `mlm.logits`, `itc.*`, losses when `labels` are given (ITC: always), and with `outputHiddenStates`
   * `hidden_states.text.i`, `hidden_states.image.i` (token-major, as transformers returns them) and `cross.{text,image}.k`.
   */
  async run(inputs: ModelInputs, outputHiddenStates = false): Promise<Outputs> {
    return this.runHeads(inputs, [this.head], outputHiddenStates);
  }

  /** `run` for several heads of one engine: the towers and the trunk run once, then each head. */
  protected async runHeads(inputs: ModelInputs, heads: Head[], outputHiddenStates: boolean): Promise<Outputs> {
    const [text, image] = await Promise.all([
      this.encodeText(inputs.inputIds, inputs.attentionMask, outputHiddenStates),
      this.encodeImage(inputs.pixelValues, outputHiddenStates),
    ]);
    const out: Outputs = Object.assign({}, ...(await this.fuseHeads(text, image, heads, outputHiddenStates)));
    if (!outputHiddenStates) for (const k of Object.keys(out)) if (k.startsWith("cross.")) delete out[k];
    if (outputHiddenStates)
      for (const enc of [text, image]) for (const [k, v] of Object.entries(enc)) if (k.startsWith("hidden_states.")) out[k] = v;
    for (const h of heads) await this.addLosses(out, h, inputs.labels);
    return out;
  }

  private async addLosses(out: Outputs, head: Head, labels?: Tensor<BigInt64Array>): Promise<void> {
    const scalar = (v: number): Tensor => ({ data: Float32Array.of(v), dims: [] });
    if (head === "itm" && labels) out["itm.loss"] = scalar(crossEntropy(out["itm.logits"].data as Float32Array, 2, labels.data));
    if (head === "mlm" && labels)
      out["mlm.loss"] = scalar(crossEntropy(out["mlm.logits"].data as Float32Array, this.config.textConfig.vocabSize, labels.data));
    if (head === "itc") {
      // The raw parameter, as the fixtures' contract lists it.
      out["itc.logit_scale"] = { data: Float32Array.of(await this.engine.logitScale()), dims: [] };
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
    const maxLen = maxTextTokens(t);
    if (ids.dims[1] > maxLen)
      throw new InputError("input_ids", `text is ${ids.dims[1]} tokens long but the model has positions for ${maxLen}: truncate the text (e.g. truncation with max_length ${maxLen})`);
    for (const id of ids.data)
      if (id < 0n || id >= BigInt(t.vocabSize)) throw new InputError("input_ids", `token id ${id} is outside the vocabulary (0..${t.vocabSize - 1})`);
  }

  /** Number of image tokens the vision tower produces. */
  get numImageTokens(): number {
    return numImageTokens(this.config.visionConfig);
  }

  /** Frees the sessions and closes the weight file; a head view of a shared model leaves that to its owner. */
  async dispose(): Promise<void> {
    if (this.owner) await this.engine.dispose();
  }
}

function ones(dims: readonly number[]): Tensor<BigInt64Array> {
  return { data: new BigInt64Array(dims.reduce((a, b) => a * b, 1)).fill(1n), dims };
}

export interface MultiHeadLoadOptions extends LoadOptions {
  /**
   * Task heads to load with the backbone, sharing one copy of the weights: any of "itm", "mlm", "itc", or
   * "available" for every head the checkpoint has. Each is then run through `model.itm` / `.mlm` / `.itc`.
   */
  heads?: TaskHead[] | "available";
}

export class BridgeTowerModel extends BridgeTowerPreTrainedModel {
  private views = new Map<TaskHead, BridgeTowerPreTrainedModel>();

  /**
   * Loads a model folder or a Hugging Face Hub id (downloaded into the Hugging Face cache). With `heads`, the
   * checkpoint is loaded once for all of them: `model.itm`, `model.mlm`, `model.itc` are the head classes over it.
   */
  static async fromPretrained(dir: string, options: MultiHeadLoadOptions = {}): Promise<BridgeTowerModel> {
    if (options.heads === undefined) return this.load(dir, "none", options);
    return new BridgeTowerModel(await Engine.load(dir, options.heads, options, "BridgeTowerModel"), "none");
  }

  /** The task heads loaded with `heads` (empty for a plain BridgeTowerModel). */
  get heads(): TaskHead[] {
    return this.engine.heads.filter((h): h is TaskHead => h !== "none");
  }

  /** The ITM head over this model's weights (loaded with `heads`); disposing the view leaves the model open. */
  get itm(): BridgeTowerForImageAndTextRetrieval {
    return this.view("itm", BridgeTowerForImageAndTextRetrieval);
  }

  get mlm(): BridgeTowerForMaskedLM {
    return this.view("mlm", BridgeTowerForMaskedLM);
  }

  get itc(): BridgeTowerForContrastiveLearning {
    return this.view("itc", BridgeTowerForContrastiveLearning);
  }

  private view<T extends BridgeTowerPreTrainedModel>(head: TaskHead, cls: new (e: Engine, h: Head, owner: boolean) => T): T {
    this.engine.requireHead(head);
    let v = this.views.get(head);
    if (!v) this.views.set(head, (v = new cls(this.engine, head, false)));
    return v as T;
  }

  /** Features and pooler output, plus the outputs (and losses) of every loaded head: the towers and trunk run once. */
  override async run(inputs: ModelInputs, outputHiddenStates = false): Promise<Outputs> {
    return this.runHeads(inputs, ["none", ...this.heads], outputHiddenStates);
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
    return (await this.engine.run("itc_text", false, text))["itc.text_embeds"] as Tensor<Float32Array>;
  }

  /** L2-normalised image embeddings `[B, C]` (vision tower + `itc_image_head` only). */
  async embedImages(pixelValues: Tensor<Float32Array>): Promise<Tensor<Float32Array>> {
    const image = await this.encodeImage(pixelValues);
    return (await this.engine.run("itc_image", false, image))["itc.image_embeds"] as Tensor<Float32Array>;
  }

  /** The trained `logit_scale` parameter (raw, before exp). */
  async logitScale(): Promise<number> {
    return this.engine.logitScale();
  }
}
