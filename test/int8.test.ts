/**
 * int8 mode accuracy, reported and bounded: ITM match probabilities within 0.02 of fp32 and the same fill-mask
 * top-1 token, on every fixture model with those heads. The measured differences are printed as diagnostics.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM, BridgeTowerProcessor, fillMask } from "../src/index.js";
import type { Tensor } from "../src/model/tensor.js";
import { softmax2 } from "../src/tasks/rank.js";
import { fixture, fixturesDir, readAll } from "./helpers/fixtures.js";

const cache = mkdtempSync(join(tmpdir(), "bt-int8-"));
after(() => rmSync(cache, { recursive: true, force: true }));
const cases = readdirSync(fixturesDir).filter((d) => existsSync(fixture(d, "expected.safetensors")) && existsSync(fixture(d, "inputs.safetensors")));

describe("int8 mode", () => {
  it("ITM match probabilities stay within 0.02 of fp32 on every fixture model", async () => {
    let worst = 0;
    for (const name of cases) {
      const inputs = await readAll(fixture(name, "inputs.safetensors"));
      const probs: number[][] = [];
      for (const dtype of ["fp32", "int8"] as const) {
        const m = await BridgeTowerForImageAndTextRetrieval.fromPretrained(fixture(name), { dtype, int8CacheDir: cache, onWarning: () => {} });
        const out = await m.run({ inputIds: inputs.get("input_ids") as Tensor<BigInt64Array>, attentionMask: inputs.get("attention_mask") as Tensor<BigInt64Array>, pixelValues: inputs.get("pixel_values") as Tensor<Float32Array> });
        const l = out["itm.logits"].data as Float32Array;
        probs.push(Array.from({ length: l.length / 2 }, (_, b) => softmax2(l[2 * b], l[2 * b + 1])));
        await m.dispose();
      }
      probs[0].forEach((p, b) => {
        const d = Math.abs(p - probs[1][b]);
        worst = Math.max(worst, d);
        assert.ok(d < 0.02, `${name}[${b}]: fp32 ${p} vs int8 ${probs[1][b]}`);
      });
    }
    console.log(`# int8 vs fp32, largest ITM probability difference over ${cases.length} fixture models: ${worst.toFixed(4)}`);
  });

  it("fill-mask gives the same top-1 token (e2e-fullvocab)", async () => {
    const dir = fixture("e2e-fullvocab");
    const p = await BridgeTowerProcessor.fromPretrained(dir);
    const tops = [];
    for (const dtype of ["fp32", "int8"] as const) {
      const m = await BridgeTowerForMaskedLM.fromPretrained(dir, { dtype, int8CacheDir: cache, onWarning: () => {} });
      tops.push((await fillMask(m, p, join(dir, "images", "coffee.png"), "a <mask> of coffee on a table", 5)).masks[0]);
      await m.dispose();
    }
    assert.equal(tops[1][0].tokenId, tops[0][0].tokenId);
    console.log(`# int8 vs fp32 fill-mask: top-1 ${JSON.stringify(tops[0][0].token)} in both, probability ${tops[0][0].score.toExponential(4)} vs ${tops[1][0].score.toExponential(4)}`);
  });
});
