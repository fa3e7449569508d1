/**
 * ITM, MLM and ITC from one loaded full-size checkpoint (BridgeTowerModel with heads), one JSON line on stdout:
 *   node --import tsx bench/multihead.ts DIR IMAGES_DIR
 * load_s from process start; one call of each head; peak RSS of the process.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { BridgeTowerModel, BridgeTowerProcessor, embed, fillMask, rankTexts } from "../dist/index.js";

const [dir, imagesDir] = process.argv.slice(2);
const [processor, model] = await Promise.all([
  BridgeTowerProcessor.fromPretrained(dir),
  BridgeTowerModel.fromPretrained(dir, { heads: ["itm", "mlm", "itc"], onWarning: () => {} }),
]);
const load_s = performance.now() / 1000;
const image = join(imagesDir, readdirSync(imagesDir).filter((f) => /\.(png|jpe?g)$/.test(f)).sort()[0]);
const t = performance.now();
await rankTexts(model.itm, processor, image, ["two cats sleeping on a pink couch"]);
await fillMask(model.mlm, processor, image, "two <mask> sleeping on a couch");
await embed(model.itc, processor, { texts: ["two cats sleeping on a pink couch"], images: [image] });
const heads_s = (performance.now() - t) / 1000;
console.log(JSON.stringify({ load_s, heads_s, peak_rss_bytes: process.resourceUsage().maxRSS * 1024 }));
await model.dispose();
process.exit(0);
