/**
 * `bridgetower serve` end to end: the real CLI as a child process on the e2e-fullvocab fixture. Numbers are checked
 * against expected.json and against the library run in this process.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { BridgeTowerModel, BridgeTowerProcessor, fillMask, rankImages, rankTexts } from "../src/index.js";
import { maxAbsDiff, repoRoot } from "./helpers/fixtures.js";
import { dataUrl, E2E, expectedJson, get, longTexts, pngHeader, post, rawHttp, type Served, sleep, startServer } from "./helpers/serve.js";

const KEY = "test-key-1234";
const auth = { authorization: `Bearer ${KEY}` };
const exp = expectedJson();
const image = (name: string) => resolve(E2E, "images", name);

function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const { diff, at } = maxAbsDiff(got, want);
  assert.ok(diff <= tol, `${what}: max abs diff ${diff} at ${at} > ${tol}`);
}

function isError(r: { status: number; json: any; text: string }, status: number, type?: string, message?: RegExp): void {
  assert.equal(r.status, status, `status (body ${r.text.slice(0, 300)})`);
  assert.deepEqual(Object.keys(r.json ?? {}), ["error"], r.text);
  assert.deepEqual(Object.keys(r.json.error).sort(), ["message", "type"]);
  assert.equal(typeof r.json.error.message, "string");
  if (type) assert.equal(r.json.error.type, type);
  if (message) assert.match(r.json.error.message, message);
  assert.doesNotMatch(r.text, /\bat .*\.(ts|js):\d+/, "no stack trace");
}

/** Sum of the text batch-size histogram: [batches, batches of one]. */
async function textBatches(url: string): Promise<[number, number]> {
  const m = (await get(`${url}/metrics`)).text;
  const count = Number(/^bridgetower_batch_size_count\{kind="text"\} (\d+)/m.exec(m)?.[1] ?? 0);
  const ones = Number(/^bridgetower_batch_size_bucket\{le="1",kind="text"\} (\d+)/m.exec(m)?.[1] ?? 0);
  return [count, ones];
}

