/**
 * The processor end to end: small-realistic's inputs rebuilt from its source images and captions (its README),
 * bit-exact, and through the models to the fixture's logits.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM, BridgeTowerProcessor } from "../src/index.js";
import { fixture, readAll } from "./helpers/fixtures.js";

const DIR = fixture("small-realistic");
const captions = ["A black and white photo of a man.", "a small house near the water", "a large city with a lot of people"];
const images = ["chelsea.png", "coffee.png", "portrait_300x500.png"].map((f) => fixture("image-processor", "images", f));

describe("BridgeTowerProcessor on small-realistic", () => {
  it("rebuilds the fixture inputs exactly and gives the fixture logits", async () => {
    const inputs = await readAll(fixture("small-realistic", "inputs.safetensors"));
    const expected = await readAll(fixture("small-realistic", "expected.safetensors"));
    const p = await BridgeTowerProcessor.fromPretrained(DIR);
    const r = await p.call({ text: captions, padding: true, images });
    assert.deepEqual(r.inputIds!.data, inputs.get("input_ids")!.data);
    assert.deepEqual(r.attentionMask!.data, inputs.get("attention_mask")!.data);
    assert.deepEqual(r.pixelValues!.data, inputs.get("pixel_values")!.data); // float32 equality
    assert.deepEqual(r.pixelMask!.data, inputs.get("pixel_mask")!.data);
    assert.deepEqual(p.batchDecode(r.inputIds ? [[...r.inputIds.data.subarray(0, 11)].map(Number)] : [], { skipSpecialTokens: true }), [captions[0]]);
    for (const [cls, key] of [[BridgeTowerForImageAndTextRetrieval, "itm.logits"], [BridgeTowerForMaskedLM, "mlm.logits"]] as const) {
      const m = await cls.fromPretrained(DIR, { onWarning: () => {} });
      const out = await m.run({ inputIds: r.inputIds!, attentionMask: r.attentionMask, pixelValues: r.pixelValues! });
      const want = expected.get(key)!.data as Float32Array;
      (out[key].data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-4, `${key}[${i}]: ${v} vs ${want[i]}`));
      await m.dispose();
    }
  });
});
