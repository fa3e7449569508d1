// Untrusted input, HF option rules, file errors and properties of the RoBERTa tokenizer.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { TokenizerError } from "../src/errors.js";
import { cleanUpTokenization, RobertaTokenizer, type EncodeOptions } from "../src/tokenizer/index.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = process.env.BRIDGETOWER_FIXTURES ?? path.resolve(repoRoot, "../shared/fixtures");
const tok = await RobertaTokenizer.fromFolder(path.join(fixtures, "tokenizer"));

const ids = (text: string, options?: EncodeOptions): number[] => tok.encode(text, options).inputIds[0];
const exact = { skipSpecialTokens: true, cleanUpTokenizationSpaces: false };
const roundTrip = (text: string): string => tok.decode(ids(text), exact);
const { bosTokenId: bos, eosTokenId: eos, padTokenId: pad, maskTokenId: mask } = tok;
/** n content tokens: "x", "Ġx", "Ġx", ... */
const words = (n: number): string => Array(n).fill("x").join(" ");
const isTokenizerError = (input?: string) => (e: unknown) => {
  assert.ok(e instanceof TokenizerError, String(e));
  if (input !== undefined) assert.equal(e.input, input);
  return true;
};

describe("untrusted text", () => {
  test("empty string gives only <s> </s>", () => {
    assert.deepEqual(ids(""), [bos, eos]);
    assert.deepEqual(tok.tokenize(""), []);
    assert.equal(tok.decode([]), "");
  });

  test("lone surrogates are read as U+FFFD", () => {
    for (const s of ["a\uD800b", "\uDC00", "end\uD83D", "\uDE00\uD83D x"]) {
      assert.deepEqual(ids(s), ids(s.replace(/[\uD800-\uDFFF]/g, "\uFFFD")), JSON.stringify(s));
    }
    assert.equal(roundTrip("a\uD800b"), "a\uFFFDb");
    assert.equal(roundTrip("😀"), "😀"); // a valid pair is untouched
  });

  test("NUL and other control characters round-trip", () => {
    const s = "a\u0000b\u0000\u0001\u007f\u001b[0m";
    assert.equal(roundTrip(s), s);
    assert.deepEqual(tok.tokenize("\u0000"), ["\u0100"]); // byte 0 -> U+0100 in GPT-2's byte map
  });

  test("very long unbroken runs finish and round-trip", () => {
    for (const s of ["a".repeat(100_000), "ab".repeat(50_000), "1".repeat(100_000), "!".repeat(100_000), "é".repeat(50_000), "😀".repeat(30_000), " ".repeat(100_000) + "x"]) {
      const row = ids(s);
      assert.ok(row.length > 2 && row.length <= s.length + 2);
      assert.equal(tok.decode(row, exact), s, JSON.stringify(s.slice(0, 4)));
    }
    assert.deepEqual(ids(" \t\n".repeat(50_000) + "<mask>"), [bos, mask, eos]);
  });

  test("whitespace follows Python, not JS", () => {
    // str.rstrip() (used for <mask>'s lstrip) strips U+001C..U+001F and U+0085 but not U+FEFF.
    for (const ws of ["\u001c", "\u001f", "\u0085", "\u3000", "\u00a0"]) {
      assert.deepEqual(ids(`a${ws}<mask>`), ids("a<mask>"), JSON.stringify(ws));
    }
    assert.deepEqual(tok.tokenize("a\uFEFF<mask>"), [...tok.tokenize("a\uFEFF"), "<mask>"]);
    assert.notDeepEqual(ids("a\uFEFF<mask>"), ids("a<mask>"));
    // The regex module's \s is White_Space: U+0085 is whitespace, so " " and "\x85" are separate pieces.
    assert.deepEqual(tok.tokenize("x \u0085y"), [...tok.tokenize("x"), ...tok.tokenize(" "), ...tok.tokenize("\u0085"), ...tok.tokenize("y")]);
  });

  test("decode: bad bytes become U+FFFD, a BOM is kept, unknown ids throw", () => {
    assert.equal(tok.decode([tok.tokenToId("Ã")!]), "\uFFFD"); // lone UTF-8 lead byte 0xC3
    assert.equal(roundTrip("\uFEFFhi"), "\uFEFFhi");
    assert.throws(() => tok.decode([tok.vocabSize + 10]), isTokenizerError());
    assert.throws(() => tok.decode([1.5]), isTokenizerError());
    assert.throws(() => tok.convertIdsToTokens([-1]), isTokenizerError());
  });

  test("decode clean-up is on by default and can be turned off", () => {
    const row = ids("a , b . c ! don 't");
    assert.equal(tok.decode(row, { skipSpecialTokens: true }), "a, b. c! don 't");
    assert.equal(tok.decode(row, exact), "a , b . c ! don 't");
  });
});

