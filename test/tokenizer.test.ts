// The 54 HF slow-tokenizer cases of fixtures/tokenizer/expected.json, through every construction path.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { RobertaTokenizer, type EncodeOptions } from "../src/tokenizer/index.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = process.env.BRIDGETOWER_FIXTURES ?? path.resolve(repoRoot, "../shared/fixtures");
const tokenizerDir = path.join(fixtures, "tokenizer");

interface Case {
  id: string;
  text?: string;
  texts?: string[];
  text_pair?: string;
  kwargs: Record<string, unknown>;
  input_ids: number[] | number[][];
  attention_mask: number[] | number[][];
  tokens?: string[];
  tokenize?: string[];
  decoded?: string;
  decoded_skip_special?: string;
}
const expected = JSON.parse(readFileSync(path.join(tokenizerDir, "expected.json"), "utf8")) as {
  vocab_size: number;
  special_ids: Record<"bos" | "pad" | "eos" | "unk" | "mask", number>;
  cases: Case[];
};
const vocabText = readFileSync(path.join(tokenizerDir, "vocab.json"), "utf8");
const mergesText = readFileSync(path.join(tokenizerDir, "merges.txt"), "utf8");
const vocab = JSON.parse(vocabText) as Record<string, number>;

/** The Hub's roberta tokenizer.json layout (Hugging Face tokenizers format), built from the two files. */
function buildTokenizerJson(): object {
  const merges = mergesText.split("\n").filter((l) => l !== "" && !l.startsWith("#version"));
  const specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content) => ({
      id: vocab[content],
      content,
      single_word: false,
      lstrip: content === "<mask>",
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: "RobertaProcessing",
      sep: ["</s>", vocab["</s>"]],
      cls: ["<s>", vocab["<s>"]],
      trim_offsets: true,
      add_prefix_space: false,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

function toOptions(c: Case): EncodeOptions {
  const { padding, truncation, max_length, pad_to_multiple_of, ...rest } = c.kwargs;
  assert.deepEqual(rest, {}, `${c.id}: unhandled kwargs`);
  return {
    padding: padding as EncodeOptions["padding"],
    truncation: truncation as EncodeOptions["truncation"],
    maxLength: max_length as number | undefined,
    padToMultipleOf: pad_to_multiple_of as number | undefined,
    textPair: c.text_pair,
  };
}

function checkCase(tok: RobertaTokenizer, c: Case): void {
  const enc = tok.encode(c.texts ?? c.text!, toOptions(c));
  // Single texts and pairs come back as one row.
  assert.deepEqual(c.texts ? enc.inputIds : enc.inputIds[0], c.input_ids, "input_ids");
  assert.deepEqual(c.texts ? enc.attentionMask : enc.attentionMask[0], c.attention_mask, "attention_mask");
  if (c.texts) assert.equal(enc.inputIds.length, c.texts.length);
  else assert.equal(enc.inputIds.length, 1);
  if (c.tokens) assert.deepEqual(tok.convertIdsToTokens(c.input_ids as number[]), c.tokens, "tokens");
  if (c.tokenize) assert.deepEqual(tok.tokenize(c.text!), c.tokenize, "tokenize");
  if (c.decoded !== undefined) assert.equal(tok.decode(c.input_ids as number[]), c.decoded, "decode");
  if (c.decoded_skip_special !== undefined) {
    assert.equal(tok.decode(c.input_ids as number[], { skipSpecialTokens: true }), c.decoded_skip_special, "decode skip");
  }
}

const tmp = await mkdtemp(path.join(os.tmpdir(), "bt-tokenizer-"));
after(() => rm(tmp, { recursive: true, force: true }));
// Hub checkpoints ship tokenizer.json + vocab.json (no merges.txt); tokenizer.json must win.
await writeFile(path.join(tmp, "tokenizer.json"), JSON.stringify(buildTokenizerJson()));
await writeFile(path.join(tmp, "vocab.json"), vocabText);

const paths: Array<[string, () => Promise<RobertaTokenizer>]> = [
  ["fromFolder(vocab.json + merges.txt)", () => RobertaTokenizer.fromFolder(tokenizerDir)],
  ["fromFolder(tokenizer.json)", () => RobertaTokenizer.fromFolder(tmp)],
  ["fromVocabMerges(lines)", async () => RobertaTokenizer.fromVocabMerges(vocab, mergesText.split("\n"))],
  ["fromTokenizerJson(object)", async () => RobertaTokenizer.fromTokenizerJson(buildTokenizerJson())],
];

for (const [name, load] of paths) {
  describe(name, async () => {
    const tok = await load();

    test("vocabulary size and special ids", () => {
      assert.equal(tok.vocabSize, expected.vocab_size);
      const ids = expected.special_ids;
      assert.deepEqual(
        [tok.bosTokenId, tok.padTokenId, tok.eosTokenId, tok.unkTokenId, tok.maskTokenId],
        [ids.bos, ids.pad, ids.eos, ids.unk, ids.mask],
      );
      assert.equal(tok.tokenToId("<mask>"), ids.mask);
      assert.equal(tok.idToToken(ids.mask), "<mask>");
      assert.equal(tok.tokenToId("Ġthe"), vocab["Ġthe"]);
      assert.equal(tok.idToToken(-1), undefined);
    });

    for (const c of expected.cases) test(c.id, () => checkCase(tok, c));

    test("batchDecode decodes each row", () => {
      const rows = expected.cases.filter((c) => c.decoded !== undefined).map((c) => c.input_ids as number[]);
      const want = expected.cases.filter((c) => c.decoded !== undefined).map((c) => c.decoded_skip_special);
      assert.deepEqual(tok.batchDecode(rows, { skipSpecialTokens: true }), want);
    });
  });
}

test("fixtures hold singles, batches and pairs", () => {
  const kinds = new Set(expected.cases.map((c) => (c.texts ? "batch" : c.text_pair !== undefined ? "pair" : "single")));
  assert.deepEqual([...kinds].sort(), ["batch", "pair", "single"]);
});
