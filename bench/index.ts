/**
 * `node --import tsx bench/index.ts MODEL_DIR`: indexing and search speed of `Collection` (bridgetower index /
 * search), one JSON line on stdout (progress on stderr). MODEL_DIR is a folder with the ITC heads.
 *
 * - embed_image_s: median of the library's single-image `model.itc.embedImages` (preprocessed once), in-process;
 *   index_images_per_s: `Collection.add` over 16 generated 640x480 PNGs (read, hash, decode, preprocess, embed,
 *   commit, compact), with the same loaded model; index_vs_model = index_images_per_s x embed_image_s (1 = the
 *   model's own single-image throughput). Both for fp32 and int8 (int8_ prefix).
 * - index_rerun_s: a fresh `Collection.open` + `add` over 1,000 unchanged small PNGs indexed before (int8).
 * - search_ms_exact / search_ms_ann: p50 over 100 queries of `searchVector` (top 10) on 100,000 rows of synthetic
 *   unit vectors of the model's contrastive size, before and after the ANN index (IVF-PQ, refine factor 20);
 *   recall_at_10: ANN top 10 against exact top 10. The vectors are clustered in a 16-dimensional latent space (as
 *   real embeddings are structured; uniform random vectors have no meaningful neighbours), queries from the same law.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { BridgeTowerModel, BridgeTowerProcessor, Collection } from "../src/index.js";
import { lance, openTable } from "../src/collection/table.js";
import { writePng } from "../test/helpers/media.js";
import { median } from "./lines.js";

const modelDir = process.argv[2];
if (!modelDir) {
  console.error("usage: node --import tsx bench/index.ts MODEL_DIR");
  process.exit(2);
}
const log = (s: string) => process.stderr.write(`bench/index: ${s}\n`);
const work = mkdtempSync(join(tmpdir(), "bt-bench-index-"));
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());

async function photos(dir: string, n: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (let k = 0; k < n; k++) {
    const [w, h] = [640, 480];
    const data = Buffer.alloc(w * h * 3);
    for (let i = 0; i < data.length; i++) data[i] = (((i % (w * 3)) * (k + 3)) ^ ((i / (w * 3)) * 7)) + Math.floor(rnd() * 24);
    await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(join(dir, `photo${k}.png`));
  }
}

async function indexSpeed(dtype: "fp32" | "int8", images: string) {
  const model = await BridgeTowerModel.fromPretrained(modelDir, { heads: ["itc"], dtype });
  const processor = await BridgeTowerProcessor.fromPretrained(modelDir);
  const { pixelValues } = await processor.call({ images: [join(images, "photo0.png")] });
  const times: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    await model.itc.embedImages(pixelValues!);
    if (i >= 2) times.push((performance.now() - t0) / 1000);
  }
  const embed_image_s = median(times);
  // Untimed first: one image through a scratch collection (JIT, LanceDB and Arrow loading).
  const warm = await Collection.open(join(work, `warm-${dtype}`), { model, processor, create: true });
  await warm.add([join(images, "photo0.png")]);
  await warm.close();
  const c = await Collection.open(join(work, `db-${dtype}`), { model, processor, create: true });
  const t0 = performance.now();
  const s = await c.add([images]);
  const seconds = (performance.now() - t0) / 1000;
  if (s.indexed !== 16) throw new Error(`indexed ${s.indexed} of 16`);
  await c.close();
  log(`${dtype}: embedImages ${embed_image_s.toFixed(4)} s, index ${(16 / seconds).toFixed(2)} images/s`);
  return { model, processor, embed_image_s, index_images_per_s: 16 / seconds };
}

async function rerun(model: BridgeTowerModel, processor: BridgeTowerProcessor) {
  const dir = join(work, "small");
  for (let i = 0; i < 1000; i++) await writePng(join(dir, `s${String(i).padStart(4, "0")}.png`), i, 32, 24);
  const db = join(work, "db-rerun");
  const first = await Collection.open(db, { model, processor, create: true });
  await first.add([dir], { batchSize: 16, onProgress: (p) => p.done % 200 === 0 && p.done && log(`rerun setup: ${p.done}/1000 indexed`) });
  await first.close();
  const t0 = performance.now();
  const c = await Collection.open(db); // what a rerun of `bridgetower index` does: the recorded model, nothing loaded
  const s = await c.add([dir]);
  await c.close();
  if (s.unchanged !== 1000 || s.indexed !== 0) throw new Error(`rerun: ${JSON.stringify(s)}`);
  return (performance.now() - t0) / 1000;
}

async function search(dim: number) {
  const K = Math.min(16, dim);
  const A = Array.from({ length: dim }, () => Float32Array.from({ length: K }, gauss));
  const centers = Array.from({ length: 1000 }, () => Float32Array.from({ length: K }, gauss));
  const point = () => {
    const c = centers[Math.floor(rnd() * centers.length)];
    const z = c.map((x) => x + 0.6 * gauss());
    const v = Float32Array.from({ length: dim }, (_, d) => A[d].reduce((s, a, k) => s + a * z[k], 0.3 * gauss()));
    const n = Math.hypot(...v);
    return Array.from(v, (x) => x / n);
  };
  const db = join(work, "db-search");
  // The rows are written straight into the collection's table (created with the model's record).
  const probe = await Collection.open(db, { model: modelDir, create: true });
  const record = probe.model;
  await probe.close();
  const table = (await openTable(await (await lance()).connect(db), db, record))!;
  for (let b = 0; b < 100_000; b += 10_000) {
    await table.add(Array.from({ length: 10_000 }, (_, i) => ({
      id: (b + i).toString(16).padStart(32, "0"), source: `/synthetic/${b + i}`, modality: "image", text: null, video: null, time_ms: null,
      frame: null, source_sha256: "0".repeat(64), text_sha256: null, source_size: 0, source_mtime_ms: 0, vector: point(),
    })));
    log(`search table: ${b + 10_000} rows`);
  }
  table.close();
  const c = await Collection.open(db);
  const queries = Array.from({ length: 100 }, point);
  const timed = async () => {
    const ms: number[] = [];
    const ids: string[][] = [];
    for (const q of queries) {
      const t0 = performance.now();
      const r = await c.searchVector(q, { topK: 10 });
      ms.push(performance.now() - t0);
      ids.push(r.map((x) => x.id));
    }
    return { ms: p50(ms), ids };
  };
  const exact = await timed();
  const t0 = performance.now();
  await c.createIndex();
  const build = (performance.now() - t0) / 1000;
  log(`ANN index built in ${build.toFixed(1)} s`);
  const ann = await timed();
  const hits = ann.ids.reduce((s, got, i) => s + got.filter((id) => exact.ids[i].includes(id)).length, 0);
  await c.close();
  return { search_rows: 100_000, search_ms_exact: exact.ms, search_ms_ann: ann.ms, recall_at_10: hits / (10 * queries.length), ann_index_build_s: build };
}

try {
  const images = join(work, "photos");
  await photos(images, 16);
  const fp32 = await indexSpeed("fp32", images);
  const dim = fp32.model.config.contrastiveHiddenSize!;
  await fp32.model.dispose();
  const int8 = await indexSpeed("int8", images);
  const index_rerun_s = await rerun(int8.model, int8.processor);
  await int8.model.dispose();
  const s = await search(dim);
  const r = (x: number, d = 4) => Number(x.toPrecision(d));
  console.log(JSON.stringify({
    model: modelDir, dim, images: 16,
    embed_image_s: r(fp32.embed_image_s), index_images_per_s: r(fp32.index_images_per_s), index_vs_model: r(fp32.index_images_per_s * fp32.embed_image_s, 3),
    int8_embed_image_s: r(int8.embed_image_s), int8_index_images_per_s: r(int8.index_images_per_s), int8_index_vs_model: r(int8.index_images_per_s * int8.embed_image_s, 3),
    index_rerun_s: r(index_rerun_s), rerun_images: 1000,
    search_rows: s.search_rows, search_ms_exact: r(s.search_ms_exact), search_ms_ann: r(s.search_ms_ann), recall_at_10: r(s.recall_at_10, 3), ann_index_build_s: r(s.ann_index_build_s, 3),
  }));
} finally {
  rmSync(work, { recursive: true, force: true });
}
