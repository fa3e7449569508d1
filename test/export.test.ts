/**
 * `exportModel`: every fixture model exported, then each `{head}.onnx` run by a fresh onnxruntime session created
 * from the file alone (default options, no project code) against the transformers numbers; the same graph in
 * onnxruntime-web (wasm); the parts chained by name; int8 against the library's int8 mode.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import onnxProto from "onnx-proto";
import * as ortWeb from "onnxruntime-web";
import { exportModel } from "../src/export/index.js";
import { externalLocations, safeLocation } from "../src/export/proto.js";
import { BridgeTowerForImageAndTextRetrieval, BridgeTowerModel, BridgeTowerProcessor, SafetensorsFile, writeSafetensors } from "../src/index.js";
import type { TensorToWrite } from "../src/io/safetensors.js";
import { bytesToFloat32 } from "../src/io/tensors.js";
import type { Tensor } from "../src/model/tensor.js";
import { caseJobs, ortFeeds, runFile, toTensors, type Feeds } from "./helpers/export.js";
import { fixture, fixturesDir, maxAbsDiff, readAll } from "./helpers/fixtures.js";
import { assertClose } from "./helpers/parity.js";

const tmp = mkdtempSync(join(tmpdir(), "bt-export-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const cases = readdirSync(fixturesDir).filter((d) => existsSync(fixture(d, "config.json")) && existsSync(fixture(d, "expected.safetensors")));
const quiet = { onWarning: () => {} };

/** Every external-data location is a file of the folder, named plainly (no absolute path, no ".."). */
function checkLocations(dir: string, file: string): void {
  for (const loc of externalLocations(readFileSync(join(dir, file)))) {
    assert.ok(safeLocation(loc), `${file} reads "${loc}"`);
    assert.ok(existsSync(join(dir, loc)), `${file} reads missing ${loc}`);
  }
}

describe("exported graphs reproduce the transformers fixtures", () => {
  for (const name of cases) {
    it(name, async () => {
      const jobs = await caseJobs(name);
      const heads = [...jobs.keys()];
      const out = join(tmp, name);
      const r = await exportModel(fixture(name), { out, heads, ...quiet });
      assert.deepEqual(r.heads, heads);
      for (const [head, { feeds, expected }] of jobs) {
        checkLocations(out, `${head}.onnx`);
        const got = await runFile(join(out, `${head}.onnx`), feeds);
        const compared = Object.keys(got).filter((k) => expected.has(k));
        for (const k of compared) assertClose(`${name} ${head}.onnx ${k}`, got[k], expected.get(k)!);
        assert.ok(compared.some((k) => k.startsWith(`${head}.`)), `${name} ${head}: no head output compared`);
        // Fixture cases hold every output a head graph returns; e2e-fullvocab only the jobs' results.
        if (name !== "e2e-fullvocab") assert.deepEqual(Object.keys(got).filter((k) => !expected.has(k)), [], `${name} ${head}: outputs never compared`);
      }
      const manifest = JSON.parse(readFileSync(join(out, "bridgetower-export.json"), "utf8"));
      assert.deepEqual(manifest.heads, heads);
      assert.equal(manifest.source.folder, fixture(name));
      assert.deepEqual(manifest.weights, ["weights.safetensors"]);
      for (const g of manifest.graphs) assert.deepEqual(Object.keys(g.inputs).sort(), ["attention_mask", "input_ids", "pixel_values"]);
    });
  }
});

describe("e2e-fullvocab export", () => {
  const dir = fixture("e2e-fullvocab");
  const out = join(tmp, "e2e-parts");
  let exported: Promise<unknown> | undefined;
  const ready = () => (exported ??= exportModel(dir, { out, parts: true, ...quiet }));

  it("writes the user's files and a manifest", async () => {
    await ready();
    for (const f of ["config.json", "preprocessor_config.json", "vocab.json", "merges.txt", "README.md", "weights.safetensors"]) assert.ok(existsSync(join(out, f)), f);
    const m = JSON.parse(readFileSync(join(out, "bridgetower-export.json"), "utf8"));
    assert.deepEqual(m.heads, ["itm", "mlm", "itc"]);
    assert.deepEqual(m.opsets, { "ai.onnx": 17, "com.microsoft": 1 });
    assert.deepEqual(m.custom_operators, ["com.microsoft:MultiHeadAttention"]);
    assert.match(m.onnxruntime_tested, /^onnxruntime-node 1\.30\./);
    for (const f of Object.keys(m.files)) assert.ok(existsSync(join(out, f)), f);
    // The processor loads from the export folder and gives the fixture's ids.
    const p = await BridgeTowerProcessor.fromPretrained(out);
    const enc = await p.call({ text: "a <mask> of coffee on a table", images: join(dir, "images", "coffee.png") });
    const want = await readAll(fixture("e2e-fullvocab", "expected.safetensors"));
    assert.deepEqual([...enc.inputIds!.data], [...want.get("fillmask.input_ids")!.data]);
    assert.ok(maxAbsDiff(enc.pixelValues!.data, want.get("fillmask.pixel_values")!.data as Float32Array).diff === 0);
  });

  it("itm.onnx gives the same numbers in onnxruntime-web (wasm) as in onnxruntime-node", async () => {
    await ready();
    const { feeds, expected } = (await caseJobs("e2e-fullvocab")).get("itm")!;
    const node = await runFile(join(out, "itm.onnx"), feeds);
    ortWeb.env.wasm.numThreads = 1;
    const s = await ortWeb.InferenceSession.create(readFileSync(join(out, "itm.onnx")), {
      externalData: [{ path: "weights.safetensors", data: readFileSync(join(out, "weights.safetensors")) }],
    });
    const web = toTensors(await s.run(ortFeeds(ortWeb, s.inputNames, feeds)));
    await s.release();
    assert.deepEqual(Object.keys(web).sort(), Object.keys(node).sort());
    for (const k of Object.keys(node)) {
      const d = maxAbsDiff(web[k].data as Float32Array, node[k].data as Float32Array).diff;
      assert.ok(d <= 1e-4, `${k}: web vs node ${d}`);
    }
    assertClose("web itm.logits", web["itm.logits"], expected.get("itm.logits")!);
  });

  it("one image against many texts: an image batch of 1 pairs with every text", async () => {
    await ready();
    const { feeds, expected } = (await caseJobs("e2e-fullvocab")).get("itm")!;
    const px = feeds.pixel_values; // the same image four times
    const one = { data: (px.data as Float32Array).slice(0, px.data.length / px.dims[0]), dims: [1, ...px.dims.slice(1)] };
    const got = await runFile(join(out, "itm.onnx"), { ...feeds, pixel_values: one });
    assertClose("itm.logits (1 image, 4 texts)", got["itm.logits"], expected.get("itm.logits")!);
  });

  it("the parts chained by tensor name equal the whole graphs", async () => {
    await ready();
    for (const [head, { feeds }] of await caseJobs("e2e-fullvocab")) {
      const whole = await runFile(join(out, `${head}.onnx`), feeds);
      let values: Feeds = { ...feeds };
      for (const part of ["text", "vision", "trunk", `head_${head}`]) values = { ...values, ...(await runFile(join(out, `${part}.onnx`), values)) };
      for (const k of Object.keys(whole)) assert.ok(maxAbsDiff(values[k].data as Float32Array, whole[k].data as Float32Array).diff <= 1e-6, `${head} ${k}`);
      for (const f of ["text", "vision", "trunk", `head_${head}`]) checkLocations(out, `${f}.onnx`);
    }
    const emb = await runFile(join(out, "itc_text.onnx"), await runFile(join(out, "text.onnx"), (await caseJobs("e2e-fullvocab")).get("itc")!.feeds));
    assertClose("itc_text.onnx", emb["itc.text_embeds"], (await caseJobs("e2e-fullvocab")).get("itc")!.expected.get("itc.text_embeds")!);
  });
});

