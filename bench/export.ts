/**
 * `bridgetower export` speed, one JSON line on stdout:
 *   node --import tsx bench/export.ts MODEL_DIR [IMAGES_DIR] [--repeats N]
 * export_s (fp32) and int8_export_s (with a fresh int8 cache: quantization included); then one image + 12-token
 * text through the exported itm.onnx in a fresh onnxruntime-node session (plain options, so weights are prepacked,
 * and with the library's disable_prepacking) next to the library's run() on the same inputs, alternating, same
 * thread count, medians of blocks of calls, each block after a warm-up call.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
// The built package, as a user runs it (build first: npx tsc -p tsconfig.json).
import { BridgeTowerForImageAndTextRetrieval, BridgeTowerProcessor, exportModel } from "../dist/index.js";
import { median } from "./lines.js";

const args = process.argv.slice(2);
const repeats = args.includes("--repeats") ? Number(args[args.indexOf("--repeats") + 1]) : 5;
const [dir, imagesArg] = args.filter((a, i) => !a.startsWith("--") && args[i - 1] !== "--repeats");
if (!dir) throw new Error("usage: bench/export.ts MODEL_DIR [IMAGES_DIR] [--repeats N]");
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const image = join(imagesArg ?? resolve(root, "../shared/fixtures/e2e-fullvocab/images"), "chelsea.png");
const threads = availableParallelism();
const log = (s: string) => process.stderr.write(`${s}\n`);
const tmp = mkdtempSync(join(tmpdir(), "bt-bench-export-"));

async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

try {
  const out = join(tmp, "fp32");
  log("bench: export fp32");
  const export_s = await seconds(() => exportModel(dir, { out, heads: ["itm"], onWarning: () => {} }));
  log("bench: export int8 (fresh int8 cache)");
  const int8_export_s = await seconds(() => exportModel(dir, { out: join(tmp, "int8"), heads: ["itm"], dtype: "int8", int8CacheDir: join(tmp, "cache"), onWarning: () => {} }));

  const processor = await BridgeTowerProcessor.fromPretrained(dir);
  const one = await processor.call({ text: "a photo of two cats sleeping on a pink couch", images: image });
  if (one.inputIds!.dims[1] !== 12) throw new Error(`pair text has ${one.inputIds!.dims[1]} tokens, expected 12`);
  const model = await BridgeTowerForImageAndTextRetrieval.fromPretrained(dir, { threads, onWarning: () => {} });
  const feeds = {
    input_ids: new ort.Tensor("int64", one.inputIds!.data, one.inputIds!.dims),
    attention_mask: new ort.Tensor("int64", one.attentionMask!.data, one.attentionMask!.dims),
    pixel_values: new ort.Tensor("float32", one.pixelValues!.data, one.pixelValues!.dims),
  };
  const plain = { intraOpNumThreads: threads };
  const noPrepack = { ...plain, extra: { session: { disable_prepacking: "1" } } };
  let session!: ort.InferenceSession;
  const export_session_s = await seconds(async () => (session = await ort.InferenceSession.create(join(out, "itm.onnx"), plain)));
  let noPrepackSession!: ort.InferenceSession;
  const export_session_noprepack_s = await seconds(async () => (noPrepackSession = await ort.InferenceSession.create(join(out, "itm.onnx"), noPrepack)));

  const lib = () => model.run({ inputIds: one.inputIds!, attentionMask: one.attentionMask, pixelValues: one.pixelValues! });
  const runs = { lib, exp: () => session.run(feeds), noPrepack: () => noPrepackSession.run(feeds) };
  const times: Record<keyof typeof runs, number[]> = { lib: [], exp: [], noPrepack: [] };
  log(`bench: itm pair, ${repeats} rounds of 3 (library, exported, exported without prepacking; ${threads} threads)`);
  // In blocks, each after a pause and a warm-up call: the plain sessions' thread pools keep spinning for a while after
  // a call (the library's stop), which would slow whatever runs right after them on a small machine.
  for (let i = 0; i < repeats; i++)
    for (const [k, fn] of Object.entries(runs)) {
      await new Promise((r) => setTimeout(r, 100));
      await fn();
      for (let j = 0; j < 3; j++) times[k as keyof typeof runs].push(await seconds(fn));
    }
  // The same numbers, or the comparison means nothing.
  const a = (await lib())["itm.logits"].data as Float32Array;
  const b = (await session.run(feeds))["itm.logits"].data as Float32Array;
  const itm_logits_max_diff = Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])));
  const itm_pair_s = median(times.lib);
  const export_itm_pair_s = median(times.exp);
  console.log(JSON.stringify({
    model: dir, threads, repeats, export_s, int8_export_s,
    itm_pair_s, export_itm_pair_s, export_itm_ratio: export_itm_pair_s / itm_pair_s,
    export_itm_pair_noprepack_s: median(times.noPrepack), export_itm_noprepack_ratio: median(times.noPrepack) / itm_pair_s,
    export_session_s, export_session_noprepack_s, itm_logits_max_diff,
  }));
  await Promise.all([session.release(), noPrepackSession.release(), model.dispose()]);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
