/**
 * Random-weight checkpoints with the layout of real ones, for tests and benchmarks at full size
 * (the real weights cannot be downloaded here). Parameter names and shapes come from the same graph
 * builders that load real checkpoints, plus the parameters upstream stores but never uses.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors.js";
import { parseConfig, type BridgeTowerConfig } from "./config.js";
import { parameterShapes, type Head } from "./parts.js";

/** config.json of BridgeTower/bridgetower-large-itm-mlm(-gaudi), as the spec gives it (section 3.3/3.4). */
export const LARGE_ITM_MLM_CONFIG = {
  architectures: ["BridgeTowerForMaskedLM"],
  share_cross_modal_transformer_layers: true,
  drop_rate: 0.1,
  head_hidden_scale: 2,
  hidden_act: "gelu",
  hidden_size: 1024,
  initializer_factor: 1,
  is_encoder_decoder: false,
  layer_norm_eps: 1e-5,
  share_link_tower_layers: false,
  link_tower_type: "add",
  num_attention_heads: 16,
  num_hidden_layers: 6,
  tie_word_embeddings: false,
  text_config_dict: null,
  init_layernorm_from_vision_encoder: false,
  model_type: "bridgetower",
  text_config: {
    architectures: ["BridgeTowerTextModel"], vocab_size: 50265, hidden_size: 1024, num_hidden_layers: 24,
    num_attention_heads: 16, intermediate_size: 4096, hidden_act: "gelu", hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1, max_position_embeddings: 514, type_vocab_size: 1, initializer_factor: 1,
    initializer_range: 0.02, layer_norm_eps: 1e-5, pad_token_id: 1, bos_token_id: 0, eos_token_id: 2,
    position_embedding_type: "absolute", use_cache: true, classifier_dropout: null,
  },
  vision_config_dict: null,
  vision_config: {
    architectures: ["BridgeTowerVisionModel"], hidden_size: 1024, num_hidden_layers: 24, patch_size: 14,
    image_size: 294, initializer_factor: 1, stop_gradient: false, share_layernorm: true, remove_last_layer: false,
  },
};

/** Deterministic small random values: N(0, 0.02)-like for matrices, ~1 for LayerNorm weights, small biases. */
function randomValues(name: string, n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const isLnWeight = /(LayerNorm|layernorm|ln_\w+|ln_pre|ln_post)\.weight$/.test(name);
  const scale = /bias$/.test(name) ? 0.01 : 0.02 * Math.sqrt(3);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const u = (s >>> 0) / 4294967296 - 0.5; // uniform in [-0.5, 0.5)
    out[i] = isLnWeight ? 1 + 0.1 * u : 2 * scale * u;
  }
  return out;
}

/** Writes config.json and model.safetensors of a random model into `dir`. Returns the parameter count. */
export async function writeRandomCheckpoint(dir: string, configJson: object, heads: Head[] = ["itm", "mlm"]): Promise<number> {
  const config = parseConfig(configJson);
  const shapes = parameterShapes(config, heads);
  await mkdir(dir, { recursive: true });
  let total = 0;
  let seed = 12345;
  const tensors: [string, TensorToWrite][] = [...shapes].map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    total += n;
    const mySeed = seed++;
    return [name, { dtype: "F32", shape, data: () => randomValues(name, n, mySeed * 2654435761) }];
  });
  await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  await writeFile(join(dir, "config.json"), JSON.stringify(configJson, null, 2));
  return total;
}
