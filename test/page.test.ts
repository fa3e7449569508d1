/**
 * The server's web page in Debian's Chromium (playwright-core, no downloaded browser): upload an image, type
 * captions, press Rank, and read the ranking; the numbers must be the API's. Also the fill-mask view and the API key
 * field. Screenshots go to .cache/test-output/ (ignored).
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { type Page } from "playwright-core";
import { chromiumForSuite, skipWithoutChromium } from "./helpers/chromium.js";
import { repoRoot } from "./helpers/fixtures.js";
import { dataUrl, E2E, post, startServer } from "./helpers/serve.js";

const OUT = resolve(repoRoot, ".cache/test-output");
const image = (name: string) => join(E2E, "images", name);
const CAPTIONS = ["a cat sitting on a wooden floor", "a cup of coffee on a table", "a rocket launching into the sky", "a black and white photo of a man"];

const skip = skipWithoutChromium;

describe("the web page", { timeout: 180_000, skip }, () => {
  const suite = chromiumForSuite(OUT);

  async function open(url: string): Promise<{ page: Page; errors: string[] }> {
    const page = await suite.browser.newPage({ viewport: { width: 900, height: 900 } });
    page.setDefaultTimeout(30_000);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(url);
    return { page, errors };
  }

  async function rank(page: Page, captions: string[]): Promise<{ labels: string[]; scores: string[] }> {
    await page.locator("input[type=file]#rank-image").setInputFiles(image("chelsea.png"));
    await page.locator("#rank-preview").waitFor({ state: "visible" });
    await page.locator("textarea").fill(captions.join("\n"));
    await page.getByRole("button", { name: "Rank", exact: true }).click();
    await page.locator("#rank-results li").nth(captions.length - 1).waitFor();
    return {
      labels: await page.locator("#rank-results .label").allTextContents(),
      scores: await page.locator("#rank-results .score").allTextContents(),
    };
  }

  it("ranks captions for an uploaded image with the API's numbers, and fills a mask", async () => {
    const s = await startServer(["--quiet"]);
    suite.servers.push(s);
    const { page, errors } = await open(s.url);
    try {
      const shown = await rank(page, CAPTIONS);
      const api = await post(`${s.url}/v1/itm`, { image: dataUrl("chelsea.png"), texts: CAPTIONS });
      assert.deepEqual(shown.labels, api.json.results.map((r: any) => r.text));
      assert.deepEqual(shown.scores, api.json.results.map((r: any) => r.score.toFixed(4)));
      assert.equal(await page.locator("#rank-results .bar").count(), CAPTIONS.length);
      assert.equal(await page.locator("#tab-search").isVisible(), false, "no Search tab without --db");
      await page.screenshot({ path: join(OUT, "page.png"), fullPage: true });

      assert.equal(await page.locator("#view-fill").isVisible(), false, "one view at a time");
      await page.getByRole("tab", { name: "Fill a mask" }).click();
      assert.equal(await page.locator("#view-rank").isVisible(), false, "one view at a time");
      await page.locator("input[type=file]#fill-image").setInputFiles(image("coffee.png"));
      await page.locator("#fill-preview").waitFor({ state: "visible" });
      const text = "a <mask> of coffee on a table";
      await page.locator("#mask-text").fill(text);
      await page.getByRole("button", { name: "Fill", exact: true }).click();
      await page.locator("#fill-results li").nth(4).waitFor();
      const fill = await post(`${s.url}/v1/fill-mask`, { image: dataUrl("coffee.png"), text });
      assert.deepEqual(await page.locator("#fill-results .label").allTextContents(), fill.json.masks[0].map((c: any) => c.token));
      assert.deepEqual(await page.locator("#fill-results .score").allTextContents(), fill.json.masks[0].map((c: any) => c.score.toFixed(4)));
      assert.equal(await page.locator("#fill-sequence").textContent(), fill.json.sequence);
      await page.screenshot({ path: join(OUT, "page-fill-mask.png"), fullPage: true });
      assert.equal(await page.locator("#key-field").isVisible(), false, "no key field without --api-key");
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });

  it("asks for the API key when the server requires one", async () => {
    const s = await startServer(["--quiet"], { env: { BRIDGETOWER_API_KEY: "page-key" } });
    suite.servers.push(s);
    const { page, errors } = await open(s.url);
    try {
      await page.locator("#key-field").waitFor({ state: "visible" });
      await page.locator("#api-key").fill("page-key");
      const shown = await rank(page, CAPTIONS.slice(0, 2));
      const api = await post(`${s.url}/v1/itm`, { image: dataUrl("chelsea.png"), texts: CAPTIONS.slice(0, 2) }, { headers: { authorization: "Bearer page-key" } });
      assert.deepEqual(shown.scores, api.json.results.map((r: any) => r.score.toFixed(4)));
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });
});
