import { join, readFile } from "../io/local-files.js";
import { ConfigError } from "../errors.js";

/** `BridgeTowerTextConfig` (RoBERTa defaults). The cross-modal layers are built from this config too. */
export interface BridgeTowerTextConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: string;
  layerNormEps: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  padTokenId: number;
  bosTokenId: number;
  eosTokenId: number;
}

/** `BridgeTowerVisionConfig` (CLIP ViT). Attention heads are always hiddenSize / 64. */
export interface BridgeTowerVisionConfig {
  hiddenSize: number;
  numHiddenLayers: number;
  numChannels: number;
  patchSize: number;
  imageSize: number;
  layerNormEps: number;
  shareLayernorm: boolean;
  removeLastLayer: boolean;
}

export type LinkTowerType = "add" | "scaled_add" | "interpolate";

/** `BridgeTowerConfig`: the fusion part plus the two tower configs. */
export interface BridgeTowerConfig {
  shareCrossModalTransformerLayers: boolean;
  hiddenAct: string;
  hiddenSize: number;
  layerNormEps: number;
  shareLinkTowerLayers: boolean;
  linkTowerType: LinkTowerType;
  numAttentionHeads: number;
  /** Number of cross-modal layer pairs. */
  numHiddenLayers: number;
  tieWordEmbeddings: boolean;
  initLayernormFromVisionEncoder: boolean;
  /** Present only when config.json has it (contrastive checkpoints). */
  contrastiveHiddenSize?: number;
  logitScaleInitValue?: number;
  textConfig: BridgeTowerTextConfig;
  visionConfig: BridgeTowerVisionConfig;
}

/** Activations accepted in `hidden_act` (the names of transformers' ACT2FN that we implement). */
export const ACTIVATIONS = [
  "gelu", "gelu_python", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu",
  "relu", "silu", "swish", "tanh", "sigmoid",
] as const;

type Json = Record<string, unknown>;

/** Reads a typed field, falling back to the Hugging Face default; wrong types are refused by name. */
function field<T extends "number" | "boolean" | "string">(
  obj: Json, key: string, type: T, def: T extends "number" ? number : T extends "boolean" ? boolean : string,
  where: { file: string; path: string },
): T extends "number" ? number : T extends "boolean" ? boolean : string {
  const v = obj[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== type || (type === "number" && !Number.isFinite(v as number)))
    throw new ConfigError(where.file, `${where.path}${key} must be a ${type}, got ${JSON.stringify(v)}`);
  return v as never;
}

/** The config.json spelling of a field, for messages. */
const snake = (k: string) => k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`);

function positiveInt(v: number, name: string, file: string): number {
  if (!Number.isInteger(v) || v < 1) throw new ConfigError(file, `${name} must be a positive integer, got ${v}`);
  return v;
}

export function parseTextConfig(obj: Json, file = "config.json"): BridgeTowerTextConfig {
  const w = { file, path: "text_config." };
  const c: BridgeTowerTextConfig = {
    vocabSize: field(obj, "vocab_size", "number", 50265, w),
    hiddenSize: field(obj, "hidden_size", "number", 768, w),
    numHiddenLayers: field(obj, "num_hidden_layers", "number", 12, w),
    numAttentionHeads: field(obj, "num_attention_heads", "number", 12, w),
    intermediateSize: field(obj, "intermediate_size", "number", 3072, w),
    hiddenAct: field(obj, "hidden_act", "string", "gelu", w),
    layerNormEps: field(obj, "layer_norm_eps", "number", 1e-5, w),
    maxPositionEmbeddings: field(obj, "max_position_embeddings", "number", 514, w),
    typeVocabSize: field(obj, "type_vocab_size", "number", 1, w),
    padTokenId: field(obj, "pad_token_id", "number", 1, w),
    bosTokenId: field(obj, "bos_token_id", "number", 0, w),
    eosTokenId: field(obj, "eos_token_id", "number", 2, w),
  };
  for (const k of ["vocabSize", "hiddenSize", "numHiddenLayers", "numAttentionHeads", "intermediateSize", "maxPositionEmbeddings", "typeVocabSize"] as const)
    positiveInt(c[k], `text_config.${snake(k)}`, file);
  const pet = obj.position_embedding_type;
  if (pet !== undefined && pet !== null && pet !== "absolute")
    throw new ConfigError(file, `text_config.position_embedding_type "${pet}" is not supported (BridgeTower uses "absolute")`);
  return c;
}

export function parseVisionConfig(obj: Json, file = "config.json"): BridgeTowerVisionConfig {
  const w = { file, path: "vision_config." };
  // `vit_remove_last` (bridgetower-base's legacy key) is ignored, as transformers ignores it.
  const c: BridgeTowerVisionConfig = {
    hiddenSize: field(obj, "hidden_size", "number", 768, w),
    numHiddenLayers: field(obj, "num_hidden_layers", "number", 12, w),
    numChannels: field(obj, "num_channels", "number", 3, w),
    patchSize: field(obj, "patch_size", "number", 16, w),
    imageSize: field(obj, "image_size", "number", 288, w),
    layerNormEps: field(obj, "layer_norm_eps", "number", 1e-5, w),
    shareLayernorm: field(obj, "share_layernorm", "boolean", true, w),
    removeLastLayer: field(obj, "remove_last_layer", "boolean", false, w),
  };
  for (const k of ["hiddenSize", "numHiddenLayers", "numChannels", "patchSize", "imageSize"] as const)
    positiveInt(c[k], `vision_config.${snake(k)}`, file);
  if (c.hiddenSize % 64 !== 0)
    throw new ConfigError(file, `vision_config.hidden_size ${c.hiddenSize} must be a multiple of 64 (the vision tower uses hidden_size // 64 heads)`);
  return c;
}

