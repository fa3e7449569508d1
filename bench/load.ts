/**
 * Where a cold start's time goes, one JSON line on stdout (run by bench/run.ts in a fresh process):
 *   node --import tsx bench/load.ts DIR INT8_CACHE
 * import_s: loading the package (onnxruntime, sharp, tokenizers); build_s: opening the checkpoint and building the
 * three ITM graphs; create_s / create_prepacked_s: onnxruntime session creation as we do it (weights file-backed) and
 * with onnxruntime's default weight prepacking; int8_verify_s: checking the full-size int8 cache file's checksums.
 */
import ort from "onnxruntime-node";

// Measured from process start: the static import above (onnxruntime's native module) counts as import time too.
const t0 = 0;
const { openCheckpoint } = await import("../src/io/checkpoint.js");
const { checkCacheFile, readCacheKey } = await import("../src/io/cache-file.js");
const { WeightStore } = await import("../src/model/weights.js");
const { loadConfig } = await import("../src/model/config.js");
const { buildHeadPart, buildTextPart, buildTrunkPart, buildVisionPart } = await import("../src/model/parts.js");
const { createSession } = await import("../src/runtime/session.js");
await import("../dist/index.js"); // the rest of the package, as a user's import loads it
const { readdirSync, statSync } = await import("node:fs");
const { join } = await import("node:path");
const [dir, int8Cache] = process.argv.slice(2);
const s = (a: number, b: number) => (b - a) / 1000;

const t1 = performance.now();
const config = await loadConfig(dir);
const store = await WeightStore.open(await openCheckpoint(join(dir, "model.safetensors")));
const graphs = [buildTextPart(store, config), buildVisionPart(store, config), buildTrunkPart(store, config), buildHeadPart(store, config, "itm")];
const bytes = graphs.map((g) => g.toBytes());
const t2 = performance.now();
const ours = [];
for (const g of graphs) ours.push(await createSession(g, store.dataDir));
const t3 = performance.now();
for (const x of ours) await x.release();
// onnxruntime's defaults: every GEMM weight packed into a private copy at creation.
const packed = [];
for (const b of bytes)
  packed.push(await ort.InferenceSession.create(b, { intraOpNumThreads: 2, graphOptimizationLevel: "all", extra: { session: { model_external_initializers_file_folder_path: store.dataDir } } }));
const t4 = performance.now();
for (const x of packed) await x.release();

// The int8 file the int8 benchmark left (bench/run.ts runs this after it): its checksum pass alone.
let int8_verify_s: number | null = null;
let int8_file_bytes: number | null = null;
const int8Dir = join(int8Cache, "int8");
for (const h of readdirSync(int8Dir, { withFileTypes: true }).filter((e) => e.isDirectory())) {
  const file = join(int8Dir, h.name, "weights-int8.bin");
  // The key and data size are the file's own (read from its trailer): this times the check, not a key match.
  const meta = await readCacheKey(file);
  if (typeof meta === "string") throw new Error(`${file}: ${meta}`);
  const a = performance.now();
  const problem = await checkCacheFile(file, meta.key, meta.size);
  if (problem !== undefined) throw new Error(`${file}: ${problem}`);
  int8_verify_s = s(a, performance.now());
  int8_file_bytes = statSync(file).size;
}
console.log(JSON.stringify({ import_s: s(t0, t1), build_s: s(t1, t2), create_s: s(t2, t3), create_prepacked_s: s(t3, t4), int8_verify_s, int8_file_bytes }));
await store.close();
process.exit(0);
