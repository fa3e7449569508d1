import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ConfigError, UnsupportedCheckpointError } from "../src/errors.js";
import {
  BridgeTowerForContrastiveLearning, BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM, BridgeTowerModel,
  type BridgeTowerPreTrainedModel, type Outputs,
} from "../src/model/bridgetower.js";
import type { Tensor } from "../src/model/tensor.js";
import { fixture, fixturesDir, readAll } from "./helpers/fixtures.js";
import { assertClose } from "./helpers/parity.js";

const cases = readdirSync(fixturesDir).filter((d) => existsSync(fixture(d, "config.json")) && existsSync(fixture(d, "inputs.safetensors")));
const runnable = cases.filter((d) => existsSync(fixture(d, "expected.safetensors")));
const refused = cases.filter((d) => !existsSync(fixture(d, "expected.safetensors")));
/** Classes that fail upstream for a case that otherwise runs (e.g. the contrastive head of tiny-dims-mismatch). */
function failingClasses(name: string): Set<string> {
  const p = fixture(name, "expected_error.json");
  return new Set(existsSync(p) ? Object.keys(JSON.parse(readFileSync(p, "utf8")).errors ?? {}) : []);
}

type Loader = { fromPretrained(dir: string, o?: object): Promise<BridgeTowerPreTrainedModel>; name: string };
const classes: [Loader, string | undefined][] = [
  [BridgeTowerModel, undefined],
  [BridgeTowerForImageAndTextRetrieval, "itm.labels"],
  [BridgeTowerForMaskedLM, "mlm.labels"],
  [BridgeTowerForContrastiveLearning, undefined],
];

describe("model parity with the transformers fixtures", () => {
  for (const name of runnable) {
    it(name, async () => {
      const inputs = await readAll(fixture(name, "inputs.safetensors"));
      const expected = await readAll(fixture(name, "expected.safetensors"));
      const failing = failingClasses(name);
      const checked = new Set<string>();
      for (const [cls, labelName] of classes) {
        const hasHead = cls === BridgeTowerModel || [...expected.keys()].some((k) => k.startsWith(headPrefix(cls)));
        if (!hasHead || failing.has(cls.name)) continue;
        const model = await cls.fromPretrained(fixture(name), { onWarning: () => {}, threads: 1 });
        try {
          // With hidden states every layer is computed in full; without, the heads skip rows they never read.
          for (const hidden of [true, false]) {
            const out: Outputs = await model.run(
              {
                inputIds: inputs.get("input_ids") as Tensor<BigInt64Array>,
                attentionMask: inputs.get("attention_mask") as Tensor<BigInt64Array>,
                pixelValues: inputs.get("pixel_values") as Tensor<Float32Array>,
                pixelMask: inputs.get("pixel_mask"),
                labels: labelName ? (expected.get(labelName) as Tensor<BigInt64Array>) : undefined,
              },
              hidden,
            );
            for (const [k, v] of Object.entries(out)) {
              const want = expected.get(k);
              if (!want) continue;
              assertClose(`${name} ${cls.name} ${k} (hidden states: ${hidden})`, v, want);
              checked.add(k);
            }
            if (!hidden && cls !== BridgeTowerModel) assert.ok(Object.keys(out).some((k) => k.startsWith(headPrefix(cls))), "head outputs");
          }
        } finally {
          await model.dispose();
        }
      }
      // Every expected output (except the labels, which are inputs) was produced and compared.
      const unchecked = [...expected.keys()].filter((k) => !checked.has(k) && !k.endsWith(".labels"));
      assert.deepEqual(unchecked, [], `${name}: expected outputs never compared`);
    });
  }

  it("reports the trained logit_scale of the contrastive head", async () => {
    const expected = await readAll(fixture("tiny-itc", "expected.safetensors"));
    const m = await BridgeTowerForContrastiveLearning.fromPretrained(fixture("tiny-itc"), { onWarning: () => {} });
    try {
      assert.ok(Math.abs((await m.logitScale()) - Number(expected.get("itc.logit_scale")!.data[0])) < 1e-6);
    } finally {
      await m.dispose();
    }
  });

  it("tiny-dims-mismatch: the contrastive head is refused with the reason", async () => {
    await assert.rejects(
      BridgeTowerForContrastiveLearning.fromPretrained(fixture("tiny-dims-mismatch")),
      (e: unknown) => e instanceof UnsupportedCheckpointError && /vision_config\.hidden_size 128 differs from hidden_size 32/.test(e.message),
    );
  });
});

function headPrefix(cls: Loader): string {
  if (cls === BridgeTowerForImageAndTextRetrieval) return "itm.";
  if (cls === BridgeTowerForMaskedLM) return "mlm.";
  return "itc.";
}

describe("configurations that crash upstream are refused at load", () => {
  const field: Record<string, RegExp> = {
    "tiny-share-link": /share_link_tower_layers/,
    "tiny-unshared-cross": /share_cross_modal_transformer_layers/,
    "tiny-share-link-unshared-cross": /share_cross_modal_transformer_layers|share_link_tower_layers/,
    "tiny-init-ln-from-vision-separate-ln": /init_layernorm_from_vision_encoder/,
  };
  for (const name of refused) {
    it(name, async () => {
      for (const [cls] of classes)
        await assert.rejects(cls.fromPretrained(fixture(name)), (e: unknown) => e instanceof ConfigError && (field[name] ?? /./).test(e.message) && /crash|fails/.test(e.message));
    });
  }
});

