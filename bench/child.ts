/**
 * One benchmark process: loads one model (cold start is part of the measurement), then answers bench/run.ts on
 * stdin, one JSON line on stdout per request: "pair" times one image+text forward (so run.ts can alternate it
 * with PyTorch's), "rest" times the other jobs and reports peak RSS, then exits. Not meant to be run alone.
 *   node --import tsx bench/child.ts DIR itm|mlm fp32|int8 REPEATS IMAGES_DIR
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
// The built package, as a user runs it (`npm run bench` builds it first).
import { BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM, BridgeTowerProcessor, fillMask, rankImages, rankTexts } from "../dist/index.js";
import { median } from "./lines.js";

const [dir, task, dtype, repeatsArg, imagesDir] = process.argv.slice(2);
const repeats = Number(repeatsArg);
const say = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}
async function time(fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < repeats; i++) xs.push(await seconds(fn));
  return median(xs);
}

const opts = { dtype: dtype as "fp32" | "int8", onWarning: () => {} };
const cls = task === "mlm" ? BridgeTowerForMaskedLM : BridgeTowerForImageAndTextRetrieval;
const [processor, model] = await Promise.all([BridgeTowerProcessor.fromPretrained(dir), cls.fromPretrained(dir, opts)]);
const load_s = performance.now() / 1000; // from process start: a cold start to a ready model

const images = readdirSync(imagesDir).filter((f) => /\.(png|jpe?g)$/.test(f)).sort().map((f) => join(imagesDir, f));
const caption = "two cats sleeping on a pink couch";
const texts = Array.from({ length: 10 }, (_, i) => `${caption} number ${i}`);
// A pair is one image and one 12-token text (<s> + 10 + </s>), through the processor, like the reference timing.
const one = await processor.call({ text: "a photo of two cats sleeping on a pink couch", images: images[0] });
if (one.inputIds!.dims[1] !== 12) throw new Error(`pair text has ${one.inputIds!.dims[1]} tokens, expected 12`);
const pair = () => model.run({ inputIds: one.inputIds!, attentionMask: one.attentionMask, pixelValues: one.pixelValues! });

async function rest(): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  if (task === "itm" && dtype === "fp32") {
    const m = model as BridgeTowerForImageAndTextRetrieval;
    result.rank10_texts_s = await time(() => rankTexts(m, processor, images[0], texts));
    result.rank10_images_s = await time(() => rankImages(m, processor, images.slice(0, 10), caption));
  } else if (task === "mlm") {
    result.fill_mask_s = await time(() => fillMask(model as BridgeTowerForMaskedLM, processor, images[0], "a photo of two <mask> sleeping on a couch"));
  }
  result.peak_rss_bytes = process.resourceUsage().maxRSS * 1024;
  return result;
}

await pair(); // warm-up
say({ ready: true, load_s });
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "pair") say({ s: await seconds(pair) });
  else if (line === "rest") {
    say(await rest());
    break;
  }
}
await model.dispose();
process.exit(0);
