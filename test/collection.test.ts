/**
 * Collection (the library side of `bridgetower index` / `search`) on the e2e-fullvocab model: scores are the
 * cosine of the library's own `embed` outputs, reruns are incremental, videos become frames with their cues,
 * bad files are skipped, and another model is refused.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  BridgeTowerModel, BridgeTowerProcessor, Collection, CollectionError, embed, ModelMismatchError, rankImages,
  type SearchResult, type SourceError,
} from "../src/index.js";
import { fixture } from "./helpers/fixtures.js";
import { startHubServer } from "./helpers/hub-server.js";
import { writePng, writeVideo, writeVtt } from "./helpers/media.js";

const E2E = fixture("e2e-fullvocab");
const tmp = mkdtempSync(join(tmpdir(), "bt-collection-"));
const IMG = join(tmp, "imgs");
let model: BridgeTowerModel;
let processor: BridgeTowerProcessor;

before(async () => {
  model = await BridgeTowerModel.fromPretrained(E2E, { heads: ["itc", "itm"] });
  processor = await BridgeTowerProcessor.fromPretrained(E2E);
  mkdirSync(IMG);
  copyFileSync(join(E2E, "images", "chelsea.png"), join(IMG, "chelsea.png"));
  copyFileSync(join(E2E, "images", "coffee.png"), join(IMG, "coffee.png"));
  writeFileSync(join(IMG, "chelsea.txt"), "a cat on a sofa\n");
  for (let i = 1; i <= 4; i++) await writePng(join(IMG, "sub", `gen${i}.png`), i);
  await writePng(join(tmp, "extra", "e1.png"), 9);
  writeFileSync(join(tmp, "captions.jsonl"), [
    JSON.stringify({ image: "imgs/sub/gen1.png", text: "red and green stripes" }),
    JSON.stringify({ image: "imgs/sub/gen1.png", text: "a colourful pattern" }),
    JSON.stringify({ image: "extra/e1.png", text: "a blue gradient" }),
  ].join("\n"));
});
after(async () => {
  await model?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0) / Math.hypot(...a) / Math.hypot(...b);

/** What a row's embedding is, recomputed with `embed`: the image's, or the (text, image) pair's cross embedding. */
async function rowEmbedding(r: SearchResult): Promise<number[]> {
  const image = r.frame ?? r.source;
  if (r.modality === "image") return (await embed(model.itc, processor, { images: [image] })).imageEmbeds[0];
  return (await embed(model.itc, processor, { texts: [r.text!], images: [image] })).crossEmbeds![0];
}

/** Every score is the cosine of `embed` outputs (1e-5) and the order follows them. */
async function assertScores(results: SearchResult[], query: number[]): Promise<void> {
  const want = await Promise.all(results.map(async (r) => cos(query, await rowEmbedding(r))));
  results.forEach((r, i) => assert.ok(Math.abs(r.score - want[i]) < 1e-5, `${r.source} ${r.text ?? ""}: score ${r.score}, embed gives ${want[i]}`));
  for (let i = 1; i < want.length; i++) assert.ok(want[i - 1] >= want[i] - 1e-5, `order at ${i}: ${want[i - 1]} then ${want[i]}`);
}

const open = (db: string, more: Parameters<typeof Collection.open>[1] = {}) => Collection.open(db, { model: E2E, create: true, ...more });

