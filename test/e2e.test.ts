/**
 * The user-level jobs on fixtures/e2e-fullvocab (a complete model folder), checked against its expected.json
 * and expected.safetensors: through the library, through the CLI on the folder, and through the CLI on a
 * local Hub imitation (download into a fresh Hugging Face cache, then offline from that cache).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
  BridgeTowerForContrastiveLearning, BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM, BridgeTowerProcessor,
  embed, fillMask, rankImages, rankTexts,
} from "../src/index.js";
import { fixture, readAll, repoRoot } from "./helpers/fixtures.js";
import { startHubServer, type HubServer } from "./helpers/hub-server.js";

const DIR = fixture("e2e-fullvocab");
const expected = JSON.parse(readFileSync(join(DIR, "expected.json"), "utf8"));
const image = (name: string) => join(DIR, "images", name);
const run = promisify(execFile);
const near = (a: number, b: number, tol = 1e-4) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

/** The ITM, fill-mask and contrastive expectations, checked on JSON shaped like the CLI's output. */
function checkItm(ranked: { text: string; score: number; logits: number[] }[]): void {
  const e = expected.itm;
  assert.deepEqual(ranked.map((r) => r.text), e.ranking_by_probability);
  for (const r of ranked) {
    const i = e.texts.indexOf(r.text);
    near(r.score, e.per_text[i].match_probability);
    near(r.logits[0], e.per_text[i].logits[0]);
    near(r.logits[1], e.per_text[i].logits[1]);
  }
}
function checkFillMask(r: { sequence: string; masks: { token: string; token_id: number; score: number }[][] }): void {
  const e = expected.fill_mask;
  assert.equal(r.masks.length, 1);
  assert.deepEqual(r.masks[0].map((c) => c.token_id), e.top5.map((t: { id: number }) => t.id));
  assert.deepEqual(r.masks[0].map((c) => c.token), e.top5.map((t: { decoded: string }) => t.decoded));
  r.masks[0].forEach((c, k) => near(c.score, e.top5[k].probability));
  assert.ok(r.sequence.includes(e.top5[0].decoded.trim()));
}
function checkEmbed(r: { text_embeds: number[][]; image_embeds: number[][]; cross_embeds: number[][] | null; text_image_similarity: number[][] }): void {
  const e = expected.contrastive;
  for (const [got, want] of [[r.text_embeds, e.text_embeds], [r.image_embeds, e.image_embeds], [r.cross_embeds, e.cross_embeds], [r.text_image_similarity, e.sim_text_image]])
    (want as number[][]).forEach((row, i) => row.forEach((v, j) => near(got![i][j], v)));
}

describe("e2e-fullvocab through the library", () => {
  it("the processor reproduces the expected inputs exactly", async () => {
    const p = await BridgeTowerProcessor.fromPretrained(DIR);
    const t = await readAll(join(DIR, "expected.safetensors"));
    const r = await p.call({ text: expected.itm.texts, padding: "longest", images: expected.itm.texts.map(() => image("chelsea.png")) });
    assert.deepEqual(r.inputIds!.data, t.get("itm.batch.input_ids")!.data);
    assert.deepEqual(r.attentionMask!.data, t.get("itm.batch.attention_mask")!.data);
    assert.deepEqual(r.pixelValues!.data, t.get("itm.batch.pixel_values")!.data);
    assert.deepEqual(r.pixelMask!.data, t.get("itm.batch.pixel_mask")!.data);
  });

  it("rankTexts, fillMask and embed give the expected numbers", async () => {
    const p = await BridgeTowerProcessor.fromPretrained(DIR);
    const itm = await BridgeTowerForImageAndTextRetrieval.fromPretrained(DIR, { onWarning: () => {} });
    checkItm(await rankTexts(itm, p, image(expected.itm.image), expected.itm.texts, { batchSize: 3 }));
    // Images against one text: the same scores as each pair run on its own.
    const imgs = ["chelsea.png", "coffee.png", "chelsea.png"].map(image);
    const ranked = await rankImages(itm, p, imgs, expected.itm.texts[1], { batchSize: 2 });
    assert.deepEqual(ranked.map((r) => r.index).sort(), [0, 1, 2]);
    for (const r of ranked) {
      const one = await p.call({ text: expected.itm.texts[1], images: imgs[r.index] });
      const l = (await itm.run({ inputIds: one.inputIds!, attentionMask: one.attentionMask, pixelValues: one.pixelValues! }))["itm.logits"].data;
      near(r.logits[0], l[0] as number, 1e-5);
      near(r.logits[1], l[1] as number, 1e-5);
    }
    await itm.dispose();
    const mlm = await BridgeTowerForMaskedLM.fromPretrained(DIR, { onWarning: () => {} });
    const fm = await fillMask(mlm, p, image(expected.fill_mask.image), expected.fill_mask.text, 5);
    checkFillMask({ sequence: fm.sequence, masks: fm.masks.map((m) => m.map((c) => ({ token: c.token, token_id: c.tokenId, score: c.score }))) });
    await mlm.dispose();
    const itc = await BridgeTowerForContrastiveLearning.fromPretrained(DIR, { onWarning: () => {} });
    const paired = await embed(itc, p, { texts: expected.contrastive.texts, images: expected.contrastive.images.map(image) });
    checkEmbed({ text_embeds: paired.textEmbeds, image_embeds: paired.imageEmbeds, cross_embeds: paired.crossEmbeds, text_image_similarity: paired.textImageSimilarity });
    // Unpaired: text and image embeddings come from the tower-only heads and must agree with the paired run.
    const unpaired = await embed(itc, p, { texts: expected.contrastive.texts, images: [image(expected.contrastive.images[0])] });
    assert.equal(unpaired.crossEmbeds, null);
    unpaired.textEmbeds.forEach((row, i) => row.forEach((v, j) => near(v, expected.contrastive.text_embeds[i][j])));
    unpaired.imageEmbeds[0].forEach((v, j) => near(v, expected.contrastive.image_embeds[0][j]));
    await itc.dispose();
  });
});

