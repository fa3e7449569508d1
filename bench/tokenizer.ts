// Tokenizer throughput: node --import tsx bench/tokenizer.ts [fixturesDir]
import path from "node:path";
import { fileURLToPath } from "node:url";
import { RobertaTokenizer } from "../src/tokenizer/index.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = process.argv[2] ?? process.env.BRIDGETOWER_FIXTURES ?? path.resolve(repoRoot, "../shared/fixtures");

let t = performance.now();
const tok = await RobertaTokenizer.fromFolder(path.join(fixtures, "tokenizer"));
console.log(`load: ${(performance.now() - t).toFixed(0)} ms`);

const time = (label: string, run: () => number): void => {
  const start = performance.now();
  const tokens = run();
  const ms = performance.now() - start;
  console.log(`${label}: ${ms.toFixed(0)} ms, ${tokens} tokens`);
};
const captions = Array.from({ length: 10_000 }, (_, i) => `a photo of ${i} cats laying on a couch next to a remote control`);
time("10k captions, padded batch", () => tok.encode(captions, { padding: true }).inputIds.length * tok.encode(captions[0]).inputIds[0].length);
for (const [label, text] of [
  ["100k letters", "a".repeat(100_000)],
  ["1M letters", "a".repeat(1_000_000)],
  ["1M digits", "1".repeat(1_000_000)],
  ["1M spaces + word", " ".repeat(1_000_000) + "x"],
] as const) {
  time(label, () => tok.encode(text).inputIds[0].length);
}
