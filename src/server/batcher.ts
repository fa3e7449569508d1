/**
 * Dynamic batching: one queue per kind of work, one batch at a time sent to the model thread (the model gains
 * nothing from concurrent calls on this CPU, but a lot from batching). When idle, the batcher starts on whatever is
 * queued at once; requests that arrive while a batch runs are grouped into the next. Kinds take turns, so a slow
 * image batch holds text work back by one batch at most.
 */

export type Kind = "text" | "image" | "pair" | "itm" | "fill-mask";
export const KINDS: readonly Kind[] = ["text", "image", "pair", "itm", "fill-mask"];

export interface Runner {
  /** Runs one batch; returns one output per input, in order. */
  run(inputs: unknown[]): Promise<unknown[]>;
  /** Items of this kind run one per call (an item is already a batch of its own, e.g. one image and many texts). */
  single?: boolean;
}

export interface BatchReport {
  kind: Kind;
  /** Inputs in the batch. */
  size: number;
  /** Seconds each item waited in the queue. */
  waited: number[];
  /** Seconds the batch ran. */
  ran: number;
}

/** The queue is full: the request is refused as a whole (HTTP 429). */
export class QueueFullError extends Error {}
/** The client went away before its batch ran. */
export class CancelledError extends Error {}

export interface WorkItem {
  kind: Kind;
  input: unknown;
  /** Model inputs this item stands for (counted against the queue limit). */
  size: number;
}

interface Queued extends WorkItem {
  enqueued: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class Batcher {
  private readonly queues = new Map<Kind, Queued[]>(KINDS.map((k) => [k, []]));
  private waitingInputs = 0;
  private running = false;
  private scheduled = false;
  private turn = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly runners: Record<Kind, Runner>,
    private readonly limits: { maxBatchSize: number; maxQueue: number },
    private readonly onBatch: (r: BatchReport) => void = () => {},
  ) {}

  /** Inputs waiting in the queues (not counting the batch that runs). */
  get waiting(): number {
    return this.waitingInputs;
  }

  /**
   * Queues all of a request's items, or none: throws QueueFullError when they would take the queue past its limit.
   * A request larger than the whole queue is still taken when nothing waits, so it is not refused forever.
   * When `signal` aborts, the items still queued are dropped.
   */
  submit(items: WorkItem[], signal?: AbortSignal): Promise<unknown>[] {
    if (signal?.aborted) throw new CancelledError("client disconnected");
    const n = items.reduce((a, i) => a + i.size, 0);
    if (this.waitingInputs > 0 && this.waitingInputs + n > this.limits.maxQueue) throw new QueueFullError("queue full");
    const queued: Queued[] = [];
    const promises = items.map((item) => new Promise<unknown>((resolve, reject) => {
      const q: Queued = { ...item, enqueued: performance.now(), resolve, reject };
      queued.push(q);
      this.queues.get(item.kind)!.push(q);
    }));
    this.waitingInputs += n;
    signal?.addEventListener("abort", () => {
      for (const q of queued) this.drop(q);
    }, { once: true });
    if (!this.running && !this.scheduled) {
      // Start on the next turn of the event loop, so requests that arrived together go in one batch.
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.pump();
      });
    }
    return promises;
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.running && !this.scheduled && this.waitingInputs === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private drop(q: Queued): void {
    const queue = this.queues.get(q.kind)!;
    const at = queue.indexOf(q);
    if (at < 0) return; // already taken into a batch
    queue.splice(at, 1);
    this.waitingInputs -= q.size;
    q.reject(new CancelledError("client disconnected"));
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let batch = this.take(); batch; batch = this.take()) await this.run(batch.kind, batch.items);
    } finally {
      this.running = false;
      if (this.waitingInputs === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** The next batch: the first kind with work, starting after the one that ran last. */
  private take(): { kind: Kind; items: Queued[] } | undefined {
    for (let i = 0; i < KINDS.length; i++) {
      const kind = KINDS[(this.turn + i) % KINDS.length];
      const queue = this.queues.get(kind)!;
      if (queue.length === 0) continue;
      this.turn = (this.turn + i + 1) % KINDS.length;
      let count = 1;
      let size = queue[0].size;
      if (!this.runners[kind].single)
        while (count < queue.length && size + queue[count].size <= this.limits.maxBatchSize) size += queue[count++].size;
      const items = queue.splice(0, count);
      this.waitingInputs -= size;
      return { kind, items };
    }
    return undefined;
  }

  private async run(kind: Kind, items: Queued[]): Promise<void> {
    const start = performance.now();
    let outputs: unknown[];
    try {
      outputs = await this.runners[kind].run(items.map((q) => q.input));
      if (outputs.length !== items.length) throw new Error(`${kind} batch returned ${outputs.length} outputs for ${items.length} inputs`);
    } catch (e) {
      // Inputs are checked before they are queued, so this should not happen; if it does, retry one by one so
      // that one bad input fails alone.
      if (items.length > 1) {
        for (const q of items) await this.run(kind, [q]);
        return;
      }
      items[0].reject(e);
      return;
    }
    const end = performance.now();
    this.onBatch({ kind, size: items.reduce((a, q) => a + q.size, 0), waited: items.map((q) => (start - q.enqueued) / 1000), ran: (end - start) / 1000 });
    items.forEach((q, i) => q.resolve(outputs[i]));
  }
}
