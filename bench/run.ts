/**
 * `npm run bench [-- --json] [-- --repeats N] [-- --rounds N] [-- --markdown FILE]`: speed and memory at the size of
 * bridgetower-large-itm-mlm-gaudi (random weights, generated once into .cache/large-random), with PyTorch measured in
 * the same run (shared/reference/torch_forward.py, when /usr/bin/python3 has torch). Every figure is the median of
 * `--repeats` runs after a warm-up; each model runs in its own processes so peak RSS is per model, and the single
 * pairs (fp32) are timed over `--rounds` fresh processes, alternating with PyTorch's (bench/torch_pair.py).
 */
import { execFile } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ensureLargeModel, LARGE_DIR, LARGE_ITC_DIR } from "../test/helpers/large.js";
import { LineProcess, median } from "./lines.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const shared = process.env.BRIDGETOWER_SHARED ?? resolve(root, "../shared");
const args = process.argv.slice(2);
const json = args.includes("--json");
const repeats = Number(args[args.indexOf("--repeats") + 1]) || 5;
const rounds = Number(args[args.indexOf("--rounds") + 1]) || 2;
const markdown = args.includes("--markdown") ? args[args.indexOf("--markdown") + 1] : undefined;
const log = (s: string) => process.stderr.write(`${s}\n`);

const hasTorch = await promisify(execFile)("/usr/bin/python3", ["-c", "import torch"]).then(() => true, () => false);
if (!hasTorch) log("bench: /usr/bin/python3 has no torch; the PyTorch columns will be null");

interface Measured {
  load_s: number;
  pair_s: number;
  torch_pair_s: number | null;
  peak_rss_bytes: number;
  rank10_texts_s?: number;
  rank10_images_s?: number;
  fill_mask_s?: number;
}

/**
 * `rounds` times: loads the model in a fresh process (load_s: a cold start), then times single pairs, each
 * followed by one of PyTorch's (a fresh process per round too) when `torch`, so that a slow spell of this noisy,
 * shared machine hits both sides alike, and a process that happens to run slow counts once among several. The
 * last round then times the model's other jobs and reports the process's peak RSS.
 */
async function measure(task: "itm" | "mlm", dtype: "fp32" | "int8", torch: boolean, rounds: number): Promise<Measured> {
  const images = join(shared, "fixtures", "image-processor", "images");
  const loads: number[] = [];
  const pairs: number[] = [];
  const torchPairs: number[] = [];
  for (let round = 1; ; round++) {
    log(`bench: ${task} ${dtype}${rounds > 1 ? ` (round ${round} of ${rounds})` : ""}`);
    const ours = new LineProcess(`bench/child.ts ${task} ${dtype}`, process.execPath, ["--import", "tsx", join(root, "bench", "child.ts"), LARGE_DIR, task, dtype, String(repeats), images], root);
    let ref: LineProcess | undefined;
    try {
      loads.push((await ours.next()).load_s); // started alone, so nothing else competes with the load
      if (torch) {
        log(`bench: torch ${task} (building random weights, choosing its thread setting)`);
        ref = new LineProcess(`bench/torch_pair.py ${task}`, "/usr/bin/python3", [join(root, "bench", "torch_pair.py"), join(shared, "reference"), task]);
        await ref.next();
      }
      for (let i = 0; i < repeats; i++) {
        pairs.push((await ours.ask("pair")).s);
        if (ref) torchPairs.push((await ref.ask("run")).s);
      }
      ref?.close(); // idle from here on: its memory goes before our other jobs run
      ref = undefined;
      if (round < rounds) continue;
      const rest = await ours.ask("rest");
      return { load_s: median(loads), pair_s: median(pairs), torch_pair_s: torchPairs.length ? median(torchPairs) : null, peak_rss_bytes: rest.peak_rss_bytes, ...rest };
    } finally {
      ref?.close();
      ours.close();
    }
  }
}

/** Runs a command `repeats` times after a warm-up run; the median wall time in seconds. */
async function wall(command: string, argv: string[]): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    const t = performance.now();
    await promisify(execFile)(command, argv, { cwd: root, maxBuffer: 1 << 24 });
    if (i > 0) xs.push((performance.now() - t) / 1000);
  }
  return median(xs);
}

/** One JSON line from a fresh process running a bench script. */
async function once(script: string, argv: string[]): Promise<Record<string, number>> {
  const p = new LineProcess(script, process.execPath, ["--import", "tsx", join(root, "bench", script), ...argv], root);
  try {
    return await p.next();
  } finally {
    p.close();
  }
}

