import { InputError } from "../errors.js";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors.js";
import { BridgeTowerProcessor } from "../processor.js";
import { parse, type CommandSpec } from "./args.js";
import { list, positiveInt, required } from "./common.js";

export const preprocessSpec: CommandSpec = {
  name: "preprocess",
  usage: "bridgetower preprocess --model DIR [--image FILE]... [--text T]... [--text-pair T]... [--padding longest|max_length] [--truncation] [--max-length N] [--pad-to-multiple-of N] [--no-center-crop] --out OUT.safetensors",
  summary: "Run the processor (tokenizer + image processor) and write input_ids, attention_mask, pixel_values, pixel_mask.",
  options: {
    model: { type: "string", help: "model folder or Hub id (its preprocessor_config.json and tokenizer files)" },
    revision: { type: "string", help: "Hub revision (default main)" },
    image: { type: "string", multiple: true, help: "image file (several make a padded batch)" },
    text: { type: "string", multiple: true, help: "text (several make a batch)" },
    "text-pair": { type: "string", multiple: true, help: "second text of a pair, one per --text" },
    padding: { type: "string", help: "longest | max_length" },
    truncation: { type: "boolean", help: "truncate to --max-length" },
    "max-length": { type: "string", help: "length for padding/truncation" },
    "pad-to-multiple-of": { type: "string", help: "pad lengths to a multiple of N" },
    "no-center-crop": { type: "boolean", help: "skip the center crop (the image processor's direct-call path upstream)" },
    out: { type: "string", help: "safetensors file to write (atomically)" },
  },
};

export async function preprocess(argv: string[]): Promise<void> {
  const { values: o } = parse(preprocessSpec, argv);
  const model = required(o.model, "--model");
  const out = required(o.out, "--out");
  const texts = list(o.text);
  const pairs = list(o["text-pair"]);
  const images = list(o.image);
  if (texts.length + images.length === 0) throw new InputError("preprocess", "give at least one --image or --text");
  if (pairs.length && pairs.length !== texts.length) throw new InputError("--text-pair", `${pairs.length} pair text(s) for ${texts.length} --text`);
  const padding = o.padding as string | undefined;
  if (padding !== undefined && padding !== "longest" && padding !== "max_length")
    throw new InputError("--padding", `must be "longest" or "max_length", got "${padding}"`);
  const processor = await BridgeTowerProcessor.fromPretrained(model, { revision: o.revision as string | undefined });
  const r = await processor.call({
    text: texts.length ? texts : undefined,
    textPair: pairs.length ? pairs : undefined,
    images: images.length ? images : undefined,
    padding: padding as "longest" | "max_length" | undefined,
    truncation: Boolean(o.truncation) || undefined,
    maxLength: positiveInt(o["max-length"], "--max-length"),
    padToMultipleOf: positiveInt(o["pad-to-multiple-of"], "--pad-to-multiple-of"),
    doCenterCrop: !o["no-center-crop"],
  });
  const tensors: [string, TensorToWrite][] = [];
  if (r.inputIds) tensors.push(["input_ids", { dtype: "I64", shape: [...r.inputIds.dims], data: r.inputIds.data }]);
  if (r.attentionMask) tensors.push(["attention_mask", { dtype: "I64", shape: [...r.attentionMask.dims], data: r.attentionMask.data }]);
  if (r.pixelValues) tensors.push(["pixel_values", { dtype: "F32", shape: [...r.pixelValues.dims], data: r.pixelValues.data }]);
  if (r.pixelMask) tensors.push(["pixel_mask", { dtype: "I64", shape: [...r.pixelMask.dims], data: r.pixelMask.data }]);
  await writeSafetensors(out, tensors);
}