describe("Collection: images and captions", () => {
  const db = join(tmp, "db-images");
  const failures: SourceError[] = [];
  const add = async (c: Collection, o = {}) => c.add([IMG], { captions: join(tmp, "captions.jsonl"), onFailure: (e) => failures.push(e), ...o });

  it("indexes images alone, sidecar and JSONL captions; scores equal the cosine of embed outputs", async () => {
    const c = await open(db);
    try {
      const s = await add(c, { batchSize: 3 });
      assert.deepEqual(s, { indexed: 8, unchanged: 0, removed: 0, failed: 0, interrupted: false });
      assert.equal(await c.count(), 8);
      const all = await c.search("a cat", { topK: 100 });
      assert.equal(all.length, 8);
      const byModality = (m: string) => all.filter((r) => r.modality === m).map((r) => [r.source.slice(tmp.length), r.text ?? ""].join(" ")).sort();
      assert.deepEqual(byModality("image"), ["/imgs/coffee.png ", "/imgs/sub/gen2.png ", "/imgs/sub/gen3.png ", "/imgs/sub/gen4.png "]);
      assert.deepEqual(byModality("pair"), [
        "/extra/e1.png a blue gradient", "/imgs/chelsea.png a cat on a sofa", "/imgs/sub/gen1.png a colourful pattern", "/imgs/sub/gen1.png red and green stripes",
      ]);
      await assertScores(all, (await embed(model.itc, processor, { texts: ["a cat"] })).textEmbeds[0]);
      const coffee = join(IMG, "coffee.png");
      await assertScores(await c.search({ image: coffee }, { topK: 100 }), (await embed(model.itc, processor, { images: [coffee] })).imageEmbeds[0]);
      const both = await c.search({ text: "a cup", image: coffee }, { topK: 3 });
      assert.equal(both.length, 3);
      await assertScores(both, (await embed(model.itc, processor, { texts: ["a cup"], images: [coffee] })).crossEmbeds![0]);
      assert.deepEqual((await c.search({ text: "a cup", image: coffee }, { topK: 100 })).slice(0, 3), both);
    } finally {
      await c.close();
    }
  });

  it("a rerun embeds nothing; a changed caption is re-embedded; prune removes rows of deleted files", async () => {
    let c = await open(db);
    try {
      assert.deepEqual(await add(c), { indexed: 0, unchanged: 8, removed: 0, failed: 0, interrupted: false });
      writeFileSync(join(IMG, "chelsea.txt"), "a sleeping cat");
      assert.deepEqual(await add(c), { indexed: 1, unchanged: 7, removed: 0, failed: 0, interrupted: false });
      const row = (await c.search("a sleeping cat", { topK: 100 })).find((r) => r.source.endsWith("chelsea.png"))!;
      assert.equal(row.text, "a sleeping cat");
      await assertScores([row], (await embed(model.itc, processor, { texts: ["a sleeping cat"] })).textEmbeds[0]);
      unlinkSync(join(IMG, "chelsea.txt")); // the image alone now: its pair row is replaced by an image row
      assert.deepEqual(await add(c), { indexed: 1, unchanged: 7, removed: 1, failed: 0, interrupted: false });
      await c.close();
      c = await open(db);
      unlinkSync(join(IMG, "sub", "gen4.png"));
      assert.deepEqual(await add(c), { indexed: 0, unchanged: 7, removed: 0, failed: 0, interrupted: false }, "without prune the row stays");
      assert.deepEqual(await add(c, { prune: true }), { indexed: 0, unchanged: 7, removed: 1, failed: 0, interrupted: false });
      assert.equal(await c.count(), 7);
      assert.deepEqual(failures, []);
    } finally {
      await c.close();
    }
  });

  it("rerank re-orders the top N exactly as rankImages does, with itm_score", async () => {
    const c = await open(db);
    try {
      const plain = await c.search("a cup of coffee", { topK: 7 });
      const ranked = await c.search("a cup of coffee", { topK: 7, rerank: 5 });
      const want = await rankImages(model.itm, processor, plain.slice(0, 5).map((r) => r.source), "a cup of coffee");
      assert.deepEqual(ranked.slice(0, 5).map((r) => r.id), want.map((w) => plain[w.index].id));
      ranked.slice(0, 5).forEach((r, i) => assert.ok(Math.abs(r.itm_score! - want[i].score) < 1e-6));
      assert.deepEqual(ranked.slice(5), plain.slice(5), "the rest keeps the cosine order, without itm_score");
      await assert.rejects(c.search({ image: join(IMG, "coffee.png") }, { rerank: 2 }), /text query/);
    } finally {
      await c.close();
    }
  });

  it("concurrent searches, re-ranking ones among them, agree; a loaded model can be shared (as a server does)", async () => {
    const own = await Collection.open(db);
    const shared = await Collection.open(db, { model, processor });
    try {
      const runs = await Promise.all([
        own.search("a cat", { topK: 4 }), own.search("a cat", { topK: 4, rerank: 4 }), own.search("a cat", { topK: 4 }),
        own.search("a cat", { topK: 4, rerank: 4 }), shared.search("a cat", { topK: 4 }), shared.search("a cat", { topK: 4, rerank: 4 }),
      ]);
      for (const r of [runs[2], runs[4]]) assert.deepEqual(r, runs[0]);
      for (const r of [runs[3], runs[5]]) assert.deepEqual(r, runs[1]);
      assert.ok(runs[1].every((r) => r.itm_score !== undefined));
    } finally {
      await own.close();
      await shared.close();
    }
    assert.equal((await embed(model.itc, processor, { texts: ["still usable"] })).textEmbeds.length, 1, "closing the collection left the shared model open");
  });

  it("itemImagePath gives only the paths the table records", async () => {
    const c = await Collection.open(db);
    try {
      const [r] = await c.search("x", { topK: 1 });
      assert.equal(await c.itemImagePath(r.id), r.source);
      assert.equal(await c.itemImagePath("0".repeat(32)), undefined);
      assert.equal(await c.itemImagePath("../../etc/passwd"), undefined);
      assert.equal(await c.itemImagePath("' OR 1=1 --"), undefined);
    } finally {
      await c.close();
    }
  });

  it("refuses another model or dtype, and a missing collection", async () => {
    await assert.rejects(Collection.open(db, { model: fixture("tiny-itc") }), (e: Error) => {
      assert.ok(e instanceof ModelMismatchError);
      assert.match(e.message, /was indexed with .*e2e-fullvocab \(fp32\), not .*tiny-itc \(fp32\)/);
      return true;
    });
    await assert.rejects(Collection.open(db, { dtype: "int8" }), ModelMismatchError);
    await assert.rejects(Collection.open(join(tmp, "nothing-here")), CollectionError);
    const c = await Collection.open(db); // no model given: the recorded one
    assert.equal(c.model.model, realpathSync(E2E)); // folders are recorded by their real path
    await c.close();
  });
});