// Derived files (int8 weights) go to an ignored folder of the repository unless the caller chose a cache.
process.env.BRIDGETOWER_CACHE ??= join(root, ".cache", "bench-cache");
const only = args.includes("--only") ? new Set(args[args.indexOf("--only") + 1].split(",")) : undefined;
const wanted = (section: string) => !only || only.has(section);
const failed = (what: string) => (e: Error) => (log(`bench: ${what} failed: ${e.message}`), null);
await ensureLargeModel((m) => log(`bench: ${m}`));
const weightBytes = statSync(join(LARGE_DIR, "model.safetensors")).size;
const image0 = join(shared, "fixtures", "e2e-fullvocab", "images", "chelsea.png");
const cliArgs = ["itm", image0, "a cat sitting on a wooden floor", "--model", LARGE_DIR];
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- one bag of figures, read by name below
let r: Record<string, any> = { weight_bytes: weightBytes, repeats, rounds, cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length };

if (wanted("core")) {
  const itm = await measure("itm", "fp32", hasTorch, rounds);
  const mlm = await measure("mlm", "fp32", hasTorch, rounds);
  log("bench: int8 (the cache file is built first, untimed)");
  await promisify(execFile)(join(root, "bin", "bridgetower"), [...cliArgs, "--dtype", "int8"], { cwd: root });
  const int8 = await measure("itm", "int8", false, 1).catch(failed("int8"));
  r = {
    ...r,
    load_s: itm.load_s,
    itm_pair_s: itm.pair_s,
    mlm_s: mlm.pair_s,
    fill_mask_s: mlm.fill_mask_s,
    rank10_texts_s: itm.rank10_texts_s,
    rank10_images_s: itm.rank10_images_s,
    peak_rss_bytes: Math.max(itm.peak_rss_bytes, mlm.peak_rss_bytes),
    int8_load_s: int8?.load_s ?? null,
    int8_itm_pair_s: int8?.pair_s ?? null,
    int8_peak_rss_bytes: int8?.peak_rss_bytes ?? null,
    torch_itm_pair_s: itm.torch_pair_s,
    torch_mlm_s: mlm.torch_pair_s,
  };
}
if (wanted("load")) {
  log("bench: where load time goes");
  r.load_breakdown = await once("load.ts", [LARGE_DIR, process.env.BRIDGETOWER_CACHE]).catch(failed("load breakdown"));
  log("bench: one-shot CLI itm");
  r.cli_itm_wall_s = await wall(join(root, "bin", "bridgetower"), cliArgs).catch(failed("CLI itm"));
}
const images = join(shared, "fixtures", "image-processor", "images");
// The capabilities on the checkpoint with all three heads, each script in a fresh process (bench/*.ts say what they time).
const sections: [string, string, string[]][] = [
  ["multihead", "multihead.ts", [LARGE_ITC_DIR, images]],
  ["serve", "serve.ts", [LARGE_ITC_DIR]],
  ["export", "export.ts", [LARGE_ITC_DIR]],
  ["index", "index.ts", [LARGE_ITC_DIR]],
  ["web", "web.ts", [LARGE_ITC_DIR]],
];
for (const [section, script, argv] of sections) {
  if (!wanted(section)) continue;
  await ensureLargeModel((m) => log(`bench: ${m}`), true);
  log(`bench: ${section} (bench/${script})`);
  const out = await once(script, argv).catch(failed(section));
  if (section === "multihead") Object.assign(r, { multihead_load_s: out?.load_s ?? null, multihead_peak_rss_bytes: out?.peak_rss_bytes ?? null });
  else Object.assign(r, out ?? {});
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b ? (a / b).toFixed(2) : "n/a");
const n = (x: number | null | undefined) => (x == null ? "n/a" : x.toFixed(x < 10 ? 3 : 1));
const gb = (b: number | null) => (b == null ? "n/a" : `${(b / 2 ** 30).toFixed(2)} GiB`);
const s = (x: number | null | undefined) => (x == null ? "n/a" : `${x.toFixed(2)} s`);
const table = [
  "| measure | value | bar |",
  "|---|---|---|",
  `| load_s (cold process to ready) | ${s(r.load_s)} | <= 2 s |`,
  `| int8_load_s | ${s(r.int8_load_s)} | <= 2 s |`,
  `| cli_itm_wall_s (\`bridgetower itm\` end to end) | ${s(r.cli_itm_wall_s)} | <= 2 x itm_pair_s (${ratio(r.cli_itm_wall_s, r.itm_pair_s)} x) |`,
  `| multihead_peak_rss_bytes (ITM + MLM + ITC, one checkpoint) | ${gb(r.multihead_peak_rss_bytes)} | <= 1.3 x weights (${ratio(r.multihead_peak_rss_bytes, r.weight_bytes)} x) |`,
  `| itm_pair_s | ${s(r.itm_pair_s)} | <= 0.75 x torch (${ratio(r.itm_pair_s, r.torch_itm_pair_s)} x) |`,
  `| mlm_s | ${s(r.mlm_s)} | <= 0.75 x torch (${ratio(r.mlm_s, r.torch_mlm_s)} x) |`,
  `| rank10_texts_s | ${s(r.rank10_texts_s)} | <= 4 x itm_pair_s (${ratio(r.rank10_texts_s, r.itm_pair_s)} x) |`,
  `| rank10_images_s | ${s(r.rank10_images_s)} | (${ratio(r.rank10_images_s, r.itm_pair_s)} x itm_pair_s) |`,
  `| fill_mask_s (one image + text, with preprocessing) | ${s(r.fill_mask_s)} | |`,
  `| peak_rss_bytes | ${gb(r.peak_rss_bytes)} | <= 1.3 x weights (${ratio(r.peak_rss_bytes, r.weight_bytes)} x) |`,
  `| int8_itm_pair_s | ${s(r.int8_itm_pair_s)} | <= 0.4 x torch (${ratio(r.int8_itm_pair_s, r.torch_itm_pair_s)} x) |`,
  `| int8_peak_rss_bytes | ${gb(r.int8_peak_rss_bytes)} | <= 0.5 x weights (${ratio(r.int8_peak_rss_bytes, r.weight_bytes)} x) |`,
  `| torch_itm_pair_s | ${s(r.torch_itm_pair_s)} | |`,
  `| torch_mlm_s | ${s(r.torch_mlm_s)} | |`,
  `| serve_text_embed_rps (64 concurrent clients) | ${n(r.serve_text_embed_rps)} | >= 4 x sequential (${ratio(r.serve_text_embed_rps, r.serve_text_embed_rps_sequential)} x) |`,
  `| serve_text_embed_rps_sequential | ${n(r.serve_text_embed_rps_sequential)} | |`,
  `| serve_itm_overhead (/v1/itm vs rankTexts) | ${n(r.serve_itm_overhead)} | <= 1.05 |`,
  `| serve_peak_rss_bytes (all heads, under load) | ${gb(r.serve_peak_rss_bytes)} | <= 1.3 x weights (${ratio(r.serve_peak_rss_bytes, r.weight_bytes)} x) |`,
  `| export_s / int8_export_s | ${s(r.export_s)} / ${s(r.int8_export_s)} | |`,
  `| export_itm_pair_s (exported itm.onnx, fresh session) | ${s(r.export_itm_pair_s)} | <= 1.05 x library (${n(r.export_itm_ratio)} x) |`,
  `| index_images_per_s / int8 | ${n(r.index_images_per_s)} / ${n(r.int8_index_images_per_s)} | >= 0.9 x 1 / embed_image_s (${n(r.index_vs_model)} x / ${n(r.int8_index_vs_model)} x) |`,
  `| index_rerun_s (1,000 unchanged images) | ${s(r.index_rerun_s)} | <= 3 s |`,
  `| search_ms p50, 100,000 rows: exact / ANN | ${n(r.search_ms_exact)} / ${n(r.search_ms_ann)} | |`,
  `| recall_at_10 (ANN vs exact) | ${n(r.recall_at_10)} | >= 0.95 |`,
  `| web int8: first load / cached load / ITM pair | ${s(r.web_int8_first_load_s)} / ${s(r.web_int8_cached_load_s)} / ${s(r.web_int8_itm_pair_s)} | cached <= 10 s, pair <= 3 x Node int8 (${ratio(r.web_int8_itm_pair_s, r.int8_itm_pair_s)} x) |`,
  `| web_peak_bytes (the tab) | ${gb(r.web_peak_bytes)} | within 4 GB wasm |`,
].filter((row) => !/\| (n\/a|n\/a \/ n\/a|n\/a \/ n\/a \/ n\/a) \|/.test(row)).join("\n");
const b = r.load_breakdown ?? {};
const breakdownLine = `Load breakdown (fresh process, ITM parts): import ${s(b.import_s)}, checkpoint + graphs ${s(b.build_s)}, sessions ${s(b.create_s)} (with onnxruntime's weight prepacking: ${s(b.create_prepacked_s)}); int8 cache check ${s(b.int8_verify_s)} over ${gb(b.int8_file_bytes)}.`;
const machine = `${r.cores} x ${r.cpu}, Node ${process.version}; fp32 weights ${gb(r.weight_bytes)}; median of ${repeats} runs after a warm-up (fp32 pairs: ${rounds} rounds of ${repeats}, each in fresh processes, alternating with PyTorch's)`;
if (markdown) writeFileSync(markdown, `${table}\n\n${breakdownLine}\n\nMachine: ${machine}.\n`);
if (!json) console.log(`${table}\n\n${breakdownLine}\n\n${machine}`);
console.log(JSON.stringify(r));
