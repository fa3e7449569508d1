/**
 * The page's "run in this browser" switch in Debian's Chromium: the model loads in the tab from the server's
 * /model/ files and ranks with the API's numbers, while no request carries the image; the page is cross-origin
 * isolated and its other features still work. Also the file routes themselves: Range, confinement, the API key.
 * The server runs from src (tsx), so no build of dist/ is needed; the web bundle must be in dist/web.
 * Screenshot: .cache/test-output/page-web.png (ignored).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { type Page, type Request } from "playwright-core";
import { chromiumForSuite, skipWithoutChromium } from "./helpers/chromium.js";
import { modelFiles, parseRange } from "../src/server/files.js";
import { repoRoot } from "./helpers/fixtures.js";
import { dataUrl, E2E, get, post, rawHttp, startServer, type Served } from "./helpers/serve.js";

const OUT = resolve(repoRoot, ".cache/test-output");
const IMAGE = join(E2E, "images", "chelsea.png");
const CAPTIONS = ["a cat sitting on a wooden floor", "a cup of coffee on a table", "a rocket launching into the sky", "a black and white photo of a man"];
const KEY = "page-web-key";

const skip = skipWithoutChromium;

/** Whether any request body holds the image: its bytes, or their base64 (as a data: URL carries them). */
function carriesImage(r: Request, png: Buffer): boolean {
  const body = r.postDataBuffer();
  if (!body) return false;
  const b64 = png.toString("base64");
  return body.includes(png.subarray(0, 256)) || body.includes(b64.slice(0, 256)) || r.url().includes(b64.slice(0, 64));
}