describe("bridgetower serve", { timeout: 300_000 }, () => {
  let s: Served;
  let model: BridgeTowerModel;
  let processor: BridgeTowerProcessor;
  const api = (path: string, body: unknown, raw?: string) => post(`${s.url}${path}`, body, { headers: auth, raw });

  before(async () => {
    [s, model, processor] = await Promise.all([
      startServer(["--api-key", KEY, "--max-inputs", "16", "--max-body-mb", "2", "--cors", "http://example.org"]),
      BridgeTowerModel.fromPretrained(E2E, { heads: "available", threads: 1, onWarning: () => {} }),
      BridgeTowerProcessor.fromPretrained(E2E),
    ]);
  });
  after(async () => {
    s?.kill();
    await model?.dispose();
  });

  it("health (and aliases), metrics and the page are open; /info tells the model, heads and limits", async () => {
    for (const p of ["/health", "/v1/health_check", "/ping"]) assert.deepEqual((await get(`${s.url}${p}`)).json, { status: "ok" });
    const page = await get(`${s.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /text\/html/);
    assert.match(page.text, /<textarea/);
    assert.equal((await get(`${s.url}/app.js`)).status, 200);
    assert.equal((await get(`${s.url}/metrics`)).status, 200);
    isError(await get(`${s.url}/info`), 401, "unauthorized");
    const info = (await get(`${s.url}/info`, auth)).json;
    assert.equal(info.model, E2E);
    assert.deepEqual(info.heads, ["itm", "mlm", "itc"]);
    assert.equal(info.dtype, "fp32");
    assert.equal(info.limits.max_inputs, 16);
    assert.equal(info.limits.max_body_mb, 2);
    assert.equal(info.version, JSON.parse(readFileSync(resolve(repoRoot, "package.json"), "utf8")).version);
  });

  it("--cors: preflight without the key, and the origin header on answers", async () => {
    const pre = await fetch(`${s.url}/v1/itm`, { method: "OPTIONS", headers: { origin: "http://example.org", "access-control-request-method": "POST" } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "http://example.org");
    assert.equal(pre.headers.get("access-control-allow-methods"), "POST");
    assert.match(pre.headers.get("access-control-allow-headers")!, /authorization/);
    const r = await api("/v1/encode", { text: "a cat" });
    assert.equal(r.headers.get("access-control-allow-origin"), "http://example.org");
  });

  it("/v1/itm ranks texts for an image: the fixture's numbers and rankTexts'", async () => {
    const texts: string[] = exp.itm.texts;
    const r = await api("/v1/itm", { image: dataUrl("chelsea.png"), texts });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.results.map((x: any) => x.text), exp.itm.ranking_by_probability);
    const lib = await rankTexts(model.itm, processor, image("chelsea.png"), texts);
    r.json.results.forEach((x: any, k: number) => {
      const want = exp.itm.per_text[x.index];
      assert.equal(x.text, want.text);
      close(`score ${x.index}`, [x.score], [want.match_probability]);
      close(`logits ${x.index}`, x.logits, want.logits);
      assert.equal(lib[k].index, x.index);
      close(`library score ${x.index}`, [x.score], [lib[k].score]);
      close(`library logits ${x.index}`, x.logits, lib[k].logits);
    });
  });

  it("/v1/itm ranks images for a text, as rankImages", async () => {
    const text = "a cup of coffee on a table";
    const r = await api("/v1/itm", { text, images: [dataUrl("chelsea.png"), dataUrl("coffee.png")] });
    assert.equal(r.status, 200, r.text);
    const lib = await rankImages(model.itm, processor, [image("chelsea.png"), image("coffee.png")], text);
    assert.deepEqual(r.json.results.map((x: any) => x.index), lib.map((x) => x.index));
    r.json.results.forEach((x: any, k: number) => {
      assert.equal(x.text, undefined);
      close(`score ${x.index}`, [x.score], [lib[k].score]);
      close(`logits ${x.index}`, x.logits, lib[k].logits);
    });
    // The same pair scored from the other side gives the fixture's number.
    const cup = exp.itm.per_text[1];
    const one = await api("/v1/itm", { text: cup.text, images: [dataUrl("chelsea.png")] });
    close("text vs chelsea", one.json.results[0].logits, cup.logits);
  });

  it("/v1/fill-mask: the fixture's top-5 and decode, and fillMask's numbers", async () => {
    const f = exp.fill_mask;
    const r = await api("/v1/fill-mask", { image: dataUrl("coffee.png"), text: f.text });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.masks.length, 1);
    assert.deepEqual(r.json.masks[0].map((c: any) => c.token_id), f.top5.map((t: any) => t.id));
    assert.deepEqual(r.json.masks[0].map((c: any) => c.token), f.top5.map((t: any) => t.decoded));
    close("probabilities", r.json.masks[0].map((c: any) => c.score), f.top5.map((t: any) => t.probability), 1e-6);
    assert.equal(r.json.decoded, f.decoded_argmax);
    const lib = await fillMask(model.mlm, processor, image("coffee.png"), f.text, 3);
    const three = await api("/v1/fill-mask", { image: dataUrl("coffee.png"), text: f.text, top_k: 3 });
    assert.equal(three.json.sequence, lib.sequence);
    assert.deepEqual(three.json.masks[0].map((c: any) => c.token_id), lib.masks[0].map((c) => c.tokenId));
    close("library scores", three.json.masks[0].map((c: any) => c.score), lib.masks[0].map((c) => c.score), 1e-6);
  });

  it("/v1/embeddings: texts, images and pairs as the fixture and the library, float and base64", async () => {
    const c = exp.contrastive;
    const texts = await api("/v1/embeddings", { input: c.texts });
    assert.equal(texts.status, 200, texts.text);
    assert.equal(texts.json.object, "list");
    assert.equal(texts.json.model, E2E);
    assert.equal(texts.json.usage.prompt_tokens, c.input_ids.flat().length);
    assert.equal(texts.json.usage.total_tokens, texts.json.usage.prompt_tokens);
    const ids = await processor.call({ text: c.texts, padding: "longest" });
    const libTexts = await model.itc.embedTexts(ids.inputIds!, ids.attentionMask);
    texts.json.data.forEach((d: any, i: number) => {
      assert.deepEqual([d.object, d.index, d.modality], ["embedding", i, "text"]);
      close(`text ${i}`, d.embedding, c.text_embeds[i]);
      close(`library text ${i}`, d.embedding, libTexts.data.subarray(i * 32, (i + 1) * 32));
    });
    const images = await api("/v1/embeddings", { input: c.images.map((n: string) => ({ image: dataUrl(n) })) });
    assert.equal(images.status, 200, images.text);
    images.json.data.forEach((d: any, i: number) => (assert.equal(d.modality, "image"), close(`image ${i}`, d.embedding, c.image_embeds[i])));
    const pairs = await api("/v1/embeddings", { input: c.texts.map((t: string, i: number) => ({ text: t, image: dataUrl(c.images[i]) })) });
    assert.equal(pairs.status, 200, pairs.text);
    pairs.json.data.forEach((d: any, i: number) => (assert.equal(d.modality, "pair"), close(`pair ${i}`, d.embedding, c.cross_embeds[i])));
    // One string; one object; base64 = little-endian float32.
    const one = await api("/v1/embeddings", { input: c.texts[1], encoding_format: "base64", model: "anything" });
    assert.equal(one.json.model, "anything");
    const bytes = Buffer.from(one.json.data[0].embedding, "base64");
    const floats = Array.from({ length: bytes.length / 4 }, (_, k) => bytes.readFloatLE(4 * k));
    const float = await api("/v1/embeddings", { input: c.texts[1] });
    assert.deepEqual(floats, float.json.data[0].embedding);
    const mixed = await api("/v1/embeddings", { input: [{ text: c.texts[0] }, c.texts[1], { image: dataUrl(c.images[0]) }] });
    assert.deepEqual(mixed.json.data.map((d: any) => d.modality), ["text", "text", "image"]);
    close("mixed image", mixed.json.data[2].embedding, c.image_embeds[0]);
  });

  it("/v1/encode (OPEA): text alone is the text embedding, with img_b64_str the pair embedding", async () => {
    const c = exp.contrastive;
    const t = await api("/v1/encode", { text: c.texts[0] });
    assert.equal(t.status, 200, t.text);
    assert.deepEqual(Object.keys(t.json), ["embedding"]);
    close("text", t.json.embedding, c.text_embeds[0]);
    const b64 = readFileSync(image(c.images[1])).toString("base64");
    const p = await api("/v1/encode", { text: c.texts[1], img_b64_str: b64 });
    assert.equal(p.status, 200, p.text);
    close("pair", p.json.embedding, c.cross_embeds[1]);
  });

  it("text embeddings batched across requests and padded to the longest equal the unbatched ones", async (t) => {
    const texts = Array.from({ length: 12 }, (_, i) => `caption ${i}:${" and a very long tail".repeat(i % 4)} about a cat`);
    const batched = await api("/v1/embeddings", { input: texts });
    assert.equal(batched.status, 200, batched.text);
    // First a long batch (16 texts of ~500 tokens: a few hundred ms on the model thread), so that the 12 requests
    // arrive while the model is busy. Without it a small model can finish each request before the next one arrives,
    // and nothing would show whether waiting requests share a batch.
    const [before1, beforeOnes] = await textBatches(s.url);
    const busy = api("/v1/embeddings", { input: longTexts(16) });
    await sleep(50);
    const concurrent = await Promise.all(texts.map((t) => api("/v1/embeddings", { input: t })));
    assert.equal((await busy).status, 200);
    const [after1, afterOnes] = await textBatches(s.url);
    const [batches, ones] = [after1 - before1 - 1, afterOnes - beforeOnes];
    assert.ok(batches < texts.length, `the 12 concurrent requests went into ${batches} batches`);
    assert.ok(batches - ones >= 1, "at least one batch held several requests");
    t.diagnostic(`12 concurrent requests ran in ${batches} batch(es)`);
    for (const [i, t] of texts.entries()) {
      const alone = await api("/v1/embeddings", { input: t });
      const enc = await processor.call({ text: [t] });
      const lib = await model.itc.embedTexts(enc.inputIds!, enc.attentionMask);
      close(`batched ${i}`, batched.json.data[i].embedding, alone.json.data[0].embedding);
      close(`concurrent ${i}`, concurrent[i].json.data[0].embedding, alone.json.data[0].embedding);
      close(`library ${i}`, alone.json.data[0].embedding, lib.data);
    }
  });

  it("answers every bad request with its status and {error: {type, message}}", async () => {
    const u = s.url;
    const img = dataUrl("chelsea.png");
    // 400: malformed JSON, wrong types, empty input, URLs, bad base64, no <mask>, both or neither ITM forms
    isError(await api("/v1/embeddings", undefined, '{"input": '), 400, "invalid_request", /JSON/);
    isError(await api("/v1/embeddings", undefined, "[1, 2]"), 400, "invalid_request", /object/);
    isError(await api("/v1/embeddings", { input: 5 }), 400, "invalid_request", /input/);
    isError(await api("/v1/embeddings", { input: [] }), 400, "invalid_request", /input is empty/);
    isError(await api("/v1/embeddings", { input: "" }), 400, "invalid_request", /input is empty/);
    isError(await api("/v1/embeddings", { input: [{}] }), 400, "invalid_request", /input\[0\] needs a text, an image or both/);
    isError(await api("/v1/embeddings", { input: "a", encoding_format: "int8" }), 400, "invalid_request", /encoding_format/);
    isError(await api("/v1/embeddings", { input: [{ text: 3 }] }), 400, "invalid_request", /input\[0\]\.text must be a string/);
    isError(await api("/v1/encode", {}), 400, "invalid_request", /text must be a string/);
    isError(await api("/v1/itm", { image: img, texts: "a cat" }), 400, "invalid_request", /texts must be an array/);
    isError(await api("/v1/itm", { image: img, texts: [] }), 400, "invalid_request", /texts is empty/);
    isError(await api("/v1/itm", { image: img, texts: ["a"], images: [img] }), 400, "invalid_request");
    isError(await api("/v1/itm", { image: 7, texts: ["a"] }), 400, "invalid_request", /image must be a string/);
    isError(await api("/v1/itm", { image: "https://example.com/cat.png", texts: ["a"] }), 400, "invalid_request", /never fetched/);
    isError(await api("/v1/itm", { image: "file:///etc/passwd", texts: ["a"] }), 400, "invalid_request", /never fetched/);
    isError(await api("/v1/itm", { image: "data:image/png,abc", texts: ["a"] }), 400, "invalid_request", /base64/);
    isError(await api("/v1/itm", { image: "not base64!", texts: ["a"] }), 400, "invalid_request", /not valid base64/);
    isError(await api("/v1/fill-mask", { image: img, text: "no mask here" }), 400, "invalid_request", /<mask>/);
    isError(await api("/v1/fill-mask", { image: img, text: "a <mask>", top_k: "5" }), 400, "invalid_request", /top_k/);
    isError(await api("/v1/fill-mask", { image: img, text: "a <mask>", top_k: 0 }), 400, "invalid_request", /top_k/);
    // 401: no key, wrong key; health and metrics stay open
    isError(await post(`${u}/v1/embeddings`, { input: "a" }), 401, "unauthorized");
    isError(await post(`${u}/v1/embeddings`, { input: "a" }, { headers: { authorization: "Bearer wrong" } }), 401, "unauthorized");
    isError(await post(`${u}/v1/embeddings`, { input: "a" }, { headers: { authorization: KEY } }), 401, "unauthorized");
    // 404, 405
    isError(await get(`${u}/v2/nothing`, auth), 404, "not_found");
    const m = await get(`${u}/v1/itm`, auth);
    isError(m, 405, "method_not_allowed");
    assert.equal(m.headers.get("allow"), "POST");
    // 413: body over --max-body-mb, more inputs than --max-inputs
    isError(await api("/v1/embeddings", { input: "x".repeat(3 * 1024 * 1024) }), 413, "payload_too_large");
    isError(await api("/v1/embeddings", { input: Array.from({ length: 17 }, () => "a") }), 413, "payload_too_large", /17 inputs.*16/);
    isError(await api("/v1/itm", { text: "a", images: Array.from({ length: 17 }, () => "AAAA") }), 413, "payload_too_large");
    // 415: not JSON
    isError(await post(`${u}/v1/embeddings`, undefined, { headers: { ...auth, "content-type": "text/plain" }, raw: "a cat" }), 415, "unsupported_media_type");
    isError(await post(`${u}/v1/embeddings`, undefined, { headers: { ...auth, "content-type": "application/x-www-form-urlencoded" }, raw: "input=a" }), 415);
    // 422: not an image, an image over the pixel limit, a text longer than the model's positions
    isError(await api("/v1/itm", { image: Buffer.from("hello, not an image").toString("base64"), texts: ["a"] }), 422, "invalid_input", /^image: cannot decode/);
    isError(await api("/v1/itm", { image: readFileSync(image("chelsea.png")).subarray(0, 5000).toString("base64"), texts: ["a"] }), 422, "invalid_input");
    isError(await api("/v1/embeddings", { input: [{ image: pngHeader(20000, 20000).toString("base64") }] }), 422, "invalid_input", /20000x20000.*limit/);
    isError(await api("/v1/embeddings", { input: ["fine", "word ".repeat(600)] }), 422, "invalid_input", /input\[1\] is 60\d tokens long; the model takes at most 512/);
    isError(await api("/v1/encode", { text: "x".repeat(200_000) }), 422, "invalid_input", /text is 200000 characters long; the model takes at most 512 tokens/);
    // Errors before routing: a malformed URL, a malformed HTTP request.
    isError(await get(`${u}/%c0`, auth), 400, "invalid_request", /url/);
    const raw = await rawHttp(u, "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n");
    assert.match(raw, /^HTTP\/1\.1 400 /);
    assert.match(raw, /\r\n\r\n\{"error":\{"type":"invalid_request","message":"malformed HTTP request"\}\}$/);
    // A bad request does not disturb the next good one.
    assert.equal((await api("/v1/encode", { text: "still fine" })).status, 200);
  });

  it("/metrics has the request counters, queue and inference histograms and batch sizes after traffic", async () => {
    const m = (await get(`${s.url}/metrics`)).text;
    assert.match(m, /^bridgetower_requests_total\{route="\/v1\/embeddings",method="POST",status="200"\} \d+/m);
    assert.match(m, /^bridgetower_requests_total\{route="\/v1\/itm",method="POST",status="422"\} \d+/m);
    assert.match(m, /^bridgetower_requests_total\{route="\/v1\/embeddings",method="POST",status="401"\} 3$/m);
    for (const kind of ["text", "image", "pair", "itm", "fill-mask"]) {
      assert.match(m, new RegExp(`^bridgetower_queue_seconds_count\\{kind="${kind}"\\} [1-9]`, "m"), kind);
      assert.match(m, new RegExp(`^bridgetower_inference_seconds_count\\{kind="${kind}"\\} [1-9]`, "m"), kind);
      assert.match(m, new RegExp(`^bridgetower_batch_size_count\\{kind="${kind}"\\} [1-9]`, "m"), kind);
    }
    assert.match(m, /^bridgetower_queue_size 0$/m);
    assert.match(m, /^bridgetower_request_duration_seconds_bucket\{le="[^"]+",route="\/v1\/fill-mask"\} \d+/m);
  });

  it("logs one line per request to stderr", () => {
    assert.ok(s.lines.some((l) => /^POST \/v1\/itm 200 \d+\.\dms$/.test(l)), s.lines.slice(0, 5).join("\n"));
    assert.ok(s.lines.some((l) => /^GET unmatched 404 /.test(l)));
    assert.equal(s.lines.filter((l) => l.startsWith("listening on ")).length, 1);
  });
});
