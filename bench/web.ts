/**
 * bridgetower/web in headless Chromium on a model folder served locally (test/helpers/web-server.ts), int8:
 * - web_int8_first_load_s: BridgeTowerForImageAndTextRetrieval.fromPretrained with empty Cache Storage (download,
 *   quantize in the page, keep in Cache Storage, create the sessions);
 * - web_int8_cached_load_s: the same after a reload of the page (weights from Cache Storage);
 * - web_int8_itm_pair_s: one ITM forward of an image and a 12-token text (as bench/child.ts), median of 5 after a warm-up;
 * - web_peak_bytes: the tab's peak memory, the renderer process's peak resident set (VmHWM, /proc), which holds
 *   the JavaScript heap, the WebAssembly memory and onnxruntime-web's worker threads.
 * Prints one JSON line on stdout (progress on stderr).   node --import tsx bench/web.ts MODEL_DIR
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { fixture, repoRoot } from "../test/helpers/fixtures.js";
import { CHROMIUM } from "../test/helpers/web-browser.js";
import { startPageServer } from "../test/helpers/web-server.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: bench/web.ts MODEL_DIR");
const log = (m: string) => process.stderr.write(`bench/web: ${m}\n`);
const LIMIT_MS = 60 * 60_000;

/** Peak RSS (bytes) of the renderer processes of the browser whose command line carries `marker`. */
function rendererPeak(marker: string): number {
  const procs = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map((pid) => {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const ppid = /PPid:\s+(\d+)/.exec(status)?.[1];
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
      return { pid, ppid, cmd, hwm };
    } catch {
      return undefined; // gone meanwhile
    }
  }).filter((p) => p !== undefined);
  const root = procs.find((p) => p.cmd.includes(marker) && !p.cmd.includes("--type="));
  if (!root) return 0;
  const byParent = new Map<string, typeof procs>();
  for (const p of procs) byParent.set(p.ppid!, [...(byParent.get(p.ppid!) ?? []), p]);
  let peak = 0;
  const walk = (pid: string) => {
    for (const c of byParent.get(pid) ?? []) {
      if (c.cmd.includes("--type=renderer")) peak = Math.max(peak, c.hwm);
      walk(c.pid);
    }
  };
  walk(root.pid);
  return peak;
}

log("bundling src/web");
execFileSync(process.execPath, ["--import", "tsx", join(repoRoot, "src/web/build.ts")], { stdio: "inherit" });
const pages = await startPageServer({ models: { m: resolve(dir) }, images: [fixture("e2e-fullvocab", "images")] });
const marker = `--bridgetower-bench=${process.pid}`;
// A profile on disk, as a visitor's browser has: Cache Storage then lives in files, not in memory.
const profile = mkdtempSync(join(tmpdir(), "bt-web-bench-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", marker],
});
let peak = 0;
const poll = setInterval(() => (peak = Math.max(peak, rendererPeak(marker))), 250);
const guard = setTimeout(() => {
  log(`gave up after ${LIMIT_MS / 60_000} min`);
  void context.close().finally(() => {
    rmSync(profile, { recursive: true, force: true });
    process.exit(1);
  });
}, LIMIT_MS);
try {
  const page = await context.newPage();
  page.setDefaultTimeout(LIMIT_MS);
  page.on("console", (m) => (m.type() === "warning" || m.type() === "error") && log(`page ${m.type()}: ${m.text()}`));
  const ready = async () => {
    await page.goto(pages.url);
    await page.waitForFunction(() => (globalThis as { btReady?: boolean }).btReady === true);
  };
  const load = (pair: boolean) =>
    page.evaluate(async (pair) => {
      const bt = (globalThis as any).bt;
      const t0 = performance.now();
      const model = await bt.BridgeTowerForImageAndTextRetrieval.fromPretrained("/models/m", { dtype: "int8" });
      const load_s = (performance.now() - t0) / 1000;
      const times: number[] = [];
      if (pair) {
        const p = await bt.BridgeTowerProcessor.fromPretrained("/models/m");
        const one = await p.call({ text: "a photo of two cats sleeping on a pink couch", images: "/images/chelsea.png" });
        if (one.inputIds.dims[1] !== 12) throw new Error(`pair text has ${one.inputIds.dims[1]} tokens, expected 12`);
        const inputs = { inputIds: one.inputIds, attentionMask: one.attentionMask, pixelValues: one.pixelValues };
        await model.run(inputs); // warm-up
        for (let i = 0; i < 5; i++) {
          const t = performance.now();
          await model.run(inputs);
          times.push((performance.now() - t) / 1000);
        }
      }
      const threads = model.engine.runtime.threads;
      await model.dispose();
      return { load_s, pair_s: times.sort((a, b) => a - b)[Math.floor(times.length / 2)] ?? null, threads };
    }, pair);

  await ready();
  log("first load (download + quantize + Cache Storage)");
  const first = await load(true);
  log(`first load ${first.load_s.toFixed(2)} s, ITM pair ${first.pair_s?.toFixed(3)} s on ${first.threads} threads; reloading`);
  await ready();
  const cached = await load(false);
  log(`cached load ${cached.load_s.toFixed(2)} s`);
  peak = Math.max(peak, rendererPeak(marker));
  console.log(JSON.stringify({
    web_int8_first_load_s: first.load_s,
    web_int8_cached_load_s: cached.load_s,
    web_int8_itm_pair_s: first.pair_s,
    web_peak_bytes: peak,
  }));
} finally {
  clearInterval(poll);
  clearTimeout(guard);
  await context.close();
  await pages.close();
  rmSync(profile, { recursive: true, force: true });
}