const bin = join(repoRoot, "bin", "bridgetower");
async function cli(args: string[], env: Record<string, string> = {}): Promise<unknown> {
  const { stdout } = await run(bin, args, { env: { ...process.env, ...env }, timeout: 120_000 });
  return JSON.parse(stdout);
}
/** The three jobs, one after the other. */
async function jobs(model: string, env: Record<string, string> = {}): Promise<void> {
  const texts = expected.itm.texts as string[];
  await cli(["itm", image(expected.itm.image), ...texts, "--model", model, "--json", "--threads", "1"], env).then((r) => checkItm(r as never));
  await cli(["fill-mask", image(expected.fill_mask.image), expected.fill_mask.text, "--model", model, "--json", "--top-k", "5"], env).then((r) => checkFillMask(r as never));
  await cli(["embed", ...expected.contrastive.images.flatMap((f: string) => ["--image", image(f)]), ...expected.contrastive.texts.flatMap((t: string) => ["--text", t]), "--model", model, "--json"], env).then((r) => checkEmbed(r as never));
}

describe("e2e-fullvocab through the CLI", () => {
  let hub: HubServer;
  let cache: string;
  before(async () => {
    hub = await startHubServer();
    cache = mkdtempSync(join(tmpdir(), "bt-e2e-cache-"));
  });
  after(async () => {
    await hub.close();
    rmSync(cache, { recursive: true, force: true });
  });

  it("from the model folder", async () => {
    await jobs(DIR);
  });

  it("from the local Hub, then offline from the filled cache", async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "0" };
    await jobs("BridgeTower/e2e-fullvocab", env);
    const sha = hub.file("BridgeTower/e2e-fullvocab", "model.safetensors").etag; // LFS files are served from /cdn/<sha256>
    const weightGets = () => hub.requests.filter((r) => r.method === "GET" && r.path.includes(sha)).length;
    assert.equal(weightGets(), 1, "the weights are downloaded once and then reused from the cache");
    await hub.close();
    await jobs("BridgeTower/e2e-fullvocab", { ...env, HF_HUB_OFFLINE: "1" });
  });

  it("two commands started together on an empty cache download the weights once and both succeed", async () => {
    const server = await startHubServer();
    const fresh = mkdtempSync(join(tmpdir(), "bt-e2e-cache2-"));
    try {
      const env = { HF_ENDPOINT: server.url, HF_HUB_CACHE: fresh, HF_HUB_OFFLINE: "0" };
      const texts = expected.itm.texts as string[];
      const both = await Promise.all([0, 1].map(() => cli(["itm", image(expected.itm.image), ...texts, "--model", "BridgeTower/e2e-fullvocab", "--json"], env)));
      for (const r of both) checkItm(r as never);
      const sha = server.file("BridgeTower/e2e-fullvocab", "model.safetensors").etag;
      assert.equal(server.requests.filter((r) => r.method === "GET" && r.path.includes(sha)).length, 1);
    } finally {
      await server.close();
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