describe("encode options (HF rules)", () => {
  test("a batch without padding stays ragged", () => {
    const enc = tok.encode(["a", words(5)]);
    assert.deepEqual(enc.inputIds.map((r) => r.length), [3, 7]);
    assert.deepEqual(enc.attentionMask, enc.inputIds.map((r) => r.map(() => 1)));
    assert.deepEqual(tok.encode([]), { inputIds: [], attentionMask: [] });
  });

  test("maxLength alone truncates; with padding=true and no truncation it is ignored", () => {
    assert.equal(ids(words(20), { maxLength: 8 }).length, 8);
    assert.equal(ids(words(20), { maxLength: 8, padding: true }).length, 22);
    assert.equal(ids(words(20), { maxLength: 8, padding: "do_not_pad" }).length, 22);
    assert.equal(ids(words(20), { maxLength: 8, truncation: false }).length, 22);
    assert.equal(ids(words(20), { maxLength: 0 }).length, 22); // HF: max_length 0 means no limit
  });

  test("without maxLength, max_length padding and truncation are dropped", () => {
    assert.equal(ids(words(3), { padding: "max_length" }).length, 5);
    assert.equal(ids(words(20), { truncation: true }).length, 22);
  });

  test("max_length padding pads short rows and leaves long ones", () => {
    const enc = tok.encode(["a", words(10)], { padding: "max_length", maxLength: 6, truncation: false });
    assert.deepEqual(enc.inputIds[0], [bos, ...ids("a").slice(1, -1), eos, pad, pad, pad]);
    assert.deepEqual(enc.attentionMask[0], [1, 1, 1, 0, 0, 0]);
    assert.equal(enc.inputIds[1].length, 12);
  });

  test("padToMultipleOf rounds the padded length up", () => {
    assert.equal(ids("a", { padding: true, padToMultipleOf: 8 }).length, 8);
    assert.equal(ids(words(9), { padding: true, padToMultipleOf: 8 }).length, 16);
    assert.equal(ids(words(9), { padToMultipleOf: 8 }).length, 11); // no padding asked
    assert.throws(() => ids("a", { padding: true, truncation: true, maxLength: 12, padToMultipleOf: 8 }), isTokenizerError());
  });

  test("pair truncation strategies", () => {
    const first = words(10);
    const second = words(4);
    const len = (o: EncodeOptions) => {
      const row = ids(first, { textPair: second, ...o });
      const sep = row.indexOf(eos);
      return [sep - 1, row.length - sep - 3];
    };
    assert.deepEqual(len({ truncation: "only_first", maxLength: 12 }), [4, 4]);
    assert.deepEqual(len({ truncation: "only_second", maxLength: 16 }), [10, 2]);
    assert.deepEqual(len({ truncation: "longest_first", maxLength: 12 }), [4, 4]);
    assert.deepEqual(len({ truncation: "longest_first", maxLength: 11 }), [4, 3]);
    // Where HF only logs an error and returns the text untruncated, we throw.
    assert.throws(() => ids(first, { textPair: second, truncation: "only_second", maxLength: 10 }), isTokenizerError());
    assert.throws(() => ids(first, { textPair: second, truncation: "only_first", maxLength: 4 }), isTokenizerError());
    assert.throws(() => ids("a", { truncation: true, maxLength: 1 }), isTokenizerError());
    // only_second on a single text: HF leaves it alone.
    assert.equal(ids(first, { truncation: "only_second", maxLength: 5 }).length, 12);
  });

  test("longest_first on pairs equals removing one token at a time from the longer (ties: second)", () => {
    fc.assert(
      fc.property(fc.nat(12), fc.nat(12), fc.integer({ min: 4, max: 30 }), (a, b, maxLength) => {
        let [x, y] = [a, b];
        for (let n = a + b + 4 - maxLength; n > 0; n--) {
          if (x > y) x--;
          else y--;
        }
        const row = ids(words(a), { textPair: words(b), truncation: true, maxLength });
        assert.equal(row.length, Math.max(0, x) + Math.max(0, y) + 4);
      }),
      { numRuns: 200 },
    );
  });

  test("addSpecialTokens false", () => {
    const a = tok.encode("a cat", { addSpecialTokens: false }).inputIds[0];
    assert.deepEqual(a, ids("a cat").slice(1, -1));
    assert.deepEqual(ids("a cat", { addSpecialTokens: false, textPair: "a cat" }), [...a, ...a]);
  });

  test("bad arguments throw TokenizerError", () => {
    const bad: Array<() => unknown> = [
      () => tok.encode(["a", "b"], { textPair: "c" }),
      () => tok.encode(["a", "b"], { textPair: ["c"] }),
      () => tok.encode("a", { textPair: ["c"] }),
      () => tok.encode("a", { padding: "left" as never }),
      () => tok.encode("a", { truncation: "yes" as never }),
      () => tok.encode("a", { maxLength: -1 }),
      () => tok.encode("a", { maxLength: 2.5 }),
      () => tok.encode("a", { padding: true, padToMultipleOf: 0 }),
      () => tok.encode(42 as never),
      () => tok.encode(["a", null] as never),
    ];
    for (const f of bad) assert.throws(f, isTokenizerError());
  });
});

