/**
 * `bridgetower serve` under load and through its life: 503 while loading, 429 past --max-queue (every 200 still
 * right), SIGTERM with requests in flight, and a checkpoint without a head. The real CLI, one child per case.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../src/io/safetensors.js";
import { BridgeTowerModel, BridgeTowerProcessor, rankTexts } from "../src/index.js";
import { maxAbsDiff } from "./helpers/fixtures.js";
import { BIN, dataUrl, E2E, get, longTexts, post, type Served, sleep, startServer } from "./helpers/serve.js";

const close = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) => {
  const { diff, at } = maxAbsDiff(got, want);
  assert.ok(got.length === want.length && diff <= tol, `${what}: max abs diff ${diff} at ${at}`);
};

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe("bridgetower serve: loading, load, shutdown", { timeout: 300_000 }, () => {
  let model: BridgeTowerModel;
  let processor: BridgeTowerProcessor;
  const servers: Served[] = [];
  const temp: string[] = [];
  before(async () => {
    [model, processor] = await Promise.all([
      BridgeTowerModel.fromPretrained(E2E, { heads: "available", threads: 1, onWarning: () => {} }),
      BridgeTowerProcessor.fromPretrained(E2E),
    ]);
  });
  after(async () => {
    for (const s of servers) s.kill();
    for (const d of temp) rmSync(d, { recursive: true, force: true });
    await model?.dispose();
  });

  it("listens before loading: health is 503 loading and the API 503 until the listening line", async () => {
    const port = await freePort();
    const starting = startServer(["--port", String(port), "--quiet"]);
    let listening = false;
    void starting.then((s) => (servers.push(s), (listening = true)), () => {});
    const seen: { status: number; body: string }[] = [];
    let api: { status: number; json: any } | undefined;
    for (const deadline = Date.now() + 60_000; !listening && Date.now() < deadline; ) {
      const r = await get(`http://127.0.0.1:${port}/health`).catch(() => undefined);
      if (r && !listening) {
        seen.push({ status: r.status, body: r.text });
        if (r.status === 503 && !api) api = await post(`http://127.0.0.1:${port}/v1/encode`, { text: "a" }).catch(() => undefined);
      }
      await sleep(5);
    }
    const s = await starting;
    assert.ok(seen.length > 0, "health answered before the listening line");
    assert.deepEqual(seen[0], { status: 503, body: '{"status":"loading"}' });
    if (api?.status === 503) assert.deepEqual(Object.keys(api.json.error).sort(), ["message", "type"]);
    assert.deepEqual((await get(`${s.url}/health`)).json, { status: "ok" });
    assert.equal(s.url, `http://127.0.0.1:${port}`);
  });

  it("past --max-queue answers 429 with Retry-After at once; every 200 carries the right numbers", async (t) => {
    const s = await startServer(["--max-queue", "4", "--max-batch-size", "4", "--quiet"]);
    servers.push(s);
    const texts = ["a cat", "coffee", "a dog on a sofa", "two cups of tea", "a red car", "the sky at night"];
    const want = new Map<string, Float32Array>();
    for (const t of texts) {
      const enc = await processor.call({ text: [t] });
      want.set(t, (await model.itc.embedTexts(enc.inputIds!, enc.attentionMask)).data);
    }
    const itm = await rankTexts(model.itm, processor, join(E2E, "images", "chelsea.png"), ["a cat", "coffee"]);
    const img = dataUrl("chelsea.png");
    // A long batch first (16 texts of ~500 tokens, taken alone as nothing waits), so the 60 clients below arrive
    // while the model is busy: a small model could otherwise keep up with them and never fill the queue.
    const busy = post(`${s.url}/v1/embeddings`, { input: longTexts(16) });
    await sleep(50);
    // 60 clients at once: text embeddings mostly, some ITM.
    const jobs = Array.from({ length: 60 }, (_, i) => i % 5 === 4
      ? { kind: "itm", req: post(`${s.url}/v1/itm`, { image: img, texts: ["a cat", "coffee"] }) }
      : { kind: "text", text: texts[i % texts.length], req: post(`${s.url}/v1/embeddings`, { input: texts[i % texts.length] }) });
    const done = await Promise.all(jobs.map(async (j) => ({ ...j, res: await j.req })));
    assert.equal((await busy).status, 200);
    const counts = { 200: 0, 429: 0 };
    for (const j of done) {
      assert.ok(j.res.status === 200 || j.res.status === 429, `status ${j.res.status}: ${j.res.text}`);
      counts[j.res.status as 200 | 429]++;
      if (j.res.status === 429) {
        assert.equal(j.res.headers.get("retry-after"), "1");
        assert.equal(j.res.json.error.type, "queue_full");
      } else if (j.kind === "text") close(`"${j.text}"`, j.res.json.data[0].embedding, want.get(j.text!)!);
      else for (const [k, r] of j.res.json.results.entries()) (assert.equal(r.index, itm[k].index), close("itm", r.logits, itm[k].logits));
    }
    t.diagnostic(`200s: ${counts[200]}, 429s: ${counts[429]}`);
    assert.ok(counts[200] > 0 && counts[429] > 0, `200s: ${counts[200]}, 429s: ${counts[429]}`);
    // Nothing is left behind: the queue is empty and the server answers normally.
    assert.match((await get(`${s.url}/metrics`)).text, /^bridgetower_queue_size 0$/m);
    assert.equal((await post(`${s.url}/v1/encode`, { text: "after" })).status, 200);
  });

  it("a request whose client went away is dropped from the queue and never runs", async () => {
    const s = await startServer(["--max-batch-size", "1", "--max-queue", "100000", "--quiet"]);
    servers.push(s);
    const queued = async () => Number(/^bridgetower_queue_size (\d+)$/m.exec((await get(`${s.url}/metrics`)).text)?.[1]);
    const img = dataUrl("chelsea.png");
    const texts = Array.from({ length: 64 }, (_, i) => `caption ${i}${" with many more words".repeat(8)}`);
    // Slow ITM requests (64 texts, one per model call) keep the worker busy; wait until three of them are queued.
    const busy = Array.from({ length: 6 }, () => post(`${s.url}/v1/itm`, { image: img, texts }));
    let q = 0;
    for (const deadline = Date.now() + 30_000; q < 3 * 64 && Date.now() < deadline; await sleep(5)) q = await queued();
    assert.ok(q >= 3 * 64, `busy requests queued: ${q} inputs`);
    // One more request, dropped by its client while it waits behind them (its single input makes the count odd).
    const gone = new AbortController();
    const dropped = fetch(`${s.url}/v1/itm`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ image: img, texts: ["x"] }), signal: gone.signal });
    dropped.catch(() => {});
    for (const deadline = Date.now() + 30_000; q % 64 !== 1 && Date.now() < deadline; await sleep(2)) q = await queued();
    assert.ok(q % 64 === 1 && q > 64, `the request waits behind busy ones (queue: ${q} inputs)`);
    gone.abort();
    await assert.rejects(dropped);
    for (const r of await Promise.all(busy)) assert.equal(r.status, 200);
    const m = (await get(`${s.url}/metrics`)).text;
    assert.match(m, /^bridgetower_batch_size_count\{kind="itm"\} 6$/m, "the dropped request never ran");
    assert.match(m, /^bridgetower_requests_total\{route="\/v1\/itm",method="POST",status="499"\} 1$/m);
    assert.match(m, /^bridgetower_queue_size 0$/m);
  });

  it("SIGTERM finishes every accepted request, refuses new ones, and exits 0", async (t) => {
    const s = await startServer(["--max-queue", "100000", "--quiet"]);
    servers.push(s);
    // One image against 64 texts: cheap to send and admit (one image to decode), several model calls to answer.
    const image = dataUrl("coffee.png");
    const texts = Array.from({ length: 64 }, (_, i) => `caption ${i}: a cup of coffee`);
    const N = 16;
    let answered = 0;
    // A long batch first (64 texts of ~500 tokens, about a second), so the ITM requests are still waiting when the
    // signal comes: a small model could otherwise answer them as fast as they arrive.
    let busyDone = false;
    const busy = post(`${s.url}/v1/embeddings`, { input: longTexts(64) }).finally(() => (busyDone = true));
    await sleep(50);
    const requests = Array.from({ length: N }, () => post(`${s.url}/v1/itm`, { image, texts }).then((r) => (answered++, r)));
    // Wait until the server has all of them (in flight or answered), then signal.
    for (let i = 0; i < 1000; i++) {
      const m = /^bridgetower_requests_in_flight (\d+)$/m.exec((await get(`${s.url}/metrics`)).text);
      const others = busyDone ? 1 : 2; // this /metrics request, and the long one while it runs
      if (Number(m?.[1] ?? 0) - others + answered >= N) break;
      await sleep(10);
    }
    const answeredAtSignal = answered;
    s.proc.kill("SIGTERM");
    for (let i = 0; i < 1000 && !s.lines.some((l) => l.includes("SIGTERM: finishing")); i++) await sleep(10);
    const late = await post(`${s.url}/v1/encode`, { text: "too late" }).catch((e: Error) => e);
    if (!(late instanceof Error)) {
      assert.equal(late.status, 503, late.text);
      assert.equal(late.json.error.type, "unavailable");
    }
    const results = await Promise.all(requests);
    assert.equal((await busy).status, 200, "the long request, accepted before the signal, is answered too");
    t.diagnostic(`answered before SIGTERM: ${answeredAtSignal} of ${N}; late request: ${late instanceof Error ? late.message : late.status}`);
    assert.ok(answeredAtSignal < N, `requests were still in flight at SIGTERM (${answeredAtSignal} of ${N} answered)`);
    for (const r of results) (assert.equal(r.status, 200, r.text), assert.equal(r.json.results.length, texts.length));
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([s.exited, new Promise((r) => (timer = setTimeout(r, 30_000, "timeout")))]);
    clearTimeout(timer);
    assert.equal(code, 0);
  });

  it("bad flags exit 2 before listening; a model that cannot load exits with its error code and one line", () => {
    const bad = spawnSync(BIN, ["serve", "--port", "80000"], { encoding: "utf8", timeout: 30_000 });
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, 'bridgetower: --port: must be a port number from 0 to 65535, got "80000"\n');
    const dir = mkdtempSync(join(tmpdir(), "bt-serve-"));
    temp.push(dir);
    symlinkSync(join(E2E, "config.json"), join(dir, "config.json"));
    const noWeights = spawnSync(BIN, ["serve", "--model", dir, "--port", "0"], { encoding: "utf8", timeout: 60_000 });
    assert.equal(noWeights.status, 8, noWeights.stderr);
    assert.match(noWeights.stderr, /^bridgetower: .*the folder has no weights.*\n$/);
  });

  it("a checkpoint without the contrastive head: its routes answer 400 naming the head, the others work", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bt-serve-"));
    temp.push(dir);
    for (const f of ["config.json", "preprocessor_config.json", "vocab.json", "merges.txt"]) symlinkSync(join(E2E, f), join(dir, f));
    const src = await SafetensorsFile.open(join(E2E, "model.safetensors"));
    const kept: [string, TensorToWrite][] = [];
    for (const [name, e] of src.entries)
      if (!/^(itc_|logit_scale)/.test(name)) kept.push([name, { dtype: e.dtype, shape: e.shape, data: await src.readBytes(name) }]);
    await src.close();
    await writeSafetensors(join(dir, "model.safetensors"), kept);
    const s = await startServer(["--quiet"], { model: dir });
    servers.push(s);
    assert.deepEqual((await get(`${s.url}/info`)).json.heads, ["itm", "mlm"]);
    for (const [path, body] of [["/v1/embeddings", { input: "a" }], ["/v1/encode", { text: "a" }]] as const) {
      const r = await post(`${s.url}${path}`, body);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.type, "unsupported_by_model");
      assert.match(r.json.error.message, /contrastive \(ITC\) head/);
    }
    assert.equal((await post(`${s.url}/v1/itm`, { image: dataUrl("chelsea.png"), texts: ["a cat"] })).status, 200);
  });
});
