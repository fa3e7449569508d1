/** The model thread (model-thread.ts): loads the model and runs each batch the main thread sends. */
import { parentPort, workerData } from "node:worker_threads";
import { BridgeTowerModel, BridgeTowerProcessor } from "../index.js";
import { sendError, type FromWorker, type ModelThreadOptions, type ToWorker } from "./model-thread.js";
import { runners } from "./work.js";

const port = parentPort!;
const o = workerData as ModelThreadOptions;
const send = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

async function start(): Promise<void> {
  const onWarning = (message: string) => send({ type: "warning", message });
  const [processor, model] = await Promise.allSettled([
    BridgeTowerProcessor.fromPretrained(o.dir),
    BridgeTowerModel.fromPretrained(o.dir, { heads: "available", dtype: o.dtype, threads: o.threads, onWarning }),
  ]);
  if (model.status === "rejected") throw model.reason;
  if (processor.status === "rejected") {
    await model.value.dispose();
    throw processor.reason;
  }
  const work = runners(model.value, processor.value, o.maxBatchSize);
  port.on("message", (m: ToWorker) => {
    if (m.type === "dispose") {
      void model.value.dispose().finally(() => port.close());
      return;
    }
    work[m.kind](m.inputs).then(
      // Embedding rows are copies of their own: moved, not copied again.
      (outputs) => send({ type: "result", id: m.id, outputs }, outputs.flatMap((x) => (x instanceof Float32Array ? [x.buffer as ArrayBuffer] : []))),
      (e) => send({ type: "error", id: m.id, error: sendError(e) }),
    );
  });
  send({ type: "ready", heads: model.value.heads, config: model.value.config });
}

start().catch((e) => {
  send({ type: "failed", error: sendError(e) });
  port.close();
});
