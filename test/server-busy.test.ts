/**
 * `bridgetower serve` on the full-size checkpoint while the model is busy: the model runs on its own thread, so a
 * batch that takes seconds does not stop the server from answering health checks and metrics, queueing the next
 * request, and refusing overload with 429 at once (onnxruntime-node's run blocks the thread it is called on).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ensureLargeModel, LARGE_DIR } from "./helpers/large.js";
import { dataUrl, get, post, type Served, sleep, startServer } from "./helpers/serve.js";

describe("bridgetower serve while a full-size batch runs", { timeout: 900_000 }, () => {
  let s: Served;
  before(async () => {
    await ensureLargeModel((line) => console.log(`# ${line}`));
    s = await startServer(["--max-queue", "2", "--quiet"], { model: LARGE_DIR, timeoutMs: 600_000 });
  });
  after(() => s?.kill());

  it("health, metrics and a 429 answer before the running batch ends; the queued request then runs", async () => {
    const image = dataUrl("chelsea.png");
    const texts = ["a cat on a floor", "coffee", "a dog on a sofa", "two cups of tea", "a red car", "the sky at night"];
    const done: string[] = [];
    const track = <T>(name: string, p: Promise<T>) => p.then((r) => (done.push(name), r));
    // One image against six texts: several seconds of model work on one thread at this size.
    const running = track("running", post(`${s.url}/v1/itm`, { image, texts }, { timeoutMs: 600_000 }));
    // Decoding one small image takes milliseconds: a second later the batch is running.
    await sleep(1000);
    const health = await track("health", get(`${s.url}/health`));
    const queued = track("queued", post(`${s.url}/v1/itm`, { image, texts: texts.slice(0, 2) }, { timeoutMs: 600_000 }));
    // Polled until the second request is queued (its image decoded and checked).
    let metrics = await get(`${s.url}/metrics`);
    for (let i = 0; i < 100 && !/^bridgetower_queue_size 2$/m.test(metrics.text) && !done.includes("running"); i++) {
      await sleep(20);
      metrics = await get(`${s.url}/metrics`);
    }
    done.push("metrics");
    const refused = await track("refused", post(`${s.url}/v1/itm`, { image, texts: ["one more"] }));
    assert.deepEqual(done, ["health", "metrics", "refused"], `answered in the order ${done.join(", ")}: the running batch ended first`);
    assert.deepEqual(health.json, { status: "ok" });
    assert.match(metrics.text, /^bridgetower_queue_size 2$/m);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.json.error.type, "queue_full");

    const [a, b] = await Promise.all([running, queued]);
    assert.deepEqual(done.slice(3), ["running", "queued"]);
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    // The two texts the queued request shares with the running one get the same logits (another batch, same numbers).
    const logits = (r: typeof a, text: string) => r.json.results.find((x: { index: number }) => r === a ? texts[x.index] === text : texts.slice(0, 2)[x.index] === text).logits;
    for (const t of texts.slice(0, 2))
      for (const [i, v] of logits(b, t).entries()) assert.ok(Math.abs(v - logits(a, t)[i]) < 1e-4, `"${t}": ${logits(b, t)} vs ${logits(a, t)}`);
  });
});
