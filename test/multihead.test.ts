/**
 * One loaded checkpoint, several heads: `BridgeTowerModel.fromPretrained(dir, { heads })`. Every fixture case runs
 * through the shared model (each head's view, and all heads in one `run`) against the transformers outputs.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../src/io/safetensors.js";
import { InputError, UnsupportedCheckpointError } from "../src/errors.js";
import { BridgeTowerModel, type Outputs } from "../src/model/bridgetower.js";
import type { TaskHead } from "../src/model/engine.js";
import type { Tensor } from "../src/model/tensor.js";
import { fixture, fixturesDir, readAll } from "./helpers/fixtures.js";
import { assertClose } from "./helpers/parity.js";

const runnable = readdirSync(fixturesDir).filter((d) => existsSync(fixture(d, "expected.safetensors")) && existsSync(fixture(d, "inputs.safetensors")));
const CLASS_OF: Record<TaskHead, string> = { itm: "BridgeTowerForImageAndTextRetrieval", mlm: "BridgeTowerForMaskedLM", itc: "BridgeTowerForContrastiveLearning" };

/** The heads a case has expected outputs for, less those upstream fails on (expected_error.json). */
function headsOf(name: string, expected: Map<string, Tensor>): TaskHead[] {
  const p = fixture(name, "expected_error.json");
  const failing = new Set(existsSync(p) ? Object.keys(JSON.parse(readFileSync(p, "utf8")).errors ?? {}) : []);
  return (["itm", "mlm", "itc"] as const).filter((h) => [...expected.keys()].some((k) => k.startsWith(`${h}.`)) && !failing.has(CLASS_OF[h]));
}

describe("one model for several heads", () => {
  for (const name of runnable) {
    it(`${name}: every head through one loaded model matches the fixtures`, async () => {
      const inputs = await readAll(fixture(name, "inputs.safetensors"));
      const expected = await readAll(fixture(name, "expected.safetensors"));
      const heads = headsOf(name, expected);
      const model = await BridgeTowerModel.fromPretrained(fixture(name), { heads, onWarning: () => {}, threads: 1 });
      const feeds = {
        inputIds: inputs.get("input_ids") as Tensor<BigInt64Array>,
        attentionMask: inputs.get("attention_mask") as Tensor<BigInt64Array>,
        pixelValues: inputs.get("pixel_values") as Tensor<Float32Array>,
      };
      const checked = new Set<string>();
      const compare = (what: string, out: Outputs) => {
        for (const [k, v] of Object.entries(out)) {
          const want = expected.get(k);
          if (want) (assertClose(`${name} ${what} ${k}`, v, want), checked.add(k));
        }
      };
      try {
        assert.deepEqual(model.heads, heads);
        // All heads at once: the towers and the trunk run once.
        for (const hidden of [false, true]) compare(`run (hidden states: ${hidden})`, await model.run(feeds, hidden));
        // Each head's view, with its labels for the losses.
        for (const h of heads) {
          const labels = expected.get(`${h}.labels`) as Tensor<BigInt64Array> | undefined;
          const out = await model[h].run({ ...feeds, labels });
          assert.ok(Object.keys(out).some((k) => k.startsWith(`${h}.`)), `${h} outputs`);
          compare(`${h} view`, out);
        }
        const unchecked = [...expected.keys()].filter((k) => !checked.has(k) && !k.endsWith(".labels") && heads.some((h) => k.startsWith(`${h}.`)));
        assert.deepEqual(unchecked, [], `${name}: expected head outputs never compared`);
      } finally {
        await model.dispose();
      }
    });
  }

  it('"available" loads every head the checkpoint holds; disposing a view leaves the model usable', async () => {
    const dir = fixture("e2e-fullvocab");
    const model = await BridgeTowerModel.fromPretrained(dir, { heads: "available", onWarning: () => {} });
    try {
      assert.deepEqual(model.heads, ["itm", "mlm", "itc"]);
      assert.equal(model.itm, model.itm, "one view per head");
      await model.itm.dispose();
      const ids = { data: BigInt64Array.from([0n, 100n, 2n]), dims: [1, 3] };
      const s = model.config.visionConfig.imageSize;
      const pixels = { data: new Float32Array(3 * s * s), dims: [1, 3, s, s] };
      const out = await model.itm.run({ inputIds: ids, pixelValues: pixels });
      assert.equal(out["itm.logits"].dims.join(), "1,2");
      assert.equal((await model.itc.embedTexts(ids)).dims[0], 1);
    } finally {
      await model.dispose();
    }
  });

  it("a head the checkpoint lacks, or an unknown head, is refused by name", async () => {
    // tiny-default without the contrastive heads, as in the *-itm-mlm checkpoints.
    const src = await SafetensorsFile.open(fixture("tiny-default", "model.safetensors"));
    const kept: [string, TensorToWrite][] = [];
    for (const [name, e] of src.entries)
      if (!/^(itc_|logit_scale)/.test(name)) kept.push([name, { dtype: e.dtype, shape: e.shape, data: await src.readBytes(name) }]);
    await src.close();
    const dir = mkdtempSync(join(tmpdir(), "bt-heads-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync(fixture("tiny-default", "config.json"), join(dir, "config.json"));
    await writeSafetensors(join(dir, "model.safetensors"), kept);
    await assert.rejects(
      BridgeTowerModel.fromPretrained(dir, { heads: ["itm", "itc"], onWarning: () => {} }),
      (e: unknown) => e instanceof UnsupportedCheckpointError && /no contrastive \(ITC\) heads/.test(e.message),
    );
    const available = await BridgeTowerModel.fromPretrained(dir, { heads: "available", onWarning: () => {} });
    assert.deepEqual(available.heads, ["itm", "mlm"]);
    await available.dispose();
    await assert.rejects(
      BridgeTowerModel.fromPretrained(fixture("tiny-default"), { heads: ["itm", "nsp" as TaskHead] }),
      (e: unknown) => e instanceof InputError && /unknown head "nsp"/.test(e.message),
    );
    const model = await BridgeTowerModel.fromPretrained(fixture("tiny-default"), { heads: ["mlm"], onWarning: () => {} });
    try {
      assert.throws(() => model.itm, (e: unknown) => e instanceof UnsupportedCheckpointError && /head "itm" was not loaded.*loaded: mlm/.test(e.message));
    } finally {
      await model.dispose();
    }
  });
});
