/**
 * bridgetower/web in Debian's Chromium: e2e-fullvocab loaded in the page from the Hub imitation (through a CORS
 * front) and from a plain model-folder URL, checked against the Node library's numbers, in fp32 and int8; the
 * page is cross-origin isolated and runs onnxruntime-web on more than one thread; a reload takes the int8 weights
 * from Cache Storage with no weight request. Errors of bad input are in web-errors.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BridgeTowerModel, BridgeTowerProcessor, embed, fillMask, rankTexts } from "../src/index.js";
import { fixture } from "./helpers/fixtures.js";
import { inPage, REPO, skipWithoutChromium, startWebEnv, type WebEnv } from "./helpers/web-browser.js";
import { startPageServer } from "./helpers/web-server.js";

const E2E = fixture("e2e-fullvocab");
const IMAGES = join(E2E, "images");
const CAPTIONS = ["a cat sitting on a wooden floor", "a cup of coffee on a table", "a rocket launching into the sky", "a black and white photo of a man"];
const MASKED = "a <mask> of coffee on a table";
const int8Dir = mkdtempSync(join(tmpdir(), "bt-web-int8-"));

interface Jobs {
  ranked: { text: string; score: number; logits: number[] }[];
  fill: { sequence: string; decoded: string; masks: { token: string; tokenId: number; score: number }[][] };
  emb: { textEmbeds: number[][]; imageEmbeds: number[][]; crossEmbeds: number[][] | null; textImageSimilarity: number[][] };
}

/** The three jobs through the Node library. */
async function nodeJobs(dtype: "fp32" | "int8"): Promise<Jobs> {
  const model = await BridgeTowerModel.fromPretrained(E2E, { heads: "available", dtype, int8CacheDir: int8Dir, threads: 1, onWarning: () => {} });
  try {
    const p = await BridgeTowerProcessor.fromPretrained(E2E);
    const ranked = await rankTexts(model.itm, p, join(IMAGES, "chelsea.png"), CAPTIONS);
    const fill = await fillMask(model.mlm, p, join(IMAGES, "coffee.png"), MASKED);
    const emb = await embed(model.itc, p, { texts: ["a cat", "coffee"], images: [join(IMAGES, "chelsea.png"), join(IMAGES, "coffee.png")] });
    return { ranked, fill, emb };
  } finally {
    await model.dispose();
  }
}

/** The same jobs in the page (sent there as source: no closures). */
interface PageJobs extends Jobs {
  threads: number;
  loadMs: number;
  isolated: boolean;
  progress: { file: string; downloaded: number; total: number; tensors: number; totalTensors: number };
  files: string[];
}

async function pageJobs(bt: any, { from, options, captions, masked }: { from: string; options: any; captions: string[]; masked: string }): Promise<PageJobs> {
  const progress: any[] = [];
  const t0 = performance.now();
  const model = await bt.BridgeTowerModel.fromPretrained(from, { ...options, heads: "available", onProgress: (p: any) => progress.push(p) });
  const loadMs = performance.now() - t0;
  const p = await bt.BridgeTowerProcessor.fromPretrained(from, options);
  const ranked = await bt.rankTexts(model.itm, p, "/images/chelsea.png", captions);
  const fill = await bt.fillMask(model.mlm, p, "/images/coffee.png", masked);
  const emb = await bt.embed(model.itc, p, { texts: ["a cat", "coffee"], images: ["/images/chelsea.png", "/images/coffee.png"] });
  const threads = model.engine.runtime.threads;
  await model.dispose();
  return { ranked, fill, emb, threads, loadMs, isolated: (globalThis as any).crossOriginIsolated, progress: progress.slice(-1)[0], files: [...new Set(progress.map((e) => e.file))] };
}

function unwrap<T>(r: T): Exclude<T, { error: unknown }> {
  if (r && typeof r === "object" && "error" in r) assert.fail(`the page threw ${(r as any).error.name}: ${(r as any).error.message}`);
  return r as Exclude<T, { error: unknown }>;
}

const near = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);

