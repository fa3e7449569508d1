/**
 * `npm run bench [-- --json] [-- --repeats N] [-- --markdown FILE]`: speed and memory at the size of
 * bridgetower-large-itm-mlm-gaudi (random weights, generated once into .cache/large-random), with PyTorch measured in
 * the same run (shared/reference/torch_forward.py, when /usr/bin/python3 has torch). Every figure is the median of
 * `--repeats` runs after a warm-up; each model runs in its own process so peak RSS is per model.
 */
import { execFile } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ensureLargeModel, LARGE_DIR } from "../test/helpers/large.js";

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const shared = process.env.BRIDGETOWER_SHARED ?? resolve(root, "../shared");
const args = process.argv.slice(2);
const json = args.includes("--json");
const repeats = Number(args[args.indexOf("--repeats") + 1]) || 5;
const markdown = args.includes("--markdown") ? args[args.indexOf("--markdown") + 1] : undefined;
const log = (s: string) => process.stderr.write(`${s}\n`);

async function child(dir: string, task: string, dtype: string): Promise<Record<string, number>> {
  log(`bench: ${task} ${dtype}`);
  const images = join(shared, "fixtures", "image-processor", "images");
  const { stdout } = await run(process.execPath, ["--import", "tsx", join(root, "bench", "child.ts"), dir, task, dtype, String(repeats), images], {
    cwd: root,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split("\n").pop()!);
}

async function torch(task: string): Promise<number | null> {
  const script = join(shared, "reference", "torch_forward.py");
  try {
    await run("/usr/bin/python3", ["-c", "import torch"]);
  } catch {
    return null;
  }
  log(`bench: torch ${task}`);
  // OPENBLAS_CORETYPE is set on some machines for old OpenBLAS builds; the reference README times with it as set.
  const { stdout } = await run("/usr/bin/python3", [script, "time", "--config", "large", "--task", task, "--repeats", String(repeats)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split("\n").pop()!).median_s;
}

await ensureLargeModel((m) => log(`bench: ${m}`));
const dir = LARGE_DIR;
const weightBytes = statSync(join(dir, "model.safetensors")).size;
// Interleaved, so that a slow spell of this (noisy, shared) machine hits both sides alike.
const itm = await child(dir, "itm", "fp32");
const torchItm = await torch("itm");
const mlm = await child(dir, "mlm", "fp32");
const torchMlm = await torch("mlm");
const int8 = await child(dir, "itm", "int8").catch((e) => (log(`bench: int8 failed: ${e.message}`), null));
const r = {
  load_s: itm.load_s,
  itm_pair_s: itm.itm_pair_s,
  mlm_s: mlm.mlm_s,
  fill_mask_s: mlm.fill_mask_s,
  rank10_texts_s: itm.rank10_texts_s,
  rank10_images_s: itm.rank10_images_s,
  peak_rss_bytes: Math.max(itm.peak_rss_bytes, mlm.peak_rss_bytes),
  int8_load_s: int8?.load_s ?? null,
  int8_itm_pair_s: int8?.itm_pair_s ?? null,
  int8_peak_rss_bytes: int8?.peak_rss_bytes ?? null,
  torch_itm_pair_s: torchItm,
  torch_mlm_s: torchMlm,
  weight_bytes: weightBytes,
  repeats,
  cpu: cpus()[0]?.model ?? "unknown",
  cores: cpus().length,
};

const ratio = (a: number | null, b: number | null) => (a != null && b ? (a / b).toFixed(2) : "n/a");
const gb = (b: number | null) => (b == null ? "n/a" : `${(b / 2 ** 30).toFixed(2)} GiB`);
const s = (x: number | null | undefined) => (x == null ? "n/a" : `${x.toFixed(2)} s`);
const table = [
  "| measure | value | bar |",
  "|---|---|---|",
  `| load_s (cold process to ready) | ${s(r.load_s)} | <= 10 s |`,
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
].join("\n");
const machine = `${r.cores} x ${r.cpu}, Node ${process.version}; fp32 weights ${gb(r.weight_bytes)}; median of ${repeats} runs after a warm-up`;
if (markdown) writeFileSync(markdown, `${table}\n\nMachine: ${machine}.\n`);
if (!json) console.log(`${table}\n\n${machine}`);
console.log(JSON.stringify(r));
