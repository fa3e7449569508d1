/**
 * The HTTP server's figures (issue 11), one JSON line on stdout; progress on stderr. Build first (`npm run build`):
 *   node --import tsx bench/serve.ts MODEL_DIR
 * - serve_text_embed_rps: 64 concurrent clients, each request one short text to /v1/embeddings (256 requests)
 * - serve_text_embed_rps_sequential: the same requests one at a time
 * - serve_itm_overhead: median /v1/itm round trip (one image, one text) over the median of the same rankTexts call
 *   in this process, with the model loaded through the library (after the server's load test, taking turns)
 * - serve_peak_rss_bytes: the server process's peak RSS (VmHWM) after the concurrent load
 */
import { readFileSync } from "node:fs";
import { BridgeTowerModel, BridgeTowerProcessor, rankTexts } from "../dist/index.js";
import { fixture } from "../test/helpers/fixtures.js";
import { post, startServer } from "../test/helpers/serve.js";
import { median } from "./lines.js";

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: node --import tsx bench/serve.ts MODEL_DIR\n");
  process.exit(2);
}
const CLIENTS = 64;
const REQUESTS = 256;
const REPEATS = 7;
const log = (s: string) => process.stderr.write(`bench/serve: ${s}\n`);
const imagePath = fixture("e2e-fullvocab", "images", "chelsea.png");
const imageUrl = `data:image/png;base64,${readFileSync(imagePath).toString("base64")}`;
const caption = "a cat sitting on a wooden floor";
const texts = Array.from({ length: REQUESTS }, (_, i) => `a short caption number ${i}`);

async function embed(url: string, text: string): Promise<void> {
  const r = await post(`${url}/v1/embeddings`, { input: text }, { timeoutMs: 600_000 });
  if (r.status !== 200) throw new Error(`/v1/embeddings answered ${r.status}: ${r.text}`);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

log(`starting the server on ${dir}`);
// Queue and body limits wide enough that the 64 clients are never refused.
const server = await startServer(["--quiet", "--max-queue", String(4 * CLIENTS)], { model: dir, threads: "default", timeoutMs: 30 * 60_000 });
try {
  const url = server.url;
  log("warm-up");
  for (let i = 0; i < 3; i++) await embed(url, texts[i]);

  log(`${REQUESTS} text embeddings from ${CLIENTS} concurrent clients`);
  let next = 0;
  const concurrent = await timed(() => Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < REQUESTS) await embed(url, texts[next++]);
  })));
  const peak = peakRss(server.proc.pid!);

  log(`${REQUESTS} text embeddings one at a time`);
  const sequential = await timed(async () => {
    for (const t of texts) await embed(url, t);
  });

  log("ITM round trips against the library's rankTexts in this process");
  const [processor, model] = await Promise.all([
    BridgeTowerProcessor.fromPretrained(dir),
    BridgeTowerModel.fromPretrained(dir, { heads: "available", onWarning: () => {} }),
  ]);
  const http = async () => {
    const r = await post(`${url}/v1/itm`, { image: imageUrl, texts: [caption] }, { timeoutMs: 600_000 });
    if (r.status !== 200) throw new Error(`/v1/itm answered ${r.status}: ${r.text}`);
  };
  const lib = () => rankTexts(model.itm, processor, imagePath, [caption]);
  await http();
  await lib();
  const httpTimes: number[] = [];
  const libTimes: number[] = [];
  // Taking turns, so a slow spell of the shared machine hits both alike.
  for (let i = 0; i < REPEATS; i++) {
    httpTimes.push(await timed(http));
    libTimes.push(await timed(lib));
  }
  await model.dispose();
  log(`ITM medians: HTTP ${(median(httpTimes) * 1000).toFixed(1)} ms, library ${(median(libTimes) * 1000).toFixed(1)} ms`);

  process.stdout.write(`${JSON.stringify({
    serve_text_embed_rps: REQUESTS / concurrent,
    serve_text_embed_rps_sequential: REQUESTS / sequential,
    serve_itm_overhead: median(httpTimes) / median(libTimes),
    serve_peak_rss_bytes: peak,
  })}\n`);
} finally {
  server.kill();
}
