import { copyFileSync, existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LARGE_ITM_MLM_CONFIG, writeRandomCheckpoint } from "../../src/model/random.js";
import { fixture, repoRoot } from "./fixtures.js";

/** Parameter count of BridgeTower ITM + MLM at the large size (spec section 6.3), text pooler included. */
export const LARGE_PARAMS = 917_091_419;
export const LARGE_DIR = join(repoRoot, ".cache", "large-random");

/**
 * A complete model folder at the size of bridgetower-large-itm-mlm-gaudi: random weights (3.7 GB, written once),
 * the RoBERTa tokenizer files and the large checkpoints' 99-byte preprocessor config.
 * Returns the number of parameters written, or 0 when the checkpoint was already there.
 */
export async function ensureLargeModel(log: (s: string) => void = () => {}): Promise<number> {
  const file = join(LARGE_DIR, "model.safetensors");
  let written = 0;
  if (!existsSync(file) || statSync(file).size < LARGE_PARAMS * 4) {
    log("writing the full-size random checkpoint (3.7 GB, once)");
    written = await writeRandomCheckpoint(LARGE_DIR, LARGE_ITM_MLM_CONFIG);
  }
  for (const f of ["vocab.json", "merges.txt"]) copyFileSync(fixture("tokenizer", f), join(LARGE_DIR, f));
  writeFileSync(join(LARGE_DIR, "preprocessor_config.json"), JSON.stringify({ max_text_len: 50, size: 294, tokenizer: "roberta-large", vocab_size: 50265 }));
  return written;
}