describe("Collection: videos", () => {
  const db = join(tmp, "db-videos");
  const V = join(tmp, "videos");
  before(() => {
    writeVideo(join(V, "talk.mp4"), 8);
    writeVtt(join(V, "talk.vtt"), [[0, 1000, "one"], [1000, 3001, "two"], [3001, 5000, "three"], [6000, 7999, "four"]]);
    writeVideo(join(V, "a.mkv"), 3, "testsrc2");
    writeVideo(join(V, "b.mov"), 2, "smptebars");
    writeVideo(join(V, "c.webm"), 5, "testsrc2");
  });

  it("frames at cue midpoints with their context; frames every N s without a transcript", async () => {
    const c = await open(db);
    try {
      const s = await c.add([V], { context: 1, framesEvery: 2 });
      assert.deepEqual(s, { indexed: 4 + 2 + 1 + 3, unchanged: 0, removed: 0, failed: 0, interrupted: false });
      const all = await c.search("two", { topK: 100 });
      const talk = all.filter((r) => r.source.endsWith("talk.mp4")).sort((a, b) => a.time_ms! - b.time_ms!);
      assert.deepEqual(talk.map((r) => [r.time_ms, r.text, r.modality]), [
        [500, "one two", "pair"], [2001, "one two three", "pair"], [4001, "two three four", "pair"], [7000, "three four", "pair"],
      ]);
      for (const r of all) {
        assert.equal(r.video, r.source);
        assert.ok(r.frame && existsSync(r.frame), `frame of ${r.source} at ${r.time_ms}`);
        assert.equal(await c.itemImagePath(r.id), r.frame);
      }
      const times = (ext: string) => all.filter((r) => r.source.endsWith(ext)).map((r) => r.time_ms).sort((a, b) => a! - b!);
      assert.deepEqual(times(".mkv"), [1000, 2500]);
      assert.deepEqual(times(".mov"), [1000]);
      assert.deepEqual(times(".webm"), [1000, 3000, 4500]);
      assert.ok(all.filter((r) => !r.source.endsWith(".mp4")).every((r) => r.modality === "image" && r.text === undefined));
      await assertScores(all, (await embed(model.itc, processor, { texts: ["two"] })).textEmbeds[0]);
      // A changed transcript: the cues it no longer has are removed with their frames.
      const gone = talk[3].frame!;
      writeVtt(join(V, "talk.vtt"), [[0, 1000, "one"], [1000, 3001, "two"], [3001, 5000, "three"]]);
      const again = await c.add([V], { context: 1, framesEvery: 2 });
      assert.deepEqual(again, { indexed: 1, unchanged: 8, removed: 1, failed: 0, interrupted: false }, "the third cue's text lost 'four'");
      assert.ok(!existsSync(gone));
    } finally {
      await c.close();
    }
  });
});