describe("the page's \"run in this browser\" switch", { timeout: 300_000, skip }, () => {
  const suite = chromiumForSuite(OUT);

  async function serve(env: NodeJS.ProcessEnv = {}): Promise<Served> {
    const s = await startServer(["--quiet"], { fromSources: true, env });
    suite.servers.push(s);
    return s;
  }

  /** A fresh context (its own caches); page errors and CSP complaints collected. */
  async function open(url: string): Promise<{ page: Page; problems: string[]; requests: Request[] }> {
    const context = await suite.browser.newContext({ viewport: { width: 900, height: 1000 } });
    const page = await context.newPage();
    page.setDefaultTimeout(120_000);
    const problems: string[] = [];
    const requests: Request[] = [];
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    page.on("console", (m) => /content security policy|refused to|cross-origin isolated/i.test(m.text()) && problems.push(`console: ${m.text()}`));
    page.on("request", (r) => requests.push(r));
    await page.goto(url);
    return { page, problems, requests };
  }

  async function rank(page: Page, captions: string[]) {
    await page.locator("textarea").fill(captions.join("\n"));
    // The button is disabled from the click until the ranking is shown (or has failed).
    await page.getByRole("button", { name: "Rank", exact: true }).click();
    await page.locator("#rank:enabled").waitFor();
    return {
      labels: await page.locator("#rank-results .label").allTextContents(),
      scores: await page.locator("#rank-results .score").allTextContents(),
      raw: (await page.locator("#rank-results li").evaluateAll((lis) => lis.map((li) => li.getAttribute("data-score")))).map(Number),
      status: await page.locator("#status").textContent(),
    };
  }

  it("ranks in the tab with the API's numbers, and sends no request with the image", async () => {
    const s = await serve();
    const info = (await get(`${s.url}/info`)).json;
    assert.deepEqual(info.browser, { available: true, dtype: "fp32", weights_bytes: readFileSync(join(E2E, "model.safetensors")).length });
    const { page, problems, requests } = await open(s.url);
    try {
      assert.equal(await page.evaluate(() => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated), true, "COOP/COEP make the page cross-origin isolated");
      await page.getByLabel("run in this browser").check();
      const from = requests.length;
      await page.locator("input[type=file]#rank-image").setInputFiles(IMAGE);
      await page.locator("#rank-preview").waitFor({ state: "visible" });
      // Every status line the load shows, recorded in the page.
      await page.evaluate(() => {
        const w = globalThis as unknown as { statuses: string[]; document: any; MutationObserver: any };
        w.statuses = [];
        const el = w.document.getElementById("status");
        new w.MutationObserver(() => w.statuses.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
      });
      const shown = await rank(page, CAPTIONS);
      assert.match(shown.status ?? "", /in this browser/);
      const statuses = await page.evaluate(() => (globalThis as unknown as { statuses: string[] }).statuses);
      assert.ok(statuses.some((t) => /^loading the model in this tab \(fp32\): [\d.]+ \/ [\d.]+ MB, \d+ \/ \d+ tensors$/.test(t)), `load progress shown: ${statuses.join(" | ")}`);
      assert.ok(page.workers().length >= 1, "onnxruntime-web runs threads (workers)");

      const api = await post(`${s.url}/v1/itm`, { image: dataUrl("chelsea.png"), texts: CAPTIONS });
      const want = api.json.results as { text: string; score: number }[];
      assert.deepEqual(shown.labels, want.map((r) => r.text));
      assert.deepEqual(shown.scores, want.map((r) => r.score.toFixed(4)));
      shown.raw.forEach((x, i) => assert.ok(Math.abs(x - want[i].score) <= 1e-4, `"${want[i].text}": ${x} in the tab vs ${want[i].score} from the API`));
      await page.screenshot({ path: join(OUT, "page-web.png"), fullPage: true });

      const after = requests.slice(from);
      const png = readFileSync(IMAGE);
      assert.deepEqual(after.filter((r) => r.method() !== "GET").map((r) => `${r.method()} ${r.url()}`), [], "only GETs");
      assert.deepEqual(after.filter((r) => carriesImage(r, png)).map((r) => r.url()), [], "no request carries the image");
      const paths = after.map((r) => new URL(r.url()).pathname);
      assert.ok(paths.includes("/web/bridgetower.js") && paths.some((p) => p.endsWith(".wasm")), "the bundle and onnxruntime's wasm from /web/");
      assert.ok(paths.some((p) => p === "/model/model.safetensors"), "the weights from /model/");
      assert.ok(!paths.some((p) => p.startsWith("/v1/")), `no API call: ${paths.filter((p) => p.startsWith("/v1/"))}`);

      // Loaded once: a second Rank fetches no model file.
      const before2 = requests.length;
      const again = await rank(page, CAPTIONS.slice(0, 2));
      assert.equal(again.labels.length, 2);
      assert.deepEqual(requests.slice(before2).map((r) => r.url()).filter((u) => /\/model\//.test(u)), []);

      // Switched off: the API again (one POST /v1/itm), same numbers.
      await page.getByLabel("run in this browser").uncheck();
      const off = await rank(page, CAPTIONS);
      assert.deepEqual(off.scores, shown.scores);
      assert.ok(requests.some((r) => r.method() === "POST" && r.url().endsWith("/v1/itm")), "off: the image goes to /v1/itm");

      // The fill-mask view under COOP/COEP, as before.
      await page.getByRole("tab", { name: "Fill a mask" }).click();
      await page.locator("input[type=file]#fill-image").setInputFiles(join(E2E, "images", "coffee.png"));
      await page.locator("#fill-preview").waitFor({ state: "visible" });
      await page.getByRole("button", { name: "Fill", exact: true }).click();
      await page.locator("#fill-results li").nth(4).waitFor();
      assert.deepEqual(problems, []);
    } finally {
      await page.context().close();
    }
  });

  it("the int8 path (chosen for models over 256 MB) ranks like fp32, and a reload reads the browser cache", async () => {
    const s = suite.servers[0] ?? (await serve());
    const info = (await get(`${s.url}/info`)).json;
    const fp32 = (await post(`${s.url}/v1/itm`, { image: dataUrl("chelsea.png"), texts: CAPTIONS })).json.results as { text: string; score: number }[];
    const { page, problems } = await open(s.url);
    // in-browser.js as app.js uses it, told that the model is large.
    const run = () => page.evaluate(async ({ info, b64, texts }) => {
      const m = await import("/in-browser.js" as string);
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const seen: string[] = [];
      const ranked = await m.rankHere({ ...info, browser: { ...info.browser, dtype: "int8" } }, new Blob([bytes], { type: "image/png" }), texts, () => "", (_f: number, t: string) => seen.push(t));
      return { ranked: ranked.map((r: any) => ({ text: r.text, score: r.score })), seen };
    }, { info, b64: readFileSync(IMAGE).toString("base64"), texts: CAPTIONS });
    try {
      const first = await run();
      assert.equal(first.ranked[0].text, fp32[0].text, "same top-1 as fp32");
      for (const r of first.ranked) assert.ok(Math.abs(r.score - fp32.find((x) => x.text === r.text)!.score) <= 0.02, `${r.text}: int8 ${r.score}`);
      assert.ok(first.seen.some((t) => /\(int8\): [\d.]+ \/ [\d.]+ MB/.test(t)), first.seen.join(" | "));
      await page.reload();
      const second = await run();
      assert.deepEqual(second.ranked, first.ranked);
      assert.ok(second.seen.some((t) => /from the browser cache/.test(t)), second.seen.join(" | "));
      assert.deepEqual(problems, []);
    } finally {
      await page.context().close();
    }
  });

  it("serves the model's files with Range support and nothing else", async () => {
    const s = suite.servers[0] ?? (await serve());
    const weights = readFileSync(join(E2E, "model.safetensors"));
    const res = await fetch(`${s.url}/model/model.safetensors`, { headers: { range: "bytes=100-1123" } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get("content-range"), `bytes 100-1123/${weights.length}`);
    assert.equal(res.headers.get("content-length"), "1024");
    assert.equal(res.headers.get("accept-ranges"), "bytes");
    assert.match(res.headers.get("etag") ?? "", /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.equal(res.headers.get("cross-origin-resource-policy"), "same-origin");
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(weights.subarray(100, 1124)), "the right bytes");
    const suffix = await fetch(`${s.url}/model/model.safetensors`, { headers: { range: "bytes=-10" } });
    assert.equal(suffix.status, 206);
    assert.ok(Buffer.from(await suffix.arrayBuffer()).equals(weights.subarray(weights.length - 10)));
    const beyond = await fetch(`${s.url}/model/config.json`, { headers: { range: "bytes=999999-" } });
    assert.equal(beyond.status, 416);
    await beyond.arrayBuffer();
    const head = await fetch(`${s.url}/model/model.safetensors`, { method: "HEAD" });
    assert.equal(head.headers.get("content-length"), String(weights.length));
    const config = await get(`${s.url}/model/config.json`);
    assert.equal(config.status, 200);
    assert.deepEqual(config.json, JSON.parse(readFileSync(join(E2E, "config.json"), "utf8")));

    // Names outside the allow-list, encoded or literal dot segments (sent as is, not normalized by a client).
    for (const path of ["/model/..%2Fconfig.json", "/model/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/model/expected.json", "/model/%2Fetc%2Fpasswd", "/web/index.d.ts"]) {
      const r = await get(`${s.url}${path}`);
      assert.equal(r.status, 404, path);
      assert.equal(r.json?.error?.type, "not_found", path);
    }
    for (const path of ["/model/../../etc/passwd", "/model/../config.json", "/web/../../package.json", "/web/ort/../../../package.json"]) {
      const raw = await rawHttp(s.url, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1\.1 404 /, path);
      assert.doesNotMatch(raw, /root:|"name": "bridgetower"|model_type/, path);
    }
    assert.equal((await post(`${s.url}/model/config.json`, {})).status, 405);
  });

  it("needs the API key for /model/ (the page sends it), not for /web/", async () => {
    const s = await serve({ BRIDGETOWER_API_KEY: KEY });
    assert.equal((await get(`${s.url}/model/config.json`)).status, 401);
    assert.equal((await get(`${s.url}/model/config.json`, { authorization: `Bearer ${KEY}` })).status, 200);
    const bundle = await fetch(`${s.url}/web/bridgetower.js`, { method: "HEAD" });
    assert.equal(bundle.status, 200, "module imports and workers cannot send a key");
    const { page, problems, requests } = await open(s.url);
    try {
      await page.locator("#key-field").waitFor({ state: "visible" });
      await page.locator("#api-key").fill(KEY);
      await page.locator("#api-key").dispatchEvent("change");
      await page.getByLabel("run in this browser").check();
      await page.locator("input[type=file]#rank-image").setInputFiles(IMAGE);
      await page.locator("#rank-preview").waitFor({ state: "visible" });
      const shown = await rank(page, CAPTIONS.slice(0, 2));
      const api = await post(`${s.url}/v1/itm`, { image: dataUrl("chelsea.png"), texts: CAPTIONS.slice(0, 2) }, { headers: { authorization: `Bearer ${KEY}` } });
      assert.deepEqual(shown.scores, api.json.results.map((r: any) => r.score.toFixed(4)));
      const model = requests.filter((r) => new URL(r.url()).pathname.startsWith("/model/"));
      assert.ok(model.length > 0 && model.every((r) => r.headers().authorization === `Bearer ${KEY}`), "every /model/ request with the key");
      assert.ok(!requests.some((r) => r.url().endsWith("/v1/itm")));
      assert.deepEqual(problems, []);
    } finally {
      await page.context().close();
    }
  });
});

describe("the model files the server offers the page", () => {
  it("lists the allow-listed files, shards only as the index names them, and picks the tab's dtype by size", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bt-files-"));
    try {
      const names = ["config.json", "vocab.json", "merges.txt", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "secret.txt", "pytorch_model.bin"];
      for (const f of names) writeFileSync(join(dir, f), "x");
      const weightMap = { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors", c: "../../etc/passwd", d: "secret.txt" };
      writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: weightMap }));
      const web = new Map([["bridgetower.js", "x"], ["ort/ort-wasm-simd-threaded.jsep.wasm", "x"]]);
      const f = await modelFiles(dir, web, ["itm"]);
      assert.deepEqual([...f.model.keys()].sort(), ["config.json", "merges.txt", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json", "vocab.json"]);
      assert.deepEqual(f.browser, { available: true, dtype: "fp32", weights_bytes: 2 });
      assert.equal((await modelFiles(dir, new Map(), ["itm"])).browser.available, false, "no web bundle");
      assert.equal((await modelFiles(dir, web, ["mlm"])).browser.available, false, "no ITM head");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("parses one byte range", () => {
    assert.deepEqual(parseRange("bytes=0-7", 100), [0, 7]);
    assert.deepEqual(parseRange("bytes=90-", 100), [90, 99]);
    assert.deepEqual(parseRange("bytes=90-500", 100), [90, 99]);
    assert.deepEqual(parseRange("bytes=-10", 100), [90, 99]);
    assert.deepEqual(parseRange("bytes=-500", 100), [0, 99]);
    assert.equal(parseRange("bytes=100-", 100), "unsatisfiable");
    assert.equal(parseRange("bytes=-0", 100), "unsatisfiable");
    for (const h of [undefined, "bytes=5-3", "bytes=0-1,5-6", "items=0-1", "bytes=-", "bytes=a-b"]) assert.equal(parseRange(h, 100), undefined, String(h));
  });
});
