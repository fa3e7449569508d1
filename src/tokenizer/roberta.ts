/*
 * RoBERTa byte-level BPE, identical to transformers 4.39.3's slow RobertaTokenizer with the defaults BridgeTower
 * checkpoints get (no tokenizer_config.json).
 *
 * Not built on @huggingface/tokenizers 0.2.0: it reproduced the fixtures' ids and decodes, but it has no
 * batching, padding or truncation (pair-01 came out untruncated), and it differs from Python on whitespace:
 * its pre-tokenizer \s and `<mask>`'s lstrip use JS whitespace (U+FEFF in, U+0085 and U+001C..U+001F out), so
 * "a\x1c<mask>", "a\x85<mask>", "a\uFEFF<mask>" and "x \x85y" get other ids; decode([]) throws.
 */
import { TokenizerError } from "../errors.js";
import { BytePairEncoder, CHAR_TO_BYTE, preTokenize, toByteChars } from "./bpe.js";
import { fromTokenizerJsonValue, fromVocabMergesFiles, readTokenizerFolder, type AddedToken, type TokenizerFiles } from "./files.js";
import { pad, resolvePlan, truncate, type EncodeOptions, type Encoding } from "./options.js";

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** HF's clean_up_tokenization_spaces, default true (" ." -> ".", " n't" -> "n't", ...). */
  cleanUpTokenizationSpaces?: boolean;
}

export class RobertaTokenizer {
  /** Size of the BPE vocabulary (50265 for RoBERTa). */
  readonly vocabSize: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly unkTokenId: number;
  readonly padTokenId: number;
  readonly maskTokenId: number;
  private readonly vocab: Map<string, number>;
  private readonly idToTokenMap = new Map<number, string>();
  private readonly bpe: BytePairEncoder;
  private readonly added = new Map<string, AddedToken>();
  private readonly addedPattern: RegExp | undefined;
  private readonly specialIds = new Set<number>();
  private readonly clsId: number;
  private readonly sepId: number;

  private constructor(files: TokenizerFiles) {
    this.vocab = files.vocab;
    this.vocabSize = files.vocab.size;
    for (const [token, id] of files.vocab) this.idToTokenMap.set(id, token);
    for (const t of files.addedTokens) {
      this.added.set(t.content, t);
      this.idToTokenMap.set(t.id, t.content);
      if (t.special) this.specialIds.add(t.id);
    }
    const idOf = (content: string): number => this.added.get(content)!.id; // files.ts guarantees the specials
    this.bosTokenId = idOf("<s>");
    this.eosTokenId = idOf("</s>");
    this.unkTokenId = idOf("<unk>");
    this.padTokenId = idOf("<pad>");
    this.maskTokenId = idOf("<mask>");
    this.clsId = files.clsId ?? this.bosTokenId;
    this.sepId = files.sepId ?? this.eosTokenId;
    this.bpe = new BytePairEncoder(files.ranks);
    // Longest first, so the leftmost match is also the longest one (as HF's trie split).
    const contents = [...this.added.keys()].sort((a, b) => b.length - a.length);
    this.addedPattern = contents.length ? new RegExp(`(${contents.map(escapeRegExp).join("|")})`) : undefined;
  }

  /** `tokenizer.json` if the folder has one, else `vocab.json` + `merges.txt`. */
  static async fromFolder(dir: string): Promise<RobertaTokenizer> {
    return new RobertaTokenizer(await readTokenizerFolder(dir));
  }

  /** The contents of vocab.json (parsed) and merges.txt (text or lines). */
  static fromVocabMerges(vocab: Record<string, number>, merges: string[] | string): RobertaTokenizer {
    return new RobertaTokenizer(fromVocabMergesFiles(vocab, merges, "vocab.json", "merges.txt"));
  }

  /** A parsed Hugging Face tokenizer.json (or its text); `source` names it in errors. */
  static fromTokenizerJson(json: unknown, source = "tokenizer.json"): RobertaTokenizer {
    if (typeof json === "string") {
      try {
        json = JSON.parse(json);
      } catch (e) {
        throw new TokenizerError(source, `malformed JSON: ${(e as Error).message}`);
      }
    }
    return new RobertaTokenizer(fromTokenizerJsonValue(json, source));
  }

  /**
   * Token strings of one text, without `<s>`/`</s>`. Lone UTF-16 surrogates have no UTF-8 form (Python would
   * raise on them), so they are read as U+FFFD, as TextEncoder does.
   */
  tokenize(text: string): string[] {
    if (typeof text !== "string") throw new TokenizerError("", `text must be a string, got ${typeof text}`);
    const out: string[] = [];
    for (const chunk of this.splitAddedTokens(toWellFormed(text))) {
      if (typeof chunk !== "string") {
        out.push(chunk.content);
        continue;
      }
      for (const piece of preTokenize(chunk)) {
        for (const symbol of this.bpe.encode(toByteChars(piece))) out.push(symbol);
      }
    }
    return out;
  }

