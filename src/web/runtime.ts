/**
 * onnxruntime-web in the page: the WebAssembly backend (SIMD, threads when the page is cross-origin isolated) or
 * WebGPU on request. Its .wasm/.mjs files are served from beside this bundle (dist/web/ort/), never from a CDN.
 * One WebAssembly instance serves every session, so sessions are created and run one at a time.
 */
import * as ort from "onnxruntime-web";
import { InputError } from "../errors.js";
import type { Graph } from "../onnx/graph.js";
import type { Tensor } from "../model/tensor.js";
import type { PartFile } from "./weights.js";

export type Device = "wasm" | "webgpu";

export interface RuntimeOptions {
  /** WebAssembly threads (default: navigator.hardwareConcurrency); 1 unless the page is cross-origin isolated. */
  threads?: number;
  /** "wasm" (default) or "webgpu" (where the browser has it). */
  device?: Device;
  onWarning?: (message: string) => void;
}

export interface Runtime {
  device: Device;
  /** The threads onnxruntime-web runs with in this page. */
  threads: number;
}

let started: number | undefined;
let queue: Promise<unknown> = Promise.resolve();

/** Runs `job` after every job queued before it (the WebAssembly instance is not reentrant). */
function serial<T>(job: () => Promise<T>): Promise<T> {
  const run = queue.then(job, job);
  queue = run.catch(() => {});
  return run;
}

export const runtimeVersion = (): string => ort.env.versions.web ?? ort.env.versions.common;

/** Settles threads and device before any weight is fetched, so a missing WebGPU fails fast. */
export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const device = options.device ?? "wasm";
  if (device !== "wasm" && device !== "webgpu") throw new InputError("device", `must be "wasm" or "webgpu", got ${JSON.stringify(device)}`);
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads > 0))
    throw new InputError("threads", `must be a positive integer, got ${options.threads}`);
  if (device === "webgpu") await checkWebGpu();
  let threads = options.threads ?? (globalThis.navigator?.hardwareConcurrency || 1);
  if (threads > 1 && !globalThis.crossOriginIsolated) {
    warn("bridgetower: this page is not cross-origin isolated, so onnxruntime-web runs on one thread; serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp for threads");
    threads = 1;
  }
  if (started === undefined) {
    ort.env.wasm.wasmPaths ??= new URL("./ort/", import.meta.url).href;
    ort.env.wasm.numThreads = threads;
    started = threads;
  } else if (threads !== started && options.threads !== undefined) {
    warn(`bridgetower: onnxruntime-web already runs with ${started} thread(s) in this page; threads: ${options.threads} is ignored`);
  }
  return { device, threads: started };
}

async function checkWebGpu(): Promise<void> {
  const gpu = (globalThis.navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } })?.gpu;
  if (!gpu) throw new InputError("device", "WebGPU is not available in this browser (no navigator.gpu): leave `device` unset to run on WebAssembly");
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (!adapter) throw new InputError("device", "WebGPU is present but offers no GPU adapter on this machine: leave `device` unset to run on WebAssembly");
}

export type Session = ort.InferenceSession;

export function createSession(rt: Runtime, graph: Graph, files: PartFile[]): Promise<Session> {
  return serial(() =>
    ort.InferenceSession.create(graph.toBytes(), {
      executionProviders: rt.device === "webgpu" ? ["webgpu", "wasm"] : ["wasm"],
      graphOptimizationLevel: "all",
      externalData: files.map((f) => ({ path: f.path, data: f.data })),
    }),
  );
}

/** Runs a session on plain tensors; outputs come back as plain tensors (copied out of onnxruntime). */
export async function runSession(s: Session, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const inputs: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds))
    inputs[name] = new ort.Tensor(t.data instanceof BigInt64Array ? "int64" : "float32", t.data, t.dims);
  const out = await serial(() => s.run(inputs));
  const result: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(out)) {
    result[name] = { data: t.data as Float32Array, dims: t.dims };
    t.dispose();
  }
  return result;
}

export function releaseSession(s: Session): Promise<void> {
  return serial(() => s.release());
}