describe("fusion of a batch-1 encoding with a batch of the other side", () => {
  // One image against several texts shares the first cross-modal layer's image-only work; the result must be
  // what the explicit pairs give.
  for (const name of ["tiny-default", "tiny-share-link-1cross", "small-realistic"]) {
    for (const cls of [BridgeTowerForImageAndTextRetrieval, BridgeTowerForContrastiveLearning, BridgeTowerForMaskedLM, BridgeTowerModel]) {
      it(`${name} ${cls.name}`, async () => {
        const inputs = await readAll(fixture(name, "inputs.safetensors"));
        const ids = inputs.get("input_ids") as Tensor<BigInt64Array>;
        const mask = inputs.get("attention_mask") as Tensor<BigInt64Array>;
        const pixels = inputs.get("pixel_values") as Tensor<Float32Array>;
        const B = ids.dims[0];
        const per = pixels.data.length / B;
        const first = { data: pixels.data.slice(0, per), dims: [1, ...pixels.dims.slice(1)] };
        const repeated = { data: new Float32Array(per * B), dims: pixels.dims };
        for (let b = 0; b < B; b++) repeated.data.set(first.data, b * per);
        const m = await cls.fromPretrained(fixture(name), { onWarning: () => {} });
        try {
          const shared = await m.fuse(await m.encodeText(ids, mask), await m.encodeImage(first));
          const pairs = await m.run({ inputIds: ids, attentionMask: mask, pixelValues: repeated });
          for (const [k, v] of Object.entries(shared)) assertClose(`${k} (shared image)`, v, pairs[k]);
          assert.ok(Object.keys(shared).length > 0);
        } finally {
          await m.dispose();
        }
      });
    }
  }
});

describe("long captions take the plain cross-attention", () => {
  // The fixtures' captions are short enough for the folded cross-attention (heads x length < hidden, see
  // src/model/short-attention.ts); padding them past hidden / heads tokens (mask 0, which upstream ignores)
  // makes the fusion take the plain path, which must give the fixtures' numbers on the real tokens.
  for (const name of ["tiny-default", "small-realistic", "tiny-layers-3-4-2"]) {
    it(name, async () => {
      const inputs = await readAll(fixture(name, "inputs.safetensors"));
      const expected = await readAll(fixture(name, "expected.safetensors"));
      const config = JSON.parse(readFileSync(fixture(name, "config.json"), "utf8")).text_config;
      const ids = inputs.get("input_ids") as Tensor<BigInt64Array>;
      const [B, L] = ids.dims;
      const Lp = Math.ceil(config.hidden_size / config.num_attention_heads) + 1;
      assert.ok(L * config.num_attention_heads < config.hidden_size && Lp > L, "the fixture caption is short, the padded one is not");
      const pad = (t: Tensor<BigInt64Array>, v: bigint): Tensor<BigInt64Array> => {
        const data = new BigInt64Array(B * Lp).fill(v);
        for (let b = 0; b < B; b++) data.set(t.data.subarray(b * L, (b + 1) * L), b * Lp);
        return { data, dims: [B, Lp] };
      };
      for (const cls of [BridgeTowerModel, BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM]) {
        const m = await cls.fromPretrained(fixture(name), { onWarning: () => {} });
        try {
          const mlmLabels = expected.get("mlm.labels") as Tensor<BigInt64Array> | undefined;
          const out = await m.run(
            {
              inputIds: pad(ids, BigInt(config.pad_token_id ?? 1)),
              attentionMask: pad(inputs.get("attention_mask") as Tensor<BigInt64Array>, 0n),
              pixelValues: inputs.get("pixel_values") as Tensor<Float32Array>,
              labels: cls === BridgeTowerForMaskedLM && mlmLabels ? pad(mlmLabels, -100n) : (expected.get("itm.labels") as Tensor<BigInt64Array>),
            },
            true,
          );
          let compared = 0;
          for (const [k, v] of Object.entries(out)) {
            const want = expected.get(k);
            if (!want) continue;
            // Outputs along the text: keep the first L positions of each row.
            const perText = /^(text_features|mlm\.logits|hidden_states\.text\.|cross\.text\.)/.test(k);
            assertClose(`${name} ${cls.name} ${k} (padded to ${Lp})`, perText ? firstPositions(v, L) : v, want);
            compared++;
          }
          assert.ok(compared > 0);
        } finally {
          await m.dispose();
        }
      }
    });
  }
});

/** `[B, Lp, ...]` → `[B, L, ...]`. */
function firstPositions(t: Tensor, L: number): Tensor {
  const [B, Lp, ...rest] = t.dims;
  const inner = rest.reduce((a, b) => a * b, 1);
  const data = new Float32Array(B * L * inner);
  for (let b = 0; b < B; b++) data.set((t.data as Float32Array).subarray(b * Lp * inner, (b * Lp + L) * inner), b * L * inner);
  return { data, dims: [B, L, ...rest] };
}
