/**
 * Full size: a random-weight checkpoint with the dimensions of BridgeTower/bridgetower-large-itm-mlm-gaudi
 * (917M parameters, 3.7 GB of float32, so every >2 GiB path is exercised), loaded through the same loader
 * and run for ITM and MLM. Generated once into .cache/ (ignored by git). Timings and peak RSS are printed
 * as diagnostics, not asserted: speed belongs to `npm run bench`.
 */
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM } from "../src/model/bridgetower.js";
import { ensureLargeModel, LARGE_DIR, LARGE_PARAMS } from "./helpers/large.js";

describe("full-size random model (gaudi dimensions)", { timeout: 20 * 60_000 }, () => {
  it("writes a 3.7 GB checkpoint with the real parameter count", async () => {
    const t0 = performance.now();
    const n = await ensureLargeModel();
    if (n) {
      console.log(`# wrote ${n} parameters in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      assert.equal(n, LARGE_PARAMS);
    }
    assert.ok(statSync(join(LARGE_DIR, "model.safetensors")).size >= LARGE_PARAMS * 4, "checkpoint holds every parameter (past 3 GiB)");
  });

  const ids = { data: BigInt64Array.from([0, 102, 1943, 9, 5, 2335, 15, 10, 1107, 4, 50264, 2].map(BigInt)), dims: [1, 12] };
  const pixels = { data: new Float32Array(3 * 294 * 294).map((_, i) => Math.sin(i / 97)), dims: [1, 3, 294, 294] };

  const fp32: Record<string, Float32Array> = {};
  for (const [name, cls, key, shape] of [
    ["ITM", BridgeTowerForImageAndTextRetrieval, "itm.logits", [1, 2]],
    ["MLM", BridgeTowerForMaskedLM, "mlm.logits", [1, 12, 50265]],
  ] as const) {
    it(`${name} loads and runs`, async () => {
      let t0 = performance.now();
      const m = await cls.fromPretrained(LARGE_DIR);
      const load = (performance.now() - t0) / 1000;
      try {
        t0 = performance.now();
        const out = await m.run({ inputIds: ids, pixelValues: pixels });
        const fwd = (performance.now() - t0) / 1000;
        const logits = out[key];
        assert.deepEqual([...logits.dims], shape);
        assert.ok(logits.data.every((v) => Number.isFinite(Number(v))), "finite logits");
        if (name === "ITM") assert.deepEqual([...out.pooler_output.dims], [1, 2048]);
        else assert.deepEqual([...out.text_features.dims], [1, 12, 1024]);
        // Stable: the same input gives the same logits (up to thread scheduling of reductions).
        const again = await m.run({ inputIds: ids, pixelValues: pixels });
        again[key].data.forEach((v, i) => assert.ok(Math.abs(Number(v) - Number(logits.data[i])) < 1e-4));
        if (name === "MLM") {
          // A caption padded past hidden / heads = 64 tokens takes the plain cross-attention instead of the folded
          // one (src/model/short-attention.ts): at full size the two must still agree on the real tokens.
          const Lp = 70;
          const padded = { data: new BigInt64Array(Lp).fill(1n), dims: [1, Lp] };
          padded.data.set(ids.data);
          const mask = { data: new BigInt64Array(Lp).fill(1n, 0, 12), dims: [1, Lp] };
          const plain = await m.run({ inputIds: padded, attentionMask: mask, pixelValues: pixels });
          for (const [k, tol] of [["text_features", 1e-5], ["mlm.logits", 1e-4]] as const) {
            const a = out[k].data as Float32Array;
            const b = (plain[k].data as Float32Array).subarray(0, a.length); // the first 12 positions
            const worst = a.reduce((d, v, i) => Math.max(d, Math.abs(v - b[i])), 0);
            assert.ok(worst < tol, `${k}: folded vs plain cross-attention differ by ${worst}`);
          }
        }
        fp32[name] = logits.data as Float32Array;
        console.log(`# ${name}: load ${load.toFixed(1)} s, forward ${fwd.toFixed(2)} s, peak RSS ${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(2)} GiB`);
      } finally {
        await m.dispose();
      }
    });
  }

  it("int8: ITM probability within 0.02 of fp32, same MLM top-1 at the <mask>, less memory", async () => {
    const cache = join(LARGE_DIR, "..", "int8");
    const itm = await BridgeTowerForImageAndTextRetrieval.fromPretrained(LARGE_DIR, { dtype: "int8", int8CacheDir: cache });
    const l = (await itm.run({ inputIds: ids, pixelValues: pixels }))["itm.logits"].data as Float32Array;
    await itm.dispose();
    const p = (x: ArrayLike<number>) => 1 / (1 + Math.exp(x[0] - x[1]));
    const d = Math.abs(p(l) - p(fp32.ITM));
    assert.ok(d < 0.02, `fp32 ${p(fp32.ITM)} vs int8 ${p(l)}`);
    const mlm = await BridgeTowerForMaskedLM.fromPretrained(LARGE_DIR, { dtype: "int8", int8CacheDir: cache });
    const m = (await mlm.run({ inputIds: ids, pixelValues: pixels }))["mlm.logits"].data as Float32Array;
    await mlm.dispose();
    const V = 50265;
    const pos = 10; // the <mask> (50264) in `ids`
    const argmax = (a: Float32Array) => a.subarray(pos * V, (pos + 1) * V).reduce((best, v, i, row) => (v > row[best] ? i : best), 0);
    assert.equal(argmax(m), argmax(fp32.MLM));
    console.log(`# int8 at full size: ITM probability ${p(l).toFixed(4)} vs fp32 ${p(fp32.ITM).toFixed(4)} (diff ${d.toFixed(4)}); MLM top-1 at the mask: same id ${argmax(m)}`);
  });
});
