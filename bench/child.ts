/**
 * One benchmark process: loads one model (cold start is part of the measurement) and times its jobs.
 * Prints one JSON line. Run by bench/run.ts; not meant to be run alone.
 *   node --import tsx bench/child.ts DIR itm|mlm fp32|int8 REPEATS
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
// The built package, as a user runs it (`npm run bench` builds it first).
import { BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM, BridgeTowerProcessor, fillMask, rankImages, rankTexts } from "../dist/index.js";

const [dir, task, dtype, repeatsArg, imagesDir] = process.argv.slice(2);
const repeats = Number(repeatsArg);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function time(fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    xs.push((performance.now() - t0) / 1000);
  }
  return median(xs);
}

const opts = { dtype: dtype as "fp32" | "int8", onWarning: () => {} };
const cls = task === "mlm" ? BridgeTowerForMaskedLM : BridgeTowerForImageAndTextRetrieval;
const [processor, model] = await Promise.all([BridgeTowerProcessor.fromPretrained(dir), cls.fromPretrained(dir, opts)]);
const load_s = performance.now() / 1000; // from process start: a cold start to a ready model

const images = readdirSync(imagesDir).filter((f) => /\.(png|jpe?g)$/.test(f)).sort().map((f) => join(imagesDir, f));
const caption = "two cats sleeping on a pink couch";
const texts = Array.from({ length: 10 }, (_, i) => `${caption} number ${i}`);
const result: Record<string, number> = { load_s };
// A pair is one image and one 12-token text (<s> + 10 + </s>), through the processor, like the reference timing.
const pairText = "a photo of two cats sleeping on a pink couch";
const one = await processor.call({ text: pairText, images: images[0] });
if (one.inputIds!.dims[1] !== 12) throw new Error(`pair text has ${one.inputIds!.dims[1]} tokens, expected 12`);
if (task === "itm") {
  const m = model as BridgeTowerForImageAndTextRetrieval;
  result.itm_pair_s = await time(() => m.run({ inputIds: one.inputIds!, attentionMask: one.attentionMask, pixelValues: one.pixelValues! }));
  if (dtype === "fp32") {
    result.rank10_texts_s = await time(() => rankTexts(m, processor, images[0], texts));
    result.rank10_images_s = await time(() => rankImages(m, processor, images.slice(0, 10), caption));
  }
} else {
  const m = model as BridgeTowerForMaskedLM;
  result.mlm_s = await time(() => m.run({ inputIds: one.inputIds!, attentionMask: one.attentionMask, pixelValues: one.pixelValues! }));
  result.fill_mask_s = await time(() => fillMask(m, processor, images[0], "a photo of two <mask> sleeping on a couch"));
}
result.peak_rss_bytes = process.resourceUsage().maxRSS * 1024;
await model.dispose();
console.log(JSON.stringify(result));
