/**
 * The same model from other checkpoint formats: pytorch_model.bin (tiny-itc ships both), and half-precision
 * safetensors (F16 / BF16, converted to float32 on load). A half checkpoint must give the same outputs as a
 * float32 checkpoint holding the same (rounded) values: that isolates the conversion from the precision loss.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { BridgeTowerForContrastiveLearning, BridgeTowerForImageAndTextRetrieval, BridgeTowerModel } from "../src/model/bridgetower.js";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../src/io/safetensors.js";
import { bytesToFloat32 } from "../src/io/tensors.js";
import type { Tensor } from "../src/model/tensor.js";
import { fixture, maxAbsDiff, readAll } from "./helpers/fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "bt-formats-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function runItc(dir: string) {
  const inputs = await readAll(fixture("tiny-itc", "inputs.safetensors"));
  const m = await BridgeTowerForContrastiveLearning.fromPretrained(dir, { onWarning: () => {} });
  try {
    return await m.run({ inputIds: inputs.get("input_ids") as Tensor<BigInt64Array>, attentionMask: inputs.get("attention_mask") as Tensor<BigInt64Array>, pixelValues: inputs.get("pixel_values") as Tensor<Float32Array> });
  } finally {
    await m.dispose();
  }
}

describe("checkpoint formats", () => {
  it("tiny-itc from pytorch_model.bin gives the same outputs as from model.safetensors", async () => {
    const dir = join(tmp, "bin");
    rmSync(dir, { recursive: true, force: true });
    await import("node:fs/promises").then((f) => f.mkdir(dir));
    copyFileSync(fixture("tiny-itc", "config.json"), join(dir, "config.json"));
    symlinkSync(fixture("tiny-itc", "pytorch_model.bin"), join(dir, "pytorch_model.bin")); // like a Hub cache snapshot
    const [a, b] = [await runItc(dir), await runItc(fixture("tiny-itc"))];
    for (const k of Object.keys(b)) assert.deepEqual(a[k].data, b[k].data, k);
  });

  it("a bare BridgeTowerModel checkpoint (no `bridgetower.` prefix) loads like from_pretrained", async () => {
    const src = await SafetensorsFile.open(fixture("tiny-default", "model.safetensors"));
    const bare: [string, TensorToWrite][] = [];
    for (const [name, e] of src.entries)
      if (name.startsWith("bridgetower.")) bare.push([name.slice("bridgetower.".length), { dtype: e.dtype, shape: e.shape, data: await src.readBytes(name) }]);
    await src.close();
    const dir = join(tmp, "bare");
    await import("node:fs/promises").then((f) => f.mkdir(dir, { recursive: true }));
    copyFileSync(fixture("tiny-default", "config.json"), join(dir, "config.json"));
    await writeSafetensors(join(dir, "model.safetensors"), bare);
    const inputs = await readAll(fixture("tiny-default", "inputs.safetensors"));
    const expected = await readAll(fixture("tiny-default", "expected.safetensors"));
    const m = await BridgeTowerModel.fromPretrained(dir, { onWarning: (w) => assert.fail(`unexpected warning: ${w}`) });
    const out = await m.run({ inputIds: inputs.get("input_ids") as Tensor<BigInt64Array>, attentionMask: inputs.get("attention_mask") as Tensor<BigInt64Array>, pixelValues: inputs.get("pixel_values") as Tensor<Float32Array> });
    await m.dispose();
    assert.ok(maxAbsDiff(out.pooler_output.data as Float32Array, expected.get("pooler_output")!.data as Float32Array).diff < 1e-5);
    // The heads are not in a bare checkpoint: loading a head class says which head is missing.
    await assert.rejects(BridgeTowerForImageAndTextRetrieval.fromPretrained(dir), /no image-text matching \(ITM\) head/);
  });

  for (const dtype of ["F16", "BF16"] as const) {
    it(`${dtype} weights are converted on load`, async () => {
      const src = await SafetensorsFile.open(fixture("tiny-default", "model.safetensors"));
      const half: [string, TensorToWrite][] = [];
      const rounded: [string, TensorToWrite][] = [];
      for (const [name, e] of src.entries) {
        const f = bytesToFloat32(await src.readBytes(name), e.dtype);
        const h = toHalf(f, dtype);
        half.push([name, { dtype, shape: e.shape, data: h }]);
        rounded.push([name, { dtype: "F32", shape: e.shape, data: bytesToFloat32(new Uint8Array(h.buffer), dtype) }]);
      }
      await src.close();
      const outs = [];
      for (const [sub, tensors] of [[`${dtype}-half`, half], [`${dtype}-f32`, rounded]] as const) {
        const dir = join(tmp, sub);
        await import("node:fs/promises").then((f) => f.mkdir(dir, { recursive: true }));
        copyFileSync(fixture("tiny-default", "config.json"), join(dir, "config.json"));
        await writeSafetensors(join(dir, "model.safetensors"), tensors);
        const inputs = await readAll(fixture("tiny-default", "inputs.safetensors"));
        const m = await BridgeTowerForImageAndTextRetrieval.fromPretrained(dir, { onWarning: () => {} });
        outs.push(await m.run({ inputIds: inputs.get("input_ids") as Tensor<BigInt64Array>, pixelValues: inputs.get("pixel_values") as Tensor<Float32Array>, attentionMask: inputs.get("attention_mask") as Tensor<BigInt64Array> }));
        await m.dispose();
      }
      assert.ok(maxAbsDiff(outs[0]["itm.logits"].data as Float32Array, outs[1]["itm.logits"].data as Float32Array).diff < 1e-6);
      assert.ok(maxAbsDiff(outs[0].pooler_output.data as Float32Array, outs[1].pooler_output.data as Float32Array).diff < 1e-5);
    });
  }
});

/** Float32 to IEEE half or bfloat16 (round to nearest even), as little-endian uint16. */
function toHalf(f: Float32Array, dtype: "F16" | "BF16"): Uint16Array {
  const out = new Uint16Array(f.length);
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
  for (let i = 0; i < f.length; i++) {
    if (dtype === "BF16") out[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
    else out[i] = f16(f[i]);
  }
  return out;
}

function f16(v: number): number {
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -24 / 2) return sign;
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  // Rounding mode does not matter here: the float32 twin checkpoint holds the same rounded values.
  const m = Math.round(a / 2 ** (e - 10));
  return m >= 2048 ? sign | ((e + 16) << 10) : sign | (m >= 1024 ? ((e + 15) << 10) | (m - 1024) : m);
}
