// Throwaway check: does @huggingface/tokenizers reproduce the fixtures?
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";
const dir = "/work/shared/fixtures/tokenizer";
const vocab = JSON.parse(readFileSync(`${dir}/vocab.json`, "utf8"));
const merges = readFileSync(`${dir}/merges.txt`, "utf8").split("\n").filter((l) => l && !l.startsWith("#version"));
const specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];
const json = {
  version: "1.0", truncation: null, padding: null,
  added_tokens: specials.map((t) => ({ id: vocab[t], content: t, single_word: false, lstrip: t === "<mask>", rstrip: false, normalized: false, special: true })),
  normalizer: null,
  pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: { type: "RobertaProcessing", sep: ["</s>", 2], cls: ["<s>", 0], trim_offsets: true, add_prefix_space: false },
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges },
};
const tok = new Tokenizer(json, { clean_up_tokenization_spaces: true });
const exp = JSON.parse(readFileSync(`${dir}/expected.json`, "utf8"));
let bad = 0;
for (const c of exp.cases) {
  if (c.texts) continue;
  const e = tok.encode(c.text, c.text_pair ? { text_pair: c.text_pair } : {});
  const ids = e.ids;
  const okIds = JSON.stringify(ids) === JSON.stringify(c.input_ids);
  let okDec = true;
  if (c.decoded !== undefined) {
    okDec = tok.decode(c.input_ids) === c.decoded && tok.decode(c.input_ids, { skip_special_tokens: true }) === c.decoded_skip_special;
  }
  if (!okIds || !okDec) { bad++; console.log(c.id, okIds ? "" : `ids ${JSON.stringify(ids)} vs ${JSON.stringify(c.input_ids)}`, okDec ? "" : `dec ${JSON.stringify(tok.decode(c.input_ids))} / ${JSON.stringify(tok.decode(c.input_ids, { skip_special_tokens: true }))}`); }
}
console.log("bad", bad);
