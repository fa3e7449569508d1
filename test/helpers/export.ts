/** Running exported graphs the way a user would: onnxruntime on the file alone, no project code in between. */
import { existsSync, readFileSync } from "node:fs";
import ort from "onnxruntime-node";
import type { Tensor } from "../../src/model/tensor.js";
import { fixture, readAll } from "./fixtures.js";

export type Feeds = Record<string, Tensor>;

/** A fresh onnxruntime-node session from the path alone (default options), run once. */
export async function runFile(path: string, feeds: Feeds, options?: ort.InferenceSession.SessionOptions): Promise<Record<string, Tensor>> {
  const s = await ort.InferenceSession.create(path, options);
  try {
    return toTensors(await s.run(ortFeeds(ort, s.inputNames, feeds)));
  } finally {
    await s.release();
  }
}

/** Feeds as tensors of the given onnxruntime package (node or web), for the inputs the session lists. */
export function ortFeeds(rt: { Tensor: typeof ort.Tensor }, names: readonly string[], feeds: Feeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const n of names) {
    const t = feeds[n];
    if (!t) throw new Error(`no feed for ${n}`);
    out[n] = new rt.Tensor(t.data instanceof BigInt64Array ? "int64" : "float32", t.data as Float32Array, t.dims as number[]);
  }
  return out;
}

export function toTensors(out: Record<string, { data: unknown; dims: readonly number[] }>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: v.data as Float32Array, dims: [...v.dims] }]));
}

const HEAD_OF_CLASS: Record<string, string> = {
  BridgeTowerForImageAndTextRetrieval: "itm", BridgeTowerForMaskedLM: "mlm", BridgeTowerForContrastiveLearning: "itc",
};

/** Heads a fixture case has expected outputs for, minus those that fail upstream (`expected_error.json`). */
export function caseHeads(name: string, expected: Map<string, Tensor>): ("itm" | "mlm" | "itc")[] {
  const p = fixture(name, "expected_error.json");
  const failing = existsSync(p) ? Object.keys(JSON.parse(readFileSync(p, "utf8")).errors ?? {}).map((c) => HEAD_OF_CLASS[c]) : [];
  return (["itm", "mlm", "itc"] as const).filter((h) => [...expected.keys()].some((k) => k.startsWith(`${h}.`)) && !failing.includes(h));
}

/** e2e-fullvocab stores each job's processed inputs and results under its own prefix. */
const E2E_JOBS = {
  itm: { prefix: "itm.batch.", outputs: { "itm.logits": "logits" } },
  mlm: { prefix: "fillmask.", outputs: { "mlm.logits": "logits" } },
  itc: {
    prefix: "contrastive.",
    outputs: {
      "itc.text_embeds": "text_embeds", "itc.image_embeds": "image_embeds", "itc.cross_embeds": "cross_embeds", "itc.logits": "logits",
      "itc.logit_scale": "logit_scale", "itc.logit_scale_exp": "logit_scale_exp", "itc.logits_text_to_image": "sim_text_image_scaled",
    },
  },
} as const;

/** Per head: the inputs and the expected outputs under the graphs' names. */
export async function caseJobs(name: string): Promise<Map<"itm" | "mlm" | "itc", { feeds: Feeds; expected: Map<string, Tensor> }>> {
  const expected = await readAll(fixture(name, "expected.safetensors"));
  const jobs = new Map<"itm" | "mlm" | "itc", { feeds: Feeds; expected: Map<string, Tensor> }>();
  if (name === "e2e-fullvocab") {
    for (const [h, job] of Object.entries(E2E_JOBS) as [keyof typeof E2E_JOBS, (typeof E2E_JOBS)[keyof typeof E2E_JOBS]][]) {
      const feeds: Feeds = {};
      for (const i of ["input_ids", "attention_mask", "pixel_values"]) feeds[i] = expected.get(job.prefix + i)!;
      jobs.set(h, { feeds, expected: new Map(Object.entries(job.outputs).map(([k, v]) => [k, expected.get(job.prefix + v)!])) });
    }
    return jobs;
  }
  const inputs = await readAll(fixture(name, "inputs.safetensors"));
  const feeds = Object.fromEntries(inputs);
  for (const h of caseHeads(name, expected)) jobs.set(h, { feeds, expected });
  return jobs;
}