describe("Collection: bad inputs", () => {
  it("reports each unreadable file or line once, by name, and indexes the rest", async () => {
    const dir = join(tmp, "bad");
    mkdirSync(dir);
    copyFileSync(join(E2E, "images", "coffee.png"), join(dir, "good.png"));
    writeFileSync(join(dir, "corrupt.png"), "not an image at all");
    writeFileSync(join(dir, "corrupt.mp4"), Buffer.alloc(4096, 7));
    writeVideo(join(dir, "talk.mp4"), 2);
    writeFileSync(join(dir, "talk.vtt"), "00:00.000 --> 00:01.000\nno header\n");
    writeFileSync(join(dir, "caps.jsonl"), `{"image": "good.png", "text": "a cup"}\n{not json\n{"image": "missing.png", "text": "x"}\n{"text": "no image"}\n`);
    const failures: SourceError[] = [];
    const c = await open(join(tmp, "db-bad"));
    try {
      const s = await c.add([dir, join(tmp, "no-such-file.png")], { captions: join(dir, "caps.jsonl"), onFailure: (e) => failures.push(e) });
      const names = failures.map((e) => e.input.slice(tmp.length)).sort();
      assert.deepEqual(names, ["/bad/caps.jsonl:2", "/bad/caps.jsonl:3", "/bad/caps.jsonl:4", "/bad/corrupt.mp4", "/bad/corrupt.png", "/bad/talk.vtt", "/no-such-file.png"]);
      for (const e of failures) assert.doesNotMatch(e.message, /\n/);
      assert.match(failures.find((e) => e.input.endsWith("corrupt.png"))!.message, /cannot decode image/);
      assert.match(failures.find((e) => e.input.endsWith("talk.vtt"))!.message, /WEBVTT/);
      assert.deepEqual(s, { indexed: 1, unchanged: 0, removed: 0, failed: 7, interrupted: false });
      assert.equal((await c.search("a cup"))[0].text, "a cup");
    } finally {
      await c.close();
    }
  });
});

describe("Collection: a Hub model", () => {
  it("is recorded as its id and commit; another Hub model is refused before its weights are downloaded", async () => {
    const hub = await startHubServer({ "BridgeTower/e2e-fullvocab": { dir: E2E }, "BridgeTower/tiny-itc": { dir: fixture("tiny-itc") } });
    const cacheDir = join(tmp, "hf-cache");
    const db = join(tmp, "db-hub");
    try {
      const c = await Collection.open(db, { model: "BridgeTower/e2e-fullvocab", hub: { endpoint: hub.url, cacheDir }, create: true });
      try {
        assert.deepEqual(c.model, { model: "BridgeTower/e2e-fullvocab", commit: hub.commit("BridgeTower/e2e-fullvocab"), dtype: "fp32", dim: 32 });
        assert.equal((await c.add([join(E2E, "images", "coffee.png")])).indexed, 1);
      } finally {
        await c.close();
      }
      const again = await Collection.open(db, { hub: { cacheDir, offline: true } }); // the recorded id and commit, from the cache
      assert.equal((await again.search("a cup")).length, 1);
      await again.close();
      await assert.rejects(Collection.open(db, { model: "BridgeTower/tiny-itc", hub: { endpoint: hub.url, cacheDir } }), (e: Error) => {
        assert.ok(e instanceof ModelMismatchError);
        assert.match(e.message, /was indexed with BridgeTower\/e2e-fullvocab at commit [0-9a-f]{12} \(fp32\), not BridgeTower\/tiny-itc at commit/);
        return true;
      });
      const tiny = join(cacheDir, "models--BridgeTower--tiny-itc", "snapshots");
      for (const snap of readdirSync(tiny)) assert.deepEqual(readdirSync(join(tiny, snap)), ["config.json"], "only config.json was fetched");
    } finally {
      await hub.close();
    }
  });
});