  /** Like HF `tokenizer(text, text_pair=..., **kwargs)`; a single text gives one row. */
  encode(text: string | string[], options: EncodeOptions = {}): Encoding {
    const plan = resolvePlan(options);
    const addSpecial = options.addSpecialTokens ?? true;
    const texts = Array.isArray(text) ? text : [text];
    const pairs = this.pairsFor(text, options.textPair);
    const rows = texts.map((t, i) => {
      const first = this.idsOf(t);
      const second = pairs === undefined ? undefined : this.idsOf(pairs[i]);
      const numSpecial = addSpecial ? (second ? 4 : 2) : 0;
      const [a, b] = truncate(first, second, numSpecial, plan);
      if (!addSpecial) return b ? [...a, ...b] : a;
      return b ? [this.clsId, ...a, this.sepId, this.sepId, ...b, this.sepId] : [this.clsId, ...a, this.sepId];
    });
    return pad(rows, plan, this.padTokenId);
  }

  convertIdsToTokens(ids: number[]): string[] {
    return ids.map((id) => this.tokenOf(id));
  }

  /** HF slow decode: tokens joined, bytes decoded as UTF-8 with errors="replace", then clean-up. */
  decode(ids: number[], options: DecodeOptions = {}): string {
    let joined = "";
    for (const id of ids) {
      const token = this.tokenOf(id);
      if (!(options.skipSpecialTokens && this.specialIds.has(id))) joined += token;
    }
    const bytes: number[] = [];
    for (const ch of joined) {
      const b = CHAR_TO_BYTE.get(ch);
      // A character outside the byte alphabet can only come from an added token: keep it as it is.
      if (b !== undefined) bytes.push(b);
      else for (const x of utf8.encode(ch)) bytes.push(x);
    }
    const text = utf8Decoder.decode(Uint8Array.from(bytes));
    return (options.cleanUpTokenizationSpaces ?? true) ? cleanUpTokenization(text) : text;
  }

  batchDecode(ids: number[][], options: DecodeOptions = {}): string[] {
    return ids.map((row) => this.decode(row, options));
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenMap.get(id);
  }

  tokenToId(token: string): number | undefined {
    return this.added.get(token)?.id ?? this.vocab.get(token);
  }

  private idsOf(text: string): number[] {
    return this.tokenize(text).map((t) => this.added.get(t)?.id ?? this.vocab.get(t) ?? this.unkTokenId);
  }

  private tokenOf(id: number): string {
    const token = Number.isSafeInteger(id) ? this.idToTokenMap.get(id) : undefined;
    if (token === undefined) throw new TokenizerError("", `unknown token id ${id}`);
    return token;
  }

  /** HF's batch rules: a batch needs a same-length list of pairs, a single text a single pair. */
  private pairsFor(text: string | string[], textPair: string | string[] | undefined): string[] | undefined {
    if (Array.isArray(text)) {
      if (textPair === undefined) return undefined;
      if (!Array.isArray(textPair) || textPair.length !== text.length) {
        throw new TokenizerError("", `textPair must be a list as long as the batch (${text.length})`);
      }
      return textPair;
    }
    if (Array.isArray(textPair)) throw new TokenizerError("", "a single text takes a single textPair string");
    return textPair === undefined ? undefined : [textPair];
  }

  /**
   * HF `tokenize()`: split out added tokens, then let each one strip whitespace from its neighbours
   * (`<mask>` eats all whitespace to its left), dropping pieces left empty.
   */
  private splitAddedTokens(text: string): Array<string | AddedToken> {
    const parts = this.addedPattern ? text.split(this.addedPattern) : [text];
    // Odd indices are the captured added tokens.
    const chunks: Array<string | AddedToken> = [];
    parts.forEach((p, i) => {
      if (i % 2 === 1) chunks.push(this.added.get(p)!);
      else if (p !== "") chunks.push(p);
    });
    chunks.forEach((c, i) => {
      if (typeof c === "string") return;
      const left = chunks[i - 1];
      const right = chunks[i + 1];
      if (c.rstrip && typeof right === "string") chunks[i + 1] = pyLstrip(right);
      if (c.lstrip && typeof left === "string") chunks[i - 1] = pyRstrip(left);
    });
    return chunks.filter((c) => c !== "");
  }
}

const utf8 = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF, as Python's bytes.decode("utf-8") does.
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** PreTrainedTokenizerBase.clean_up_tokenization. */
export function cleanUpTokenization(s: string): string {
  return s
    .replaceAll(" .", ".")
    .replaceAll(" ?", "?")
    .replaceAll(" !", "!")
    .replaceAll(" ,", ",")
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

function toWellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Python's str.isspace, which str.strip uses (wider than JS trim: U+001C..U+001F, U+0085; not U+FEFF). */
function isPySpace(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) ||
    (c >= 0x1c && c <= 0x20) ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

// Loops, not /\s+$/: that regex is quadratic on long whitespace runs followed by text.
function pyRstrip(s: string): string {
  let end = s.length;
  while (end > 0 && isPySpace(s.charCodeAt(end - 1))) end--;
  return s.slice(0, end);
}

function pyLstrip(s: string): string {
  let start = 0;
  while (start < s.length && isPySpace(s.charCodeAt(start))) start++;
  return s.slice(start);
}
