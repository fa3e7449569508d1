import { InputError } from "../errors.js";
import { readAllTensors, writeSafetensors, type TensorToWrite } from "../io/safetensors.js";
import {
  BridgeTowerForContrastiveLearning, BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM, BridgeTowerModel,
} from "../model/bridgetower.js";
import type { Tensor } from "../model/tensor.js";
import { parse, type CommandSpec } from "./args.js";
import { positiveInt, required } from "./common.js";

export const forwardSpec: CommandSpec = {
  name: "forward",
  usage: "bridgetower forward --model DIR --task base|itm|mlm|itc --inputs IN.safetensors --out OUT.safetensors [--hidden-states] [--threads N]",
  summary: "Run the model on tensors (input_ids, attention_mask, pixel_values; pixel_mask and labels optional) and write every output under the fixtures' names.",
  options: {
    model: { type: "string", help: "model folder or Hub id" },
    task: { type: "string", help: "base | itm | mlm | itc (default base)" },
    inputs: { type: "string", help: "safetensors file with the input tensors" },
    out: { type: "string", help: "safetensors file to write (atomically)" },
    "hidden-states": { type: "boolean", help: "also write hidden_states.* and cross.*" },
    threads: { type: "string", help: "onnxruntime threads (default: all cores)" },
  },
};

const CLASSES = {
  base: BridgeTowerModel,
  itm: BridgeTowerForImageAndTextRetrieval,
  mlm: BridgeTowerForMaskedLM,
  itc: BridgeTowerForContrastiveLearning,
};

export async function forward(argv: string[]): Promise<void> {
  const { values: o } = parse(forwardSpec, argv);
  const model = required(o.model, "--model");
  const inputsPath = required(o.inputs, "--inputs");
  const outPath = required(o.out, "--out");
  const task = (o.task ?? "base") as keyof typeof CLASSES;
  if (!(task in CLASSES)) throw new InputError("--task", `unknown task "${task}" (base, itm, mlm, itc)`);
  const inputs: Map<string, Tensor> = await readAllTensors(inputsPath);
  const m = await CLASSES[task].fromPretrained(model, { threads: positiveInt(o.threads, "--threads"), onWarning: (w) => console.error(`bridgetower: warning: ${w}`) });
  try {
    const out = await m.run(
      {
        inputIds: need(inputs, "input_ids", inputsPath) as Tensor<BigInt64Array>,
        attentionMask: inputs.get("attention_mask") as Tensor<BigInt64Array> | undefined,
        pixelValues: need(inputs, "pixel_values", inputsPath) as Tensor<Float32Array>,
        pixelMask: inputs.get("pixel_mask"),
        labels: (inputs.get("labels") ?? inputs.get(`${task}.labels`)) as Tensor<BigInt64Array> | undefined,
      },
      Boolean(o["hidden-states"]),
    );
    const tensors: [string, TensorToWrite][] = Object.entries(out).map(([k, t]) => [
      k,
      { dtype: t.data instanceof BigInt64Array ? "I64" : "F32", shape: [...t.dims], data: t.data },
    ]);
    await writeSafetensors(outPath, tensors);
  } finally {
    await m.dispose();
  }
}

function need(m: Map<string, Tensor>, name: string, file: string): Tensor {
  const t = m.get(name);
  if (!t) throw new InputError(file, `has no tensor named "${name}"`);
  return t;
}