/** Same rankings, tokens and decodes; numbers within `tol` (fill-mask probabilities relative to their size). */
function assertSame(got: Jobs, want: Jobs, tol: number): void {
  assert.deepEqual(got.ranked.map((r) => r.text), want.ranked.map((r) => r.text));
  got.ranked.forEach((r, i) => {
    near(r.score, want.ranked[i].score, tol, `ITM probability of "${r.text}"`);
    r.logits.forEach((l, j) => near(l, want.ranked[i].logits[j], tol, `ITM logit ${j} of "${r.text}"`));
  });
  assert.deepEqual(got.fill.masks[0].map((m) => [m.tokenId, m.token]), want.fill.masks[0].map((m) => [m.tokenId, m.token]));
  got.fill.masks[0].forEach((m, i) => near(m.score, want.fill.masks[0][i].score, tol * want.fill.masks[0][i].score, `fill-mask probability of ${m.token}`));
  assert.equal(got.fill.sequence, want.fill.sequence);
  assert.equal(got.fill.decoded, want.fill.decoded);
  for (const k of ["textEmbeds", "imageEmbeds", "crossEmbeds", "textImageSimilarity"] as const)
    want.emb[k]!.forEach((row, i) => row.forEach((v, j) => near(got.emb[k]![i][j], v, tol, `${k}[${i}][${j}]`)));
}

