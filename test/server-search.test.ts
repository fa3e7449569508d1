/**
 * `serve --db`: /v1/search against the library's Collection.search on the same collection (same ids and order,
 * scores within 1e-6) for text, image, text+image and re-ranked queries; /v1/items/{id}/image serves exactly the
 * recorded files and nothing else; bad bodies, the key, back-pressure, metrics, a server without --db, the model
 * defaulting to the collection's, and the wrong-model refusal.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Collection, type Query, type SearchOptions, type SearchResult } from "../src/index.js";
import { buildCollection } from "./helpers/collection.js";
import { fixture } from "./helpers/fixtures.js";
import { BIN, dataUrl, E2E, get, post, rawHttp, startServer, type Served } from "./helpers/serve.js";

const KEY = "search-key-1234";
const auth = { authorization: `Bearer ${KEY}` };
const tmp = mkdtempSync(join(tmpdir(), "bt-serve-search-"));
const b64 = (name: string) => readFileSync(join(E2E, "images", name)).toString("base64");
const bytes = (name: string) => readFileSync(join(E2E, "images", name));

function isError(r: { status: number; json: any; text: string }, status: number, type?: string, message?: RegExp): void {
  assert.equal(r.status, status, `status (body ${r.text.slice(0, 300)})`);
  assert.deepEqual(Object.keys(r.json ?? {}), ["error"], r.text);
  assert.deepEqual(Object.keys(r.json.error).sort(), ["message", "type"]);
  if (type) assert.equal(r.json.error.type, type);
  if (message) assert.match(r.json.error.message, message);
  assert.doesNotMatch(r.text, /\bat .*\.(ts|js):\d+/, "no stack trace");
}

/** Same rows in the same order with the same fields; scores (and ITM scores) within 1e-6. */
function same(got: any[], want: SearchResult[], what: string): void {
  assert.deepEqual(got.map((r) => r.id), want.map((r) => r.id), `${what}: ids`);
  want.forEach((w, i) => {
    const { score, itm_score, ...rest } = got[i];
    const { score: ws, itm_score: wi, ...wrest } = w;
    assert.deepEqual(rest, wrest, `${what}: row ${i}`);
    assert.ok(Math.abs(score - ws) <= 1e-6, `${what}: score ${score} vs ${ws}`);
    if (wi === undefined) assert.equal(itm_score, undefined, `${what}: no itm_score`);
    else assert.ok(Math.abs(itm_score - wi) <= 1e-6, `${what}: itm_score ${itm_score} vs ${wi}`);
  });
}

