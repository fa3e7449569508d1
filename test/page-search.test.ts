/**
 * The page's Search view in Debian's Chromium (playwright-core), on a server with --db and an API key: the tab
 * appears once the key is given, a question gives the API's results (scores to 4 decimals, thumbnails loaded with
 * the key, video times as mm:ss). Screenshot: .cache/test-output/page-search.png (ignored).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser } from "playwright-core";
import { launchChromium, skipWithoutChromium } from "./helpers/chromium.js";
import { buildCollection } from "./helpers/collection.js";
import { repoRoot } from "./helpers/fixtures.js";
import { post, startServer, type Served } from "./helpers/serve.js";

const OUT = resolve(repoRoot, ".cache/test-output");
const KEY = "page-search-key";
const QUESTION = "a cat sitting on a wooden floor";

const skip = skipWithoutChromium;

describe("the web page's Search view", { timeout: 180_000, skip }, () => {
  let tmp: string | undefined;
  let browser: Browser;
  let s: Served;
  before(async () => {
    mkdirSync(OUT, { recursive: true });
    tmp = mkdtempSync(join(tmpdir(), "bt-page-search-"));
    const { db } = await buildCollection(tmp);
    [browser, s] = await Promise.all([
      launchChromium(),
      startServer(["--db", db, "--quiet"], { env: { BRIDGETOWER_API_KEY: KEY } }),
    ]);
  });
  after(async () => {
    await browser?.close();
    s?.kill();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("shows the API's results with thumbnails, scores and video times", async () => {
    const page = await browser.newPage({ viewport: { width: 900, height: 1000 } });
    page.setDefaultTimeout(30_000);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      await page.goto(s.url);
      await page.locator("#key-field").waitFor({ state: "visible" });
      assert.equal(await page.locator("#tab-search").isVisible(), false, "no Search tab before /info answers");
      await page.locator("#api-key").fill(KEY);
      await page.locator("#api-key").press("Tab"); // change: /info again, with the key
      await page.getByRole("tab", { name: "Search" }).click();
      assert.equal(await page.locator("#view-rank").isVisible(), false, "one view at a time");
      await page.locator("#search-text").fill(QUESTION);
      await page.getByRole("button", { name: "Search", exact: true }).click();
      const api = await post(`${s.url}/v1/search`, { query: QUESTION, top_k: 8 }, { headers: { authorization: `Bearer ${KEY}` } });
      assert.equal(api.status, 200, api.text);
      const results: any[] = api.json.results;
      assert.equal(results.length, 5);
      await page.locator("#search-results li").nth(results.length - 1).waitFor();

      const scores = await page.locator("#search-results .score").allTextContents();
      assert.equal(scores[0], results[0].score.toFixed(4), "the first result's score");
      assert.deepEqual(scores, results.map((r) => r.score.toFixed(4)));
      const labels = await page.locator("#search-results .label").allTextContents();
      assert.deepEqual(labels, results.map((r) => r.text ?? r.source.split("/").pop()));
      const times = await page.locator("#search-results .time").allTextContents();
      assert.deepEqual(times, results.map((r) => (r.time_ms === undefined ? "" : `00:0${r.time_ms / 1000}`)));
      assert.deepEqual(times.filter((t) => t).sort(), ["00:01", "00:03"]);
      // Every thumbnail decoded (fetched with the key: an <img src> alone would get 401).
      await page.waitForFunction('[...document.querySelectorAll("#search-results img.thumb")].every((i) => i.complete && i.naturalWidth > 0)');
      assert.equal(await page.locator("#search-results img.thumb").count(), results.length);
      await page.screenshot({ path: join(OUT, "page-search.png"), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });
});