describe("bridgetower/web in Chromium", { timeout: 600_000, skip: skipWithoutChromium }, () => {
  let env: WebEnv;
  let node: Jobs;
  before(async () => {
    env = await startWebEnv({ models: { e2e: E2E }, images: [IMAGES] });
    node = await nodeJobs("fp32");
  }, { timeout: 120_000 });
  after(async () => {
    await env?.close();
    rmSync(int8Dir, { recursive: true, force: true });
  });

  it("fp32 from the Hub imitation and from a folder URL: Node's numbers, isolated, on more than one thread", { timeout: 180_000 }, async () => {
    const { page } = await env.open();
    const args = { captions: CAPTIONS, masked: MASKED };
    const hub = unwrap(await inPage(page, pageJobs, { ...args, from: REPO, options: { endpoint: env.front.url } }));
    assertSame(hub, node, 1e-4);
    assert.equal(hub.isolated, true, "the page is cross-origin isolated");
    assert.ok(hub.threads > 1, `onnxruntime-web threads: ${hub.threads}`);
    assert.ok(page.workers().length >= hub.threads - 1, `${page.workers().length} workers for ${hub.threads} threads`);
    assert.deepEqual(hub.files, ["model.safetensors"]);
    assert.equal(hub.progress.downloaded, hub.progress.total);
    assert.equal(hub.progress.tensors, hub.progress.totalTensors);
    const folder = unwrap(await inPage(page, pageJobs, { ...args, from: "/models/e2e", options: {} }));
    assertSame(folder, node, 1e-4);
    // Hidden states take parts built on first use (their weights fetched again): the same logits, and every layer.
    const hidden = unwrap(await inPage(page, async (bt: any, { from }: { from: string }) => {
      const m = await bt.BridgeTowerForImageAndTextRetrieval.fromPretrained(from);
      const p = await bt.BridgeTowerProcessor.fromPretrained(from);
      const inputs = await p.call({ text: "a cat", images: "/images/chelsea.png" });
      const plain = await m.run(inputs);
      const all = await m.run(inputs, true);
      await m.dispose();
      const a = plain["itm.logits"].data;
      const b = all["itm.logits"].data;
      return { diff: Math.max(...Array.from(a as number[], (v, i) => Math.abs(v - b[i]))), keys: Object.keys(all).filter((k) => k.startsWith("hidden_states.")).length };
    }, { from: "/models/e2e" }));
    assert.equal(hidden.keys, 8, "hidden states: 4 text + 4 image");
    assert.ok(hidden.diff < 1e-5, `ITM logits with and without hidden states differ by ${hidden.diff}`);
    console.log(`web fp32: loaded in ${hub.loadMs.toFixed(0)} ms on ${hub.threads} threads; ITM probabilities as Node's to ${Math.max(...hub.ranked.map((r, i) => Math.abs(r.score - node.ranked[i].score))).toExponential(1)}`);
  });

  it("PNG pixel values are Node's bit for bit, from every kind of image input", { timeout: 60_000 }, async () => {
    const p = await BridgeTowerProcessor.fromPretrained(E2E);
    const { page } = await env.open();
    for (const name of ["chelsea.png", "coffee.png"]) {
      const want = Array.from((await p.call({ images: join(IMAGES, name) })).pixelValues!.data);
      const got = unwrap(await inPage(page, async (bt: any, { url, endpoint, repo }: { url: string; endpoint: string; repo: string }) => {
        const proc = await bt.BridgeTowerProcessor.fromPretrained(repo, { endpoint });
        const g = globalThis as any;
        const blob = await (await fetch(url)).blob();
        const img = new g.Image();
        img.src = url;
        const bitmap = await g.createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
        const canvas = new g.OffscreenCanvas(bitmap.width, bitmap.height);
        canvas.getContext("2d").drawImage(bitmap, 0, 0);
        const imageData = canvas.getContext("2d").getImageData(0, 0, bitmap.width, bitmap.height);
        const inputs: Record<string, unknown> = { url, blob, file: new File([blob], "x.png"), bitmap, imageData, img, absoluteUrl: new URL(url, g.location.href) };
        const out: Record<string, number[]> = {};
        for (const [k, v] of Object.entries(inputs)) out[k] = Array.from((await proc.call({ images: v })).pixelValues.data);
        return out;
      }, { url: `/images/${name}`, endpoint: env.front.url, repo: REPO }));
      for (const [kind, values] of Object.entries(got)) assert.deepEqual(values, want, `${name} given as ${kind}`);
    }
  });

  it("int8: Node's int8 numbers, within 0.02 of fp32; a reload loads from Cache Storage with no weight request", { timeout: 240_000 }, async () => {
    const nodeInt8 = await nodeJobs("int8");
    const { page } = await env.open();
    const args = { from: REPO, options: { endpoint: env.front.url, dtype: "int8" }, captions: CAPTIONS, masked: MASKED };
    const first = unwrap(await inPage(page, pageJobs, args));
    assertSame(first, nodeInt8, 1e-4);
    first.ranked.forEach((r) => near(r.score, node.ranked.find((n) => n.text === r.text)!.score, 0.02, `int8 vs fp32 ITM probability of "${r.text}"`));
    assert.equal(first.fill.masks[0][0].tokenId, node.fill.masks[0][0].tokenId, "int8 fill-mask top-1 token");
    assert.deepEqual(first.files, ["model.safetensors"]);

    await page.reload();
    await page.waitForFunction(() => (globalThis as { btReady?: boolean }).btReady === true);
    const before = env.weightRequests();
    const again = unwrap(await inPage(page, pageJobs, args));
    assert.equal(env.weightRequests() - before, 0, "weight requests to the Hub after the reload");
    assert.deepEqual(again.files, ["cache"]);
    assert.equal(again.progress.tensors, again.progress.totalTensors);
    assert.deepEqual([again.ranked, again.fill, again.emb], [first.ranked, first.fill, first.emb], "the same numbers from the cache");
    const worst = Math.max(...first.ranked.map((r) => Math.abs(r.score - node.ranked.find((n) => n.text === r.text)!.score)));
    console.log(`web int8: first load ${first.loadMs.toFixed(0)} ms, from Cache Storage ${again.loadMs.toFixed(0)} ms; ITM probabilities within ${worst.toFixed(4)} of fp32`);
  });

  it("a page that is not cross-origin isolated runs on one thread and says so", { timeout: 60_000 }, async () => {
    const plain = await startPageServer({ images: [IMAGES], isolated: false });
    try {
      const { page, console: lines } = await env.open({ url: plain.url });
      const r = unwrap(await inPage(page, async (bt: any, { endpoint, repo }: { endpoint: string; repo: string }) => {
        const m = await bt.BridgeTowerForImageAndTextRetrieval.fromPretrained(repo, { endpoint, threads: 2 });
        const threads = m.engine.runtime.threads;
        await m.dispose();
        return { threads, isolated: (globalThis as any).crossOriginIsolated };
      }, { endpoint: env.front.url, repo: REPO }));
      assert.deepEqual(r, { threads: 1, isolated: false });
      assert.ok(lines.some((l) => l.startsWith("warning:") && l.includes("not cross-origin isolated")), lines.join("\n"));
    } finally {
      await plain.close();
    }
  });

  it('device "webgpu" where the browser has no WebGPU is a clear InputError', { timeout: 60_000 }, async () => {
    const { page } = await env.open();
    const r = await inPage(page, (bt: any, { endpoint, repo }: { endpoint: string; repo: string }) =>
      bt.BridgeTowerForImageAndTextRetrieval.fromPretrained(repo, { endpoint, device: "webgpu" }), { endpoint: env.front.url, repo: REPO });
    assert.ok("error" in (r as object), "the load must fail");
    const { error } = r as { error: { name: string; message: string; ours: boolean } };
    assert.equal(error.name, "InputError");
    assert.ok(error.ours);
    assert.match(error.message, /WebGPU/);
  });
});
