import { copyFileSync, existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LARGE_ITM_MLM_CONFIG, writeRandomCheckpoint } from "../../src/model/random.js";
import { fixture, repoRoot } from "./fixtures.js";

/** Parameter count of BridgeTower ITM + MLM at the large size (spec section 6.3), text pooler included. */
export const LARGE_PARAMS = 917_091_419;
export const LARGE_DIR = join(repoRoot, ".cache", "large-random");
/** The same with the contrastive heads too, like bridgetower-large-itm-mlm-itc (benchmarks only). */
export const LARGE_ITC_DIR = join(repoRoot, ".cache", "large-random-itc");

/**
 * A complete model folder at the size of bridgetower-large-itm-mlm-gaudi: random weights (3.7 GB, written once),
 * the RoBERTa tokenizer files and the large checkpoints' 99-byte preprocessor config.
 * Returns the number of parameters written, or 0 when the checkpoint was already there.
 */
export async function ensureLargeModel(log: (s: string) => void = () => {}, withItc = false): Promise<number> {
  const dir = withItc ? LARGE_ITC_DIR : LARGE_DIR;
  const file = join(dir, "model.safetensors");
  let written = 0;
  if (!existsSync(file) || statSync(file).size < LARGE_PARAMS * 4) {
    log(`writing the full-size random checkpoint${withItc ? " with ITC heads" : ""} (3.7 GB, once)`);
    written = withItc
      ? await writeRandomCheckpoint(dir, { ...LARGE_ITM_MLM_CONFIG, contrastive_hidden_size: 512, logit_scale_init_value: 2.6592 }, ["itm", "mlm", "itc"])
      : await writeRandomCheckpoint(dir, LARGE_ITM_MLM_CONFIG);
  }
  for (const f of ["vocab.json", "merges.txt"]) copyFileSync(fixture("tokenizer", f), join(dir, f));
  writeFileSync(join(dir, "preprocessor_config.json"), JSON.stringify({ max_text_len: 50, size: 294, tokenizer: "roberta-large", vocab_size: 50265 }));
  return written;
}
