/** Parsing and validation of vocab.json, merges.txt and tokenizer.json into one plain description. */
import { join, readFile } from "../io/local-files.js";
import { TokenizerError } from "../errors.js";

export interface AddedToken {
  content: string;
  id: number;
  /** Swallow all whitespace just left of the token (RoBERTa's `<mask>`). */
  lstrip: boolean;
  rstrip: boolean;
  special: boolean;
}

export interface TokenizerFiles {
  vocab: Map<string, number>;
  /** `"left right"` -> rank. */
  ranks: Map<string, number>;
  addedTokens: AddedToken[];
  /** Ids RobertaProcessing wraps sequences with, when tokenizer.json names them. */
  clsId?: number;
  sepId?: number;
}

/** The slow RobertaTokenizer's special tokens; only `<mask>` strips (whitespace to its left). */
export const ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] as const;

export function parseVocab(value: unknown, source: string): Map<string, number> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TokenizerError(source, "vocabulary must be a JSON object of token -> id");
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(value)) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      throw new TokenizerError(source, `id of token ${JSON.stringify(token)} is not a non-negative integer`);
    }
    vocab.set(token, id as number);
  }
  if (vocab.size === 0) throw new TokenizerError(source, "vocabulary is empty");
  return vocab;
}

/** merges.txt text (or its lines, or tokenizer.json's list): an optional `#version` line, then `left right` per line. */
export function parseMerges(merges: unknown, source: string): Map<string, number> {
  let lines: unknown[];
  if (typeof merges === "string") lines = merges.split(/\r?\n/);
  else if (Array.isArray(merges)) lines = merges;
  else throw new TokenizerError(source, "merges must be text or a list");
  const ranks = new Map<string, number>();
  let rank = 0;
  lines.forEach((line, i) => {
    let pair: unknown[];
    if (typeof line === "string") {
      const text = line.trim();
      if (text === "" || (i === 0 && text.startsWith("#version"))) return;
      pair = text.split(/\s+/);
    } else if (Array.isArray(line)) {
      pair = line;
    } else {
      throw new TokenizerError(source, `merge ${i + 1} is neither "left right" nor [left, right]`);
    }
    if (pair.length !== 2 || pair.some((s) => typeof s !== "string" || s === "")) {
      throw new TokenizerError(source, `merge on line ${i + 1} is not two symbols: ${JSON.stringify(line).slice(0, 80)}`);
    }
    // Later duplicates win, as in the slow tokenizer's dict.
    ranks.set(`${pair[0]} ${pair[1]}`, rank++);
  });
  return ranks;
}

/** Defaults of the slow RobertaTokenizer when only vocab.json + merges.txt exist. */
export function fromVocabMergesFiles(vocab: unknown, merges: unknown, vocabSource: string, mergesSource: string): TokenizerFiles {
  const v = parseVocab(vocab, vocabSource);
  const addedTokens = ROBERTA_SPECIALS.map((content) => {
    const id = v.get(content);
    if (id === undefined) throw new TokenizerError(vocabSource, `vocabulary lacks the special token ${content}`);
    return { content, id, lstrip: content === "<mask>", rstrip: false, special: true };
  });
  return { vocab: v, ranks: parseMerges(merges, mergesSource), addedTokens };
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * A Hugging Face tokenizers `tokenizer.json` with a byte-level BPE model. The pre-tokenizer's add_prefix_space
 * is ignored: RobertaTokenizerFast overrides it with its own default (false) when loading.
 */
export function fromTokenizerJsonValue(json: unknown, source: string): TokenizerFiles {
  if (!isObject(json) || !isObject(json.model)) throw new TokenizerError(source, "not a tokenizer.json (no model object)");
  const model = json.model;
  if (model.type !== undefined && model.type !== "BPE") {
    throw new TokenizerError(source, `model type ${JSON.stringify(model.type)} is not supported (BPE only)`);
  }
  if (json.normalizer != null) throw new TokenizerError(source, "a normalizer is not supported (RoBERTa has none)");
  const pre = json.pre_tokenizer;
  if (pre != null && !(isObject(pre) && pre.type === "ByteLevel")) {
    throw new TokenizerError(source, "only the ByteLevel pre-tokenizer is supported");
  }
  const vocab = parseVocab(model.vocab, source);
  const ranks = parseMerges(model.merges ?? [], source);

  const addedTokens: AddedToken[] = [];
  const listed = json.added_tokens ?? [];
  if (!Array.isArray(listed)) throw new TokenizerError(source, "added_tokens must be a list");
  for (const t of listed) {
    if (!isObject(t) || typeof t.content !== "string" || t.content === "" || !Number.isSafeInteger(t.id) || (t.id as number) < 0) {
      throw new TokenizerError(source, `malformed added token ${JSON.stringify(t).slice(0, 80)}`);
    }
    addedTokens.push({ content: t.content, id: t.id as number, lstrip: t.lstrip === true, rstrip: t.rstrip === true, special: t.special === true });
  }
  // Specials missing from added_tokens still work as in the slow tokenizer, if the vocabulary has them.
  for (const content of ROBERTA_SPECIALS) {
    if (addedTokens.some((t) => t.content === content)) continue;
    const id = vocab.get(content);
    if (id === undefined) throw new TokenizerError(source, `neither added_tokens nor the vocabulary has ${content}`);
    addedTokens.push({ content, id, lstrip: content === "<mask>", rstrip: false, special: true });
  }

  const files: TokenizerFiles = { vocab, ranks, addedTokens };
  const post = json.post_processor;
  if (isObject(post) && post.type === "RobertaProcessing") {
    files.clsId = processorId(post.cls, source);
    files.sepId = processorId(post.sep, source);
  }
  return files;
}

function processorId(entry: unknown, source: string): number {
  if (Array.isArray(entry) && Number.isSafeInteger(entry[1]) && entry[1] >= 0) return entry[1] as number;
  throw new TokenizerError(source, `post_processor token ${JSON.stringify(entry)} is not [token, id]`);
}

/** Reads `tokenizer.json` if the folder has it, else `vocab.json` + `merges.txt`. */
export async function readTokenizerFolder(dir: string): Promise<TokenizerFiles> {
  const jsonPath = join(dir, "tokenizer.json");
  const tokenizerJson = await readIfPresent(jsonPath);
  if (tokenizerJson !== undefined) return fromTokenizerJsonValue(parseJson(tokenizerJson, jsonPath), jsonPath);

  const vocabPath = join(dir, "vocab.json");
  const mergesPath = join(dir, "merges.txt");
  const [vocab, merges] = await Promise.all([readIfPresent(vocabPath), readIfPresent(mergesPath)]);
  if (vocab === undefined || merges === undefined) {
    const missing = [vocab === undefined ? "vocab.json" : "", merges === undefined ? "merges.txt" : ""].filter(Boolean);
    throw new TokenizerError(dir, `no tokenizer.json, and ${missing.join(" and ")} missing (need tokenizer.json, or vocab.json + merges.txt)`);
  }
  return fromVocabMergesFiles(parseJson(vocab, vocabPath), merges, vocabPath, mergesPath);
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new TokenizerError(path, `cannot read (${code ?? String(e)})`);
  }
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(source, `malformed JSON: ${(e as Error).message}`);
  }
}
