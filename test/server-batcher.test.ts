/** The server's dynamic batcher on its own, with fake runners: grouping, turns, back-pressure, cancellation. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Batcher, CancelledError, KINDS, QueueFullError, type Kind, type Runner } from "../src/server/batcher.js";

/** Runners that record each batch and answer after `ms` (a gate can hold the first batch). */
function fakes(ms = 1, fail?: (x: unknown) => boolean) {
  const batches: { kind: Kind; inputs: unknown[] }[] = [];
  let open: () => void = () => {};
  const gate = new Promise<void>((r) => (open = r));
  let gated = false;
  const runner = (kind: Kind, single = false): Runner => ({
    single,
    async run(inputs) {
      batches.push({ kind, inputs });
      if (gated && batches.length === 1) await gate;
      await new Promise((r) => setTimeout(r, ms));
      if (fail && inputs.some(fail)) throw new Error("bad input");
      return inputs.map((x) => `${kind}:${x}`);
    },
  });
  const runners = Object.fromEntries(KINDS.map((k) => [k, runner(k, k === "itm" || k === "fill-mask")])) as Record<Kind, Runner>;
  return { runners, batches, hold: () => (gated = true), open: () => open() };
}

const item = (kind: Kind, input: unknown, size = 1) => ({ kind, input, size });

describe("server batcher", () => {
  it("starts at once when idle, then groups what queued meanwhile up to max-batch-size", async () => {
    const f = fakes();
    f.hold();
    const b = new Batcher(f.runners, { maxBatchSize: 4, maxQueue: 100 });
    const first = b.submit([item("text", 0)]);
    await new Promise((r) => setImmediate(r)); // the first batch has started alone
    const rest = Array.from({ length: 9 }, (_, i) => b.submit([item("text", i + 1)])[0]);
    f.open();
    assert.deepEqual(await Promise.all([...first, ...rest]), Array.from({ length: 10 }, (_, i) => `text:${i}`));
    assert.deepEqual(f.batches.map((x) => x.inputs.length), [1, 4, 4, 1]);
    await b.idle();
  });

  it("kinds take turns: an image waits behind at most one text batch", async () => {
    const f = fakes();
    f.hold();
    const b = new Batcher(f.runners, { maxBatchSize: 2, maxQueue: 100 });
    const all = [b.submit([item("text", "t0")])[0]];
    await new Promise((r) => setImmediate(r));
    for (let i = 1; i <= 6; i++) all.push(b.submit([item("text", `t${i}`)])[0]);
    all.push(b.submit([item("image", "i0")])[0], b.submit([item("itm", "a", 3)])[0], b.submit([item("itm", "b", 3)])[0]);
    f.open();
    await Promise.all(all);
    assert.deepEqual(f.batches.map((x) => x.kind), ["text", "image", "itm", "text", "itm", "text", "text"]);
    assert.deepEqual(f.batches.filter((x) => x.kind === "itm").map((x) => x.inputs), [["a"], ["b"]], "single kinds run one item per call");
  });

  it("past max-queue a request is refused as a whole; accepted ones all finish", async () => {
    const f = fakes();
    f.hold();
    const b = new Batcher(f.runners, { maxBatchSize: 2, maxQueue: 3 });
    const running = b.submit([item("text", "r")]);
    await new Promise((r) => setImmediate(r));
    const accepted = b.submit([item("text", "a"), item("image", "b")]);
    assert.equal(b.waiting, 2);
    assert.throws(() => b.submit([item("text", "c"), item("text", "d")]), QueueFullError);
    assert.equal(b.waiting, 2, "nothing of the refused request was queued");
    const last = b.submit([item("pair", "e")]);
    assert.throws(() => b.submit([item("text", "f")]), QueueFullError);
    f.open();
    assert.deepEqual(await Promise.all([...running, ...accepted, ...last]), ["text:r", "text:a", "image:b", "pair:e"]);
    // A request larger than the whole queue is taken when nothing waits.
    assert.deepEqual(await Promise.all(b.submit([item("itm", "big", 10)])), ["itm:big"]);
  });

  it("a cancelled request leaves the queue and never runs", async () => {
    const f = fakes();
    f.hold();
    const b = new Batcher(f.runners, { maxBatchSize: 8, maxQueue: 100 });
    const running = b.submit([item("text", "r")]);
    await new Promise((r) => setImmediate(r));
    const gone = new AbortController();
    const dropped = b.submit([item("text", "x"), item("image", "y")], gone.signal);
    const kept = b.submit([item("text", "k")]);
    gone.abort();
    assert.equal(b.waiting, 1);
    assert.throws(() => b.submit([item("text", "late")], gone.signal), CancelledError, "an aborted request is not queued");
    for (const p of dropped) await assert.rejects(p, CancelledError);
    f.open();
    await Promise.all([...running, ...kept]);
    assert.deepEqual(f.batches.map((x) => x.inputs), [["r"], ["k"]]);
  });

  it("a batch that fails is retried item by item, so only the bad input fails", async () => {
    const f = fakes(1, (x) => x === "bad");
    f.hold();
    const reports: number[] = [];
    const b = new Batcher(f.runners, { maxBatchSize: 8, maxQueue: 100 }, (r) => reports.push(r.size));
    const first = b.submit([item("text", "a")]);
    await new Promise((r) => setImmediate(r));
    const [good, bad, good2] = [b.submit([item("text", "b")])[0], b.submit([item("text", "bad")])[0], b.submit([item("text", "c")])[0]];
    const failed = assert.rejects(bad, /bad input/);
    f.open();
    assert.deepEqual(await Promise.all([...first, good, good2]), ["text:a", "text:b", "text:c"]);
    await failed;
    assert.deepEqual(reports, [1, 1, 1], "the successful runs are reported");
    await b.idle();
    assert.equal(b.waiting, 0);
  });
});