function subConfig(obj: Json, key: "text_config" | "vision_config", file: string): Json {
  // transformers v4 pops the legacy `*_config_dict` keys and prefers them when set.
  const legacy = obj[`${key}_dict`];
  const v = legacy !== undefined && legacy !== null ? legacy : obj[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new ConfigError(file, `${key} must be an object`);
  return v as Json;
}

/** Parses a BridgeTower `config.json` object; stray training keys are ignored as transformers ignores them. */
export function parseConfig(json: unknown, file = "config.json"): BridgeTowerConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new ConfigError(file, "config must be a JSON object");
  const obj = json as Json;
  if (obj.model_type !== undefined && obj.model_type !== "bridgetower")
    throw new ConfigError(file, `model_type is "${String(obj.model_type)}", expected "bridgetower"`);
  const w = { file, path: "" };
  const linkTowerType = field(obj, "link_tower_type", "string", "add", w);
  if (linkTowerType !== "add" && linkTowerType !== "scaled_add" && linkTowerType !== "interpolate")
    throw new ConfigError(file, `link_tower_type "${linkTowerType}" is not one of "add", "scaled_add", "interpolate"`);
  const c: BridgeTowerConfig = {
    shareCrossModalTransformerLayers: field(obj, "share_cross_modal_transformer_layers", "boolean", true, w),
    hiddenAct: field(obj, "hidden_act", "string", "gelu", w),
    hiddenSize: field(obj, "hidden_size", "number", 768, w),
    layerNormEps: field(obj, "layer_norm_eps", "number", 1e-5, w),
    shareLinkTowerLayers: field(obj, "share_link_tower_layers", "boolean", false, w),
    linkTowerType,
    numAttentionHeads: field(obj, "num_attention_heads", "number", 12, w),
    numHiddenLayers: field(obj, "num_hidden_layers", "number", 6, w),
    tieWordEmbeddings: field(obj, "tie_word_embeddings", "boolean", false, w),
    initLayernormFromVisionEncoder: field(obj, "init_layernorm_from_vision_encoder", "boolean", false, w),
    textConfig: parseTextConfig(subConfig(obj, "text_config", file), file),
    visionConfig: parseVisionConfig(subConfig(obj, "vision_config", file), file),
  };
  if (obj.contrastive_hidden_size !== undefined && obj.contrastive_hidden_size !== null)
    c.contrastiveHiddenSize = positiveInt(field(obj, "contrastive_hidden_size", "number", 0, w), "contrastive_hidden_size", file);
  if (obj.logit_scale_init_value !== undefined && obj.logit_scale_init_value !== null)
    c.logitScaleInitValue = field(obj, "logit_scale_init_value", "number", 0, w);
  positiveInt(c.hiddenSize, "hidden_size", file);
  positiveInt(c.numHiddenLayers, "num_hidden_layers", file);
  validate(c, file);
  return c;
}