describe("bridgetower serve --db", { timeout: 300_000 }, () => {
  let s: Served;
  let c: Collection;
  let db: string;
  const servers: Served[] = [];
  const search = (body: unknown, headers: Record<string, string> = auth) => post(`${s.url}/v1/search`, body, { headers });
  const library = (q: Query, o: SearchOptions = {}) => c.search(q, o);

  before(async () => {
    ({ db } = await buildCollection(tmp));
    s = await startServer(["--db", db, "--api-key", KEY, "--max-queue", "2", "--quiet"]);
    servers.push(s);
    c = await Collection.open(db, { threads: 1 });
  });
  after(async () => {
    for (const x of servers) x.kill();
    await c?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("/info reports the collection", async () => {
    const info = (await get(`${s.url}/info`, auth)).json;
    assert.deepEqual(info.collection, {
      path: db, rows: 5, model: realpathSync(E2E), commit: null, dtype: "fp32", embedding_dim: 32, model_matches: true,
    });
  });

  it("text, image and text+image queries give the library's results", async () => {
    const cases: [unknown, Query, SearchOptions][] = [
      [{ query: "a cat sitting on a wooden floor" }, "a cat sitting on a wooden floor", {}],
      [{ query: { text: "a cup of coffee" }, top_k: 3 }, { text: "a cup of coffee" }, { topK: 3 }],
      [{ query: { image: dataUrl("chelsea.png") } }, { image: bytes("chelsea.png") }, {}],
      [{ query: { image: b64("coffee.png") }, top_k: 2 }, { image: bytes("coffee.png") }, { topK: 2 }],
      [{ query: { text: "a cup", image: dataUrl("coffee.png") } }, { text: "a cup", image: bytes("coffee.png") }, {}],
      [{ query: { text: "  ", image: b64("chelsea.png") } }, { text: "  ", image: bytes("chelsea.png") }, {}], // blank text: the image alone
    ];
    for (const [body, q, o] of cases) {
      const r = await search(body);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(Object.keys(r.json), ["results"]);
      const want = await library(q, o);
      assert.equal(want.length, o.topK ?? 5);
      same(r.json.results, want, JSON.stringify(body).slice(0, 80));
    }
    const video = (await library("a clip", { topK: 5 })).filter((x) => x.video);
    assert.deepEqual(video.map((x) => x.time_ms).sort(), [1000, 3000], "the video's rows are in the comparison");
  });

  it("rerank gives the library's order and ITM scores", async () => {
    for (const [body, q, o] of [
      [{ query: "a cat", rerank: 4, top_k: 3 }, "a cat", { rerank: 4, topK: 3 }],
      [{ query: "a cup of coffee", rerank: 5 }, "a cup of coffee", { rerank: 5 }],
      [{ query: { text: "a cat", image: dataUrl("chelsea.png") }, rerank: 2 }, { text: "a cat", image: bytes("chelsea.png") }, { rerank: 2 }],
    ] as [unknown, Query, SearchOptions][]) {
      const r = await search(body);
      assert.equal(r.status, 200, r.text);
      const want = await library(q, o);
      assert.ok(want.some((x) => x.itm_score !== undefined));
      same(r.json.results, want, JSON.stringify(body).slice(0, 80));
    }
  });

  it("/v1/items/{id}/image serves exactly the recorded file, with its type; nothing else", async () => {
    const all = await library("anything", { topK: 10 });
    const types = new Set<string>();
    for (const row of all) {
      const path = (await c.itemImagePath(row.id))!;
      const res = await fetch(`${s.url}/v1/items/${row.id}/image`, { headers: auth, signal: AbortSignal.timeout(30_000) });
      assert.equal(res.status, 200);
      const type = res.headers.get("content-type")!;
      assert.equal(type, path.endsWith(".jpg") ? "image/jpeg" : "image/png", path);
      types.add(type);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(readFileSync(path)), `bytes of ${path}`);
    }
    assert.deepEqual([...types].sort(), ["image/jpeg", "image/png"]);
    assert.equal(all.filter((x) => x.frame).length, 2, "frames served too");
    isError(await get(`${s.url}/v1/items/${all[0].id}/image`), 401, "unauthorized");
    isError(await get(`${s.url}/v1/items/${"0".repeat(32)}/image`, auth), 404, "not_found", /no item/);
    for (const id of ["..%2F..%2Fetc%2Fpasswd", "..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", all[0].id.toUpperCase(), `${all[0].id}%00`, "x' OR '1'='1"]) {
      const r = await get(`${s.url}/v1/items/${id}/image`, auth);
      isError(r, 404, "not_found");
      assert.doesNotMatch(r.text, /root:/);
    }
    const raw = await rawHttp(s.url, `GET /v1/items/../../../../etc/passwd/image HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\nconnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 404/);
    assert.doesNotMatch(raw, /root:/);
    const post405 = await post(`${s.url}/v1/items/${all[0].id}/image`, {}, { headers: auth });
    isError(post405, 405, "method_not_allowed");
    assert.equal(post405.headers.get("allow"), "GET, HEAD");
  });

  it("bad query bodies: 400, 413, 415, 422 in the error shape; the key is required", async () => {
    const long = "word ".repeat(600);
    for (const [body, status, message] of [
      [{}, 400, /query is required/],
      [{ query: 5 }, 400, /query must be/],
      [{ query: ["a cat"] }, 400, /query must be/],
      [{ query: {} }, 400, /needs a text, an image or both/],
      [{ query: "   " }, 400, /needs a text, an image or both/],
      [{ query: { text: 7 } }, 400, /query\.text must be a string/],
      [{ query: "a cat", top_k: 0 }, 400, /top_k/],
      [{ query: "a cat", top_k: "3" }, 400, /top_k/],
      [{ query: "a cat", top_k: 1.5 }, 400, /top_k/],
      [{ query: "a cat", top_k: 1001 }, 400, /top_k/],
      [{ query: "a cat", rerank: -1 }, 400, /rerank/],
      [{ query: { image: dataUrl("chelsea.png") }, rerank: 2 }, 400, /rerank needs a text/],
      [{ query: { image: "https://example.org/cat.png" } }, 400, /never fetched/],
      [{ query: { image: "not base64!" } }, 400, /base64/],
      [{ query: "a cat", rerank: 65 }, 413, /limit of 64/],
      [{ query: { image: Buffer.from("hello, not an image").toString("base64") } }, 422, /query\.image/],
      [{ query: long }, 422, /tokens/],
    ] as [unknown, number, RegExp][])
      isError(await search(body), status, undefined, message);
    isError(await post(`${s.url}/v1/search`, undefined, { headers: auth, raw: "{" }), 400);
    isError(await post(`${s.url}/v1/search`, undefined, { headers: { ...auth, "content-type": "text/plain" }, raw: "a cat" }), 415);
    isError(await search({ query: "a cat" }, {}), 401, "unauthorized");
    isError(await get(`${s.url}/v1/search`, auth), 405, "method_not_allowed");
  });

  it("past --max-queue: 429 at once, every 200 the library's results; metrics count the route and its batches", async (t) => {
    const queries: [unknown, Query, SearchOptions][] = [
      [{ query: "a cat", rerank: 3, top_k: 3 }, "a cat", { rerank: 3, topK: 3 }],
      [{ query: "a red car" }, "a red car", {}],
      [{ query: { image: dataUrl("coffee.png") } }, { image: bytes("coffee.png") }, {}],
      [{ query: { text: "a cup", image: dataUrl("chelsea.png") } }, { text: "a cup", image: bytes("chelsea.png") }, {}],
    ];
    const want = await Promise.all(queries.map(([, q, o]) => library(q, o)));
    const done = await Promise.all(Array.from({ length: 40 }, async (_, i) => ({ k: i % queries.length, res: await search(queries[i % queries.length][0]) })));
    const counts = { 200: 0, 429: 0 };
    for (const { k, res } of done) {
      assert.ok(res.status === 200 || res.status === 429, `status ${res.status}: ${res.text}`);
      counts[res.status as 200 | 429]++;
      if (res.status === 429) isError(res, 429, "queue_full");
      else same(res.json.results, want[k], `concurrent query ${k}`);
    }
    t.diagnostic(`200s: ${counts[200]}, 429s: ${counts[429]}`);
    assert.ok(counts[200] > 0 && counts[429] > 0, `200s: ${counts[200]}, 429s: ${counts[429]}`);

    const m = (await get(`${s.url}/metrics`)).text;
    assert.match(m, /^bridgetower_queue_size 0$/m);
    assert.match(m, /^bridgetower_requests_total\{route="\/v1\/search",method="POST",status="200"\} [1-9]/m);
    assert.match(m, /^bridgetower_requests_total\{route="\/v1\/search",method="POST",status="429"\} [1-9]/m);
    assert.match(m, /^bridgetower_requests_total\{route="\/v1\/items\/:id\/image",method="GET",status="200"\} [1-9]/m);
    for (const kind of ["text", "image", "pair", "itm"]) assert.match(m, new RegExp(`^bridgetower_batch_size_count\\{kind="${kind}"\\} [1-9]`, "m"), kind);
    assert.match(m, /^bridgetower_search_seconds_count [1-9]/m);
  });

  it("a row whose file is gone: 404 for its image, and re-ranking puts it after the scored ones, as the library does", async () => {
    const all = await library("anything", { topK: 10 });
    const jpg = all.find((x) => x.source.endsWith("bands.jpg"))!;
    rmSync(jpg.source);
    isError(await get(`${s.url}/v1/items/${jpg.id}/image`, auth), 404, "not_found", /gone/);
    const r = await search({ query: "colour bands", rerank: 5 });
    assert.equal(r.status, 200, r.text);
    const want = await library("colour bands", { rerank: 5 });
    assert.equal(want.filter((x) => x.itm_score === undefined).length, 1);
    same(r.json.results, want, "rerank with a file gone");
  });

  it("without --model the server takes the collection's; without --db the routes are 404 JSON", async () => {
    const own = await startServer(["--db", db, "--quiet"], { model: null });
    servers.push(own);
    const info = (await get(`${own.url}/info`)).json;
    assert.equal(info.model, realpathSync(E2E)); // folders are recorded by their real path
    assert.equal(info.collection.rows, 5);
    same((await post(`${own.url}/v1/search`, { query: "a cat" })).json.results, await library("a cat"), "collection's model");
    own.kill();

    const none = await startServer(["--quiet"]);
    servers.push(none);
    assert.equal((await get(`${none.url}/info`)).json.collection, null);
    isError(await post(`${none.url}/v1/search`, { query: "a cat" }), 404, "not_found", /--db/);
    isError(await get(`${none.url}/v1/items/${"0".repeat(32)}/image`), 404, "not_found", /--db/);
    none.kill();
  });

  it("refuses to start with another model or dtype than the collection's (one line, exit 9)", () => {
    for (const args of [["--model", fixture("tiny-itc")], ["--model", E2E, "--dtype", "int8"]]) {
      const r = spawnSync(BIN, ["serve", "--db", db, "--port", "0", ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, HF_HUB_OFFLINE: "1" } });
      assert.equal(r.status, 9, r.stderr);
      const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("listening"));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^bridgetower: .*db: was indexed with .*e2e-fullvocab \(fp32\), not .*(tiny-itc \(fp32\)|e2e-fullvocab \(int8\))/);
      assert.doesNotMatch(r.stderr, /listening on/);
    }
  });
});
