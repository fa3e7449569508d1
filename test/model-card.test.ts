/**
 * The two examples of the model card of BridgeTower/bridgetower-large-itm-mlm-gaudi, translated as in the README,
 * run on fixtures/e2e-fullvocab and compared with its expected.json: the ITM score `logits[0, 1]` per text and the
 * MLM printout `processor.decode(logits.argmax(-1))`. Then the same through the CLI (`itm --sort logit`,
 * `fill-mask --all-positions`). Expected values are read from the fixture, never copied here.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BridgeTowerForImageAndTextRetrieval, BridgeTowerForMaskedLM, BridgeTowerProcessor, fillMask, InputError, rankTexts } from "../src/index.js";
import { fixture, repoRoot } from "./helpers/fixtures.js";

const DIR = fixture("e2e-fullvocab");
const expected = JSON.parse(readFileSync(join(DIR, "expected.json"), "utf8"));
const ITM = expected.itm;
const MLM = expected.fill_mask;
const image = (name: string) => join(DIR, "images", name);
const near = (a: number, b: number, tol = 1e-4) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
/** The card's score of each text, by text. */
const cardScore = (text: string): number => ITM.per_text.find((p: { text: string }) => p.text === text).score_logit1;

describe("the model card's examples through the library", () => {
  it("ITM: the card's loop gives logits[0, 1] per text", async () => {
    const texts: string[] = ITM.texts;
    const processor = await BridgeTowerProcessor.fromPretrained(DIR);
    const model = await BridgeTowerForImageAndTextRetrieval.fromPretrained(DIR, { onWarning: () => {} });
    try {
      // As in the README, with the fixture's image and texts.
      const scores: Record<string, number> = {};
      for (const text of texts) {
        const encoding = await processor.call({ images: image(ITM.image), text });
        const outputs = await model.run({ inputIds: encoding.inputIds!, attentionMask: encoding.attentionMask, pixelValues: encoding.pixelValues! });
        scores[text] = Number(outputs["itm.logits"].data[1]);
      }
      assert.deepEqual(Object.keys(scores), texts);
      for (const text of texts) near(scores[text], cardScore(text));

      // The one-call form ranks by the same score with sortBy "logit"; the default stays the probability.
      const byLogit = await rankTexts(model, processor, image(ITM.image), texts, { sortBy: "logit" });
      assert.deepEqual(byLogit.map((r) => r.text), ITM.ranking_by_score);
      for (const r of byLogit) near(r.logits[1], cardScore(r.text));
      const byProbability = await rankTexts(model, processor, image(ITM.image), texts);
      assert.deepEqual(byProbability.map((r) => r.text), ITM.ranking_by_probability);
      await assert.rejects(rankTexts(model, processor, image(ITM.image), texts, { sortBy: "score" as never }), (e) => e instanceof InputError && /sortBy.*probability or logit/.test(e.message));
    } finally {
      await model.dispose();
    }
  });

  it("MLM: fillMask's decoded is the card's printout, from one forward pass", async () => {
    const processor = await BridgeTowerProcessor.fromPretrained(DIR);
    const model = await BridgeTowerForMaskedLM.fromPretrained(DIR, { onWarning: () => {} });
    try {
      let forwards = 0;
      const run = model.run.bind(model);
      model.run = (...a) => (forwards++, run(...a));
      // As in the README, with the fixture's image and text.
      const { decoded: results } = await fillMask(model, processor, image(MLM.image), MLM.text);
      assert.equal(results, MLM.decoded_argmax);
      assert.equal(forwards, 1);
    } finally {
      await model.dispose();
    }
  });
});

const bin = join(repoRoot, "bin", "bridgetower");
/** Runs a command on the fixture folder and returns its stdout, asserting success. */
function ok(args: string[]): string {
  const r = spawnSync(bin, [...args, "--model", DIR, "--threads", "1"], { encoding: "utf8", timeout: 120_000, env: { ...process.env, HF_HUB_OFFLINE: "1" } });
  assert.equal(r.status, 0, `exit code (stderr: ${r.stderr})`);
  return r.stdout;
}

describe("the model card's examples through the CLI", () => {
  const itmArgs = ["itm", image(ITM.image), ...ITM.texts];

  it("itm --sort logit ranks by the card's score and prints it", () => {
    const lines = ok([...itmArgs, "--sort", "logit"]).trimEnd().split("\n");
    assert.match(lines[0], /^rank\s+score\s+logit\s+text$/);
    const rows = lines.slice(1).map((l) => l.match(/^(\d+)\s+(\S+)\s+(\S+)\s+(.*)$/)!);
    assert.deepEqual(rows.map((m) => m[4]), ITM.ranking_by_score);
    for (const [, , score, logit, text] of rows) {
      near(Number(logit), cardScore(text));
      near(Number(score), ITM.per_text[ITM.texts.indexOf(text)].match_probability);
    }
    const json = JSON.parse(ok([...itmArgs, "--sort", "logit", "--json"])) as { text: string; score: number; logits: number[] }[];
    assert.deepEqual(json.map((r) => r.text), ITM.ranking_by_score);
    for (const r of json) {
      assert.deepEqual(Object.keys(r), ["text", "score", "logits"]);
      near(r.logits[1], cardScore(r.text));
    }
  });

  it("itm --sort with a bad value is one line and exit code 2, before any model is loaded", () => {
    const r = spawnSync(bin, [...itmArgs, "--sort", "score", "--model", join(DIR, "nowhere")], { encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'bridgetower: --sort: must be probability or logit, got "score"\n');
    assert.equal(r.stdout, "");
  });

  it("fill-mask --all-positions prints the card's output, and --json always has it as decoded", () => {
    assert.equal(ok(["fill-mask", image(MLM.image), MLM.text, "--all-positions"]), `${MLM.decoded_argmax}\n`);
    const json = JSON.parse(ok(["fill-mask", image(MLM.image), MLM.text, "--json"]));
    assert.equal(json.decoded, MLM.decoded_argmax);
    assert.deepEqual(Object.keys(json), ["sequence", "masks", "decoded"]);
  });

  it("--help names the new options", () => {
    assert.match(spawnSync(bin, ["itm", "--help"], { encoding: "utf8" }).stdout, /--sort VALUE\s+probability \(default.*logit/);
    assert.match(spawnSync(bin, ["fill-mask", "--help"], { encoding: "utf8" }).stdout, /--all-positions\s+.*model card/);
  });
});