/** Refuses the configurations that crash (or silently misbehave) in transformers, naming the field and why. */
function validate(c: BridgeTowerConfig, file: string): void {
  const t = c.textConfig;
  const v = c.visionConfig;
  for (const [name, act] of [["hidden_act", c.hiddenAct], ["text_config.hidden_act", t.hiddenAct]])
    if (!(ACTIVATIONS as readonly string[]).includes(act))
      throw new ConfigError(file, `${name} "${act}" is not supported (supported: ${ACTIVATIONS.join(", ")})`);
  if (!c.shareCrossModalTransformerLayers)
    throw new ConfigError(file, "share_cross_modal_transformer_layers=false is not supported: transformers builds a ModuleList of transforms but calls it as one module, so this configuration crashes upstream");
  if (c.shareLinkTowerLayers && c.numHiddenLayers >= 2)
    throw new ConfigError(file, `share_link_tower_layers=true with num_hidden_layers=${c.numHiddenLayers} is not supported: transformers builds one link tower but indexes it per layer, so this configuration crashes upstream`);
  if (c.initLayernormFromVisionEncoder && !v.shareLayernorm)
    throw new ConfigError(file, "init_layernorm_from_vision_encoder=true with vision_config.share_layernorm=false is not supported: transformers references a missing cross_modal_ln_separate and fails at construction");
  if (c.numHiddenLayers > t.numHiddenLayers)
    throw new ConfigError(file, `num_hidden_layers=${c.numHiddenLayers} cross-modal layers exceed text_config.num_hidden_layers=${t.numHiddenLayers}: each cross-modal layer is fed by one text layer`);
  const visionBlocks = v.numHiddenLayers - (v.removeLastLayer ? 1 : 0);
  if (visionBlocks < t.numHiddenLayers)
    throw new ConfigError(file, `the vision tower has ${visionBlocks} blocks (num_hidden_layers=${v.numHiddenLayers}${v.removeLastLayer ? ", remove_last_layer=true" : ""}) but the bridge needs ${t.numHiddenLayers} (text_config.num_hidden_layers): transformers indexes past the last vision block`);
  if (t.hiddenSize % t.numAttentionHeads !== 0)
    throw new ConfigError(file, `text_config.hidden_size ${t.hiddenSize} is not a multiple of text_config.num_attention_heads ${t.numAttentionHeads}`);
  if (c.hiddenSize !== t.hiddenSize)
    throw new ConfigError(file, `hidden_size ${c.hiddenSize} differs from text_config.hidden_size ${t.hiddenSize}: the cross-modal layers are built from text_config and would receive inputs of the wrong width`);
  if (v.imageSize < v.patchSize)
    throw new ConfigError(file, `vision_config.image_size ${v.imageSize} is smaller than patch_size ${v.patchSize}`);
}

/** Why the contrastive head cannot be built from this config, or undefined when it can. */
export function contrastiveUnsupportedReason(c: BridgeTowerConfig): string | undefined {
  if (c.contrastiveHiddenSize === undefined)
    return "config.json has no contrastive_hidden_size: this checkpoint has no contrastive (ITC) head (BridgeTower/bridgetower-large-itm-mlm-itc has one)";
  if (c.visionConfig.hiddenSize !== c.hiddenSize)
    return `vision_config.hidden_size ${c.visionConfig.hiddenSize} differs from hidden_size ${c.hiddenSize}: transformers' contrastive head adds the token-type embedding before the image transform and crashes on this configuration`;
  return undefined;
}

/** Number of uni-modal layers that run before the first cross-modal layer. */
export function splitIndex(c: BridgeTowerConfig): number {
  return c.textConfig.numHiddenLayers - c.numHiddenLayers + 1;
}

/** Number of image tokens: patches plus the class token. */
/** Longest text the model takes, in tokens with `<s>` and `</s>` (RoBERTa positions start after the pad id). */
export function maxTextTokens(t: BridgeTowerTextConfig): number {
  return t.maxPositionEmbeddings - t.padTokenId - 1;
}

export function numImageTokens(v: BridgeTowerVisionConfig): number {
  const g = Math.floor(v.imageSize / v.patchSize);
  return g * g + 1;
}

export async function loadConfig(dir: string): Promise<BridgeTowerConfig> {
  const file = join(dir, "config.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(file, code === "ENOENT" ? "config.json not found: is this a BridgeTower model folder?" : `cannot read (${code})`);
  }
  return parseConfigText(text, file);
}

/** config.json's text (read from a folder, or fetched by the browser entry) to a config. */
export function parseConfigText(text: string, file = "config.json"): BridgeTowerConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(json, file);
}
