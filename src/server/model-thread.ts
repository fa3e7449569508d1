/**
 * The server's model on a worker thread of its own. onnxruntime-node's `run` is synchronous, so on the main thread
 * every batch stopped the server from reading requests: no health answer, no 429, no disconnect seen, and the next
 * batch held only what had been parsed between two runs (measured: 6 texts per batch, not 16, under 64 clients).
 * Here the main thread parses, checks and queues while the worker runs the model; the batcher still sends it one
 * batch at a time.
 */
import { Worker } from "node:worker_threads";
import * as errors from "../errors.js";
import type { BridgeTowerConfig, BridgeTowerModel } from "../index.js";
import { KINDS, type Kind, type Runner } from "./batcher.js";
import { ONE_PER_CALL } from "./work.js";

export interface ModelThreadOptions {
  /** Local model folder. */
  dir: string;
  dtype?: "fp32" | "int8";
  threads?: number;
  maxBatchSize: number;
}

/** What the routes and /info need of the loaded model. */
export type ModelInfo = Pick<BridgeTowerModel, "heads" | "config">;

/** Messages from the worker. */
export type FromWorker =
  | { type: "warning"; message: string }
  | { type: "ready"; heads: BridgeTowerModel["heads"]; config: BridgeTowerConfig }
  | { type: "failed"; error: SentError }
  | { type: "result"; id: number; outputs: unknown[] }
  | { type: "error"; id: number; error: SentError };
/** Messages to the worker. */
export type ToWorker = { type: "run"; id: number; kind: Kind; inputs: unknown[] } | { type: "dispose" };

export interface SentError {
  name: string;
  message: string;
  input?: string;
}

/** An error as it crosses the thread boundary: the library's typed errors keep their class. */
export function sendError(e: unknown): SentError {
  if (e instanceof errors.BridgeTowerError) return { name: e.name, message: e.message, input: e.input };
  return { name: "Error", message: (e as Error)?.message ?? String(e) };
}

const TYPED: Record<string, new (input: string, message: string) => errors.BridgeTowerError> = {
  BridgeTowerError: errors.BridgeTowerError, CheckpointFormatError: errors.CheckpointFormatError, ConfigError: errors.ConfigError,
  UnsupportedCheckpointError: errors.UnsupportedCheckpointError, ImageError: errors.ImageError, TokenizerError: errors.TokenizerError,
  HubError: errors.HubError, InputError: errors.InputError,
};

function reviveError(s: SentError): Error {
  const Typed = TYPED[s.name];
  if (!Typed) return new Error(s.message);
  const e = new Typed(s.input ?? "", "");
  e.message = s.message;
  return e;
}

/**
 * The worker: compiled JavaScript beside this file; run from the sources (tests under tsx), the TypeScript file
 * behind tsx's loader, which a worker does not inherit.
 */
function newWorker(workerData: ModelThreadOptions): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./model-worker.js", import.meta.url), { workerData });
  const [tsx, file] = [import.meta.resolve("tsx/esm/api"), new URL("./model-worker.ts", import.meta.url).href];
  const boot = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(file)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

export class ModelThread implements ModelInfo {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(v: unknown[]): void; reject(e: unknown): void }>();
  private exited?: Error;

  private constructor(private readonly worker: Worker, readonly heads: ModelInfo["heads"], readonly config: BridgeTowerConfig) {
    worker.on("message", (m: FromWorker) => {
      if (m.type === "warning") return;
      if (m.type !== "result" && m.type !== "error") return;
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.type === "result") p?.resolve(m.outputs);
      else p?.reject(reviveError(m.error));
    });
  }

  /** Loads the model on a new thread; rejects with the load's own (typed) error. */
  static start(o: ModelThreadOptions, onWarning: (message: string) => void, onExit: (error: Error) => void): Promise<ModelThread> {
    const worker = newWorker(o);
    return new Promise<ModelThread>((resolve, reject) => {
      let thread: ModelThread | undefined;
      worker.on("message", (m: FromWorker) => {
        if (m.type === "warning") onWarning(m.message);
        else if (m.type === "failed") reject(reviveError(m.error));
        else if (m.type === "ready") resolve((thread = new ModelThread(worker, m.heads, m.config)));
      });
      // An uncaught error is followed by "exit": the server learns of either there, once.
      let uncaught: Error | undefined;
      worker.on("error", (e) => (uncaught = e));
      worker.on("exit", (code) => {
        const e = uncaught ? new Error(`the model thread failed: ${uncaught.message}`) : new Error(`the model thread exited (code ${code})`);
        if (!thread) return reject(e);
        if (thread.fail(e)) onExit(e);
      });
    });
  }

  /** Runners for the batcher that send each batch to the thread. */
  runners(): Record<Kind, Runner> {
    return Object.fromEntries(KINDS.map((kind) => [kind, { run: (inputs: unknown[]) => this.run(kind, inputs), single: ONE_PER_CALL.has(kind) }])) as Record<Kind, Runner>;
  }

  private run(kind: Kind, inputs: unknown[]): Promise<unknown[]> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: "run", id, kind, inputs } satisfies ToWorker);
    });
  }

  /** Fails every call waiting on the thread; true the first time (the thread was not being disposed). */
  private fail(e: Error): boolean {
    if (this.exited) return false;
    this.exited = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    return true;
  }

  /** Releases the model and ends the thread. */
  async dispose(): Promise<void> {
    if (this.exited) return;
    this.exited = new Error("the model was disposed");
    const gone = new Promise((resolve) => this.worker.once("exit", resolve));
    this.worker.postMessage({ type: "dispose" } satisfies ToWorker);
    await gone;
  }
}