describe("int8 export", () => {
  it("equals the library's int8 run() (tiny-default, every head)", async () => {
    const cache = join(tmp, "int8-cache");
    const out = join(tmp, "int8");
    const r = await exportModel(fixture("tiny-default"), { out, dtype: "int8", int8CacheDir: cache, ...quiet });
    assert.deepEqual(r.manifest.weights, ["weights-int8.bin"]);
    assert.ok(r.manifest.custom_operators.includes("com.microsoft:DynamicQuantizeMatMul"));
    const inputs = Object.fromEntries(await readAll(fixture("tiny-default", "inputs.safetensors")));
    const model = await BridgeTowerModel.fromPretrained(fixture("tiny-default"), { heads: ["itm", "mlm", "itc"], dtype: "int8", int8CacheDir: cache, ...quiet });
    try {
      const lib = await model.run({
        inputIds: inputs.input_ids as Tensor<BigInt64Array>, attentionMask: inputs.attention_mask as Tensor<BigInt64Array>, pixelValues: inputs.pixel_values as Tensor<Float32Array>,
      });
      for (const head of r.heads) {
        checkLocations(out, `${head}.onnx`);
        const got = await runFile(join(out, `${head}.onnx`), inputs);
        for (const [k, v] of Object.entries(got)) {
          const d = maxAbsDiff(v.data as Float32Array, lib[k].data as Float32Array).diff;
          assert.ok(d <= 1e-5, `int8 ${head}.onnx ${k}: ${d} from the library`);
        }
      }
    } finally {
      await model.dispose();
    }
  });
});

describe("half-precision checkpoint", () => {
  it("BF16 weights stay BF16 in the weights file, cast in the graph, as the library loads them", async () => {
    const dir = join(tmp, "bf16-model");
    mkdirSync(dir);
    copyFileSync(fixture("tiny-default", "config.json"), join(dir, "config.json"));
    const src = await SafetensorsFile.open(fixture("tiny-default", "model.safetensors"));
    const tensors: [string, TensorToWrite][] = [];
    for (const [name, e] of src.entries) {
      const u = new Uint32Array(bytesToFloat32(await src.readBytes(name), e.dtype).buffer);
      tensors.push([name, { dtype: "BF16", shape: e.shape, data: Uint16Array.from(u, (x) => (x + 0x7fff + ((x >>> 16) & 1)) >>> 16) }]);
    }
    await src.close();
    await writeSafetensors(join(dir, "model.safetensors"), tensors);
    const out = join(tmp, "bf16");
    await exportModel(dir, { out, heads: ["itm"], ...quiet });
    const graph = onnxProto.onnx.ModelProto.decode(readFileSync(join(out, "itm.onnx"))).graph!;
    assert.ok((graph.initializer ?? []).some((t) => t.dataType === onnxProto.onnx.TensorProto.DataType.BFLOAT16 && (t.externalData?.length ?? 0) > 0));
    const inputs = Object.fromEntries(await readAll(fixture("tiny-default", "inputs.safetensors")));
    const got = await runFile(join(out, "itm.onnx"), inputs);
    const m = await BridgeTowerForImageAndTextRetrieval.fromPretrained(dir, quiet);
    const lib = await m.run({ inputIds: inputs.input_ids as Tensor<BigInt64Array>, attentionMask: inputs.attention_mask as Tensor<BigInt64Array>, pixelValues: inputs.pixel_values as Tensor<Float32Array> });
    await m.dispose();
    assert.ok(maxAbsDiff(got["itm.logits"].data as Float32Array, lib["itm.logits"].data as Float32Array).diff <= 1e-6);
  });
});
