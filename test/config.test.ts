/** config.json parsing: Hugging Face defaults, legacy keys, and bad values refused by name (plus a fuzz). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { ConfigError } from "../src/errors.js";
import { parseConfig } from "../src/model/config.js";
import { LARGE_ITM_MLM_CONFIG } from "../src/model/random.js";

describe("config.json", () => {
  it("an empty config gets the transformers defaults (base size)", () => {
    const c = parseConfig({});
    assert.equal(c.hiddenSize, 768);
    assert.equal(c.numHiddenLayers, 6);
    assert.equal(c.textConfig.vocabSize, 50265);
    assert.equal(c.textConfig.typeVocabSize, 1);
    assert.equal(c.visionConfig.imageSize, 288);
    assert.equal(c.contrastiveHiddenSize, undefined);
  });

  it("reads the large config with its stray training keys", () => {
    const c = parseConfig(LARGE_ITM_MLM_CONFIG);
    assert.equal(c.visionConfig.patchSize, 14);
    assert.equal(c.textConfig.numHiddenLayers, 24);
  });

  it("legacy *_config_dict keys win over the plain ones, as in transformers v4", () => {
    const c = parseConfig({ text_config: { hidden_size: 32, num_attention_heads: 2 }, text_config_dict: { hidden_size: 64, num_attention_heads: 4 }, hidden_size: 64 });
    assert.equal(c.textConfig.hiddenSize, 64);
    const v = parseConfig({ vision_config: { vit_remove_last: true, init_layernorm_from_vit: false } });
    assert.equal(v.visionConfig.removeLastLayer, false, "vit_remove_last is ignored, as upstream");
  });

  it("wrong types and values name the field", () => {
    const bad: [unknown, RegExp][] = [
      [{ hidden_size: "64" }, /hidden_size must be a number/],
      [{ model_type: "vilt" }, /model_type/],
      [{ link_tower_type: "concat" }, /link_tower_type/],
      [{ hidden_act: "swiglu" }, /hidden_act "swiglu"/],
      [{ text_config: { num_hidden_layers: 0 } }, /num_hidden_layers/],
      [{ vision_config: { hidden_size: 100 } }, /multiple of 64/],
      [{ text_config: "x" }, /text_config must be an object/],
      [[], /JSON object/],
    ];
    for (const [json, re] of bad) assert.throws(() => parseConfig(json), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(json));
  });

  it("fuzz: random JSON values parse or throw ConfigError", () => {
    const keys = ["hidden_size", "num_hidden_layers", "text_config", "vision_config", "link_tower_type", "hidden_act", "share_link_tower_layers", "num_attention_heads", "patch_size", "image_size", "contrastive_hidden_size"];
    const value = fc.oneof(fc.integer({ min: -5, max: 5000 }), fc.double(), fc.boolean(), fc.string(), fc.constant(null), fc.constantFrom("gelu", "add", "relu"));
    const obj = fc.dictionary(fc.constantFrom(...keys), fc.oneof(value, fc.dictionary(fc.constantFrom(...keys), value)));
    fc.assert(
      fc.property(fc.oneof(obj, fc.jsonValue()), (json) => {
        try {
          parseConfig(json);
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
        }
      }),
      { numRuns: 2000, seed: 7 },
    );
  });
});