describe("merge order", () => {
  // ("ab","a") ranks before ("a","b"): the slow tokenizer still merges every "a b" of a round before it
  // looks at the pairs that round created, so "abab" -> ab ab (a plain priority queue would give aba b).
  const vocab = { "<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, a: 5, b: 6, ab: 7, aba: 8 };
  const small = RobertaTokenizer.fromVocabMerges(vocab, "#version: 0.2\nab a\na b\n");

  test("each round merges all pairs of the lowest rank, left to right", () => {
    assert.deepEqual(small.tokenize("abab"), ["ab", "ab"]);
    assert.deepEqual(small.tokenize("aba"), ["aba"]);
  });

  test("symbols missing from the vocabulary map to <unk>", () => {
    assert.deepEqual(small.encode("c").inputIds[0], [0, 3, 2]);
  });
});

describe("loading errors", () => {
  const dirs: string[] = [];
  const folder = async (files: Record<string, string>): Promise<string> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "bt-tokenizer-bad-"));
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
    return dir;
  };
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
  const goodVocab = JSON.stringify({ "<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, a: 5 });

  test("missing files are named with the folder", async () => {
    const empty = await folder({});
    await assert.rejects(RobertaTokenizer.fromFolder(empty), (e: unknown) => {
      isTokenizerError(empty)(e);
      assert.match((e as Error).message, /vocab\.json and merges\.txt missing/);
      return true;
    });
    const onlyVocab = await folder({ "vocab.json": goodVocab });
    await assert.rejects(RobertaTokenizer.fromFolder(onlyVocab), (e: unknown) => {
      isTokenizerError(onlyVocab)(e);
      assert.match((e as Error).message, /and merges\.txt missing/);
      assert.doesNotMatch((e as Error).message, /vocab\.json and/);
      return true;
    });
    await assert.rejects(RobertaTokenizer.fromFolder(path.join(empty, "nope")), isTokenizerError());
  });

  test("malformed tokenizer.json is named", async () => {
    for (const text of ["{not json", "[]", JSON.stringify({ model: { type: "WordPiece", vocab: {} } }), JSON.stringify({ model: { type: "BPE", vocab: [], merges: [] } })]) {
      const dir = await folder({ "tokenizer.json": text });
      await assert.rejects(RobertaTokenizer.fromFolder(dir), isTokenizerError(path.join(dir, "tokenizer.json")));
    }
    assert.throws(() => RobertaTokenizer.fromTokenizerJson({ model: { type: "BPE", vocab: JSON.parse(goodVocab), merges: ["a"] } }, "x.json"), isTokenizerError("x.json"));
    assert.throws(() => RobertaTokenizer.fromTokenizerJson("{", "y.json"), isTokenizerError("y.json"));
  });

  test("malformed vocab.json / merges.txt are named", async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ "vocab.json": "{", "merges.txt": "" }, "vocab.json"],
      [{ "vocab.json": "[1,2]", "merges.txt": "" }, "vocab.json"],
      [{ "vocab.json": JSON.stringify({ "<s>": -1 }), "merges.txt": "" }, "vocab.json"],
      [{ "vocab.json": JSON.stringify({ a: 0 }), "merges.txt": "" }, "vocab.json"], // no special tokens
      [{ "vocab.json": goodVocab, "merges.txt": "#version: 0.2\na b c\n" }, "merges.txt"],
    ];
    for (const [files, culprit] of cases) {
      const dir = await folder(files);
      await assert.rejects(RobertaTokenizer.fromFolder(dir), isTokenizerError(path.join(dir, culprit)));
    }
    assert.throws(() => RobertaTokenizer.fromVocabMerges({ "<s>": "0" } as never, ""), isTokenizerError("vocab.json"));
  });
});

describe("properties", () => {
  const specialText = /<s>|<\/s>|<pad>|<unk>|<mask>/;

  test("any string (lone surrogates, special-token text, controls) encodes and decodes without throwing", () => {
    const unit = fc.oneof(
      fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom("<mask>", "<s>", "</s>", " ", "  ", "\n", "\u0085", "\uFEFF", "'s", "\u0000"),
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 40 }), (s) => {
        const row = ids(s);
        assert.equal(row[0], bos);
        tok.decode(row);
        tok.tokenize(s);
      }),
      { numRuns: 300 },
    );
  });

  test("decode(encode(s)) === s without special-token text or lone surrogates", () => {
    const text = fc.oneof(fc.string({ unit: "binary", maxLength: 60 }), fc.string({ unit: "grapheme", maxLength: 30 }), fc.string({ unit: "binary-ascii", maxLength: 60 }));
    fc.assert(
      fc.property(text, (s) => {
        fc.pre(!specialText.test(s));
        const row = ids(s);
        assert.equal(tok.decode(row, exact), s);
        assert.equal(tok.decode(row, { skipSpecialTokens: true }), cleanUpTokenization(s));
      }),
      { numRuns: 300 },
    );
  });
});
