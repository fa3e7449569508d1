/**
 * Overlapped indexing: items are prepared (read, decoded, preprocessed; frames cut by ffmpeg) ahead of the
 * model, batches are embedded one after another, and each batch's commit runs while the next one is embedded.
 */
type Settled<P> = { ok: true; value: P } | { ok: false; error: unknown };

export interface PipelineOptions<I, P, R> {
  batchSize: number;
  /** Items prepared at the same time (ffmpeg runs in its own processes; decoding shares the event loop). */
  concurrency: number;
  prepare(item: I): Promise<P>;
  embed(batch: { item: I; prepared: P }[]): Promise<R[]>;
  /** Commits one batch (atomically); commits happen in order, one at a time. */
  write(rows: R[]): Promise<void>;
  onFailure(item: I, error: unknown): void;
  onCommit(rows: number): void;
  /** Stops at the next batch boundary; the batch being written is still committed. */
  signal?: AbortSignal;
}

export async function runPipeline<I, P, R>(items: I[], o: PipelineOptions<I, P, R>): Promise<void> {
  // Two batches prepared ahead keep the model busy while the next ones are decoded.
  const window = 2 * o.batchSize + o.concurrency;
  const results: (Promise<Settled<P>> | undefined)[] = [];
  const queue: (() => void)[] = [];
  let running = 0;
  const limited = async (item: I): Promise<P> => {
    while (running >= o.concurrency) await new Promise<void>((r) => queue.push(r));
    running++;
    try {
      return await o.prepare(item);
    } finally {
      running--;
      queue.shift()?.();
    }
  };
  let started = 0;
  let taken = 0;
  const fill = () => {
    for (; started < items.length && started - taken < window; started++)
      results[started] = limited(items[started]).then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));
  };
  let writing: Promise<void> = Promise.resolve();
  while (taken < items.length && !o.signal?.aborted) {
    const batch: { item: I; prepared: P }[] = [];
    while (batch.length < o.batchSize && taken < items.length) {
      fill();
      const r = await results[taken]!;
      results[taken] = undefined; // let the prepared pixels go
      const item = items[taken++];
      if (r.ok) batch.push({ item, prepared: r.value });
      else o.onFailure(item, r.error);
    }
    fill();
    if (batch.length === 0) continue;
    const rows = await o.embed(batch);
    await writing;
    writing = o.write(rows).then(() => o.onCommit(rows.length));
    writing.catch(() => undefined); // rethrown by the next await; never an unhandled rejection meanwhile
  }
  await writing;
}
