/**
 * The CLI at its edges: bad input ends in one line `bridgetower: <message>` on stderr, the documented exit code,
 * no stack trace, within seconds, and no output file left behind.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fixture, readAll, repoRoot } from "./helpers/fixtures.js";
import { assertClose } from "./helpers/parity.js";

const bin = join(repoRoot, "bin", "bridgetower");
const tmp = mkdtempSync(join(tmpdir(), "bt-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const E2E = fixture("e2e-fullvocab");
const IMG = join(E2E, "images", "chelsea.png");

function cli(args: string[], env: Record<string, string> = {}) {
  const t0 = performance.now();
  const r = spawnSync(bin, args, { encoding: "utf8", timeout: 60_000, env: { ...process.env, HF_HUB_OFFLINE: "1", ...env } });
  return { ...r, seconds: (performance.now() - t0) / 1000 };
}

/** A folder copy of e2e-fullvocab with some files replaced or removed. */
function variant(name: string, change: (dir: string) => void): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(E2E)) if (f.includes(".")) copyFileSync(join(E2E, f), join(dir, f));
  change(dir);
  return dir;
}

function assertOneLineError(r: ReturnType<typeof cli>, code: number, pattern: RegExp): void {
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^bridgetower: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  assert.equal(r.status, code, `exit code (stderr: ${r.stderr})`);
  assert.ok(r.seconds < 10, `took ${r.seconds} s`);
}

describe("CLI errors", () => {
  it("unknown command and unknown flag are usage errors", () => {
    assertOneLineError(cli(["frobnicate"]), 2, /unknown command "frobnicate"/);
    assertOneLineError(cli(["itm", "--nope"]), 2, /nope/);
  });

  it("--help works for every command", () => {
    for (const c of ["itm", "fill-mask", "embed", "preprocess", "forward", "convert"]) {
      const r = cli([c, "--help"]);
      assert.equal(r.status, 0);
      assert.match(r.stdout, new RegExp(`usage: bridgetower ${c}`));
    }
  });

  it("a missing model folder names it", () => {
    // Neither a folder nor a Hub id: reported by the model resolver (a HubError).
    assertOneLineError(cli(["itm", IMG, "a cat", "--model", join(tmp, "nowhere")]), 8, /nowhere: no such model folder/);
  });

  it("a model folder without config.json", () => {
    const dir = variant("noconfig", (d) => rmSync(join(d, "config.json")));
    assertOneLineError(cli(["itm", IMG, "a cat", "--model", dir]), 4, /config\.json/);
  });

  it("malformed config.json and a wrong model_type", () => {
    const bad = variant("badjson", (d) => writeFileSync(join(d, "config.json"), "{ not json"));
    assertOneLineError(cli(["itm", IMG, "a cat", "--model", bad]), 4, /config\.json.*not valid JSON/);
    const bert = variant("bert", (d) => writeFileSync(join(d, "config.json"), JSON.stringify({ model_type: "bert" })));
    assertOneLineError(cli(["itm", IMG, "a cat", "--model", bert]), 4, /model_type is "bert"/);
  });

  it("a truncated safetensors file", () => {
    const dir = variant("truncated", (d) => {
      const b = readFileSync(join(E2E, "model.safetensors"));
      writeFileSync(join(d, "model.safetensors"), b.subarray(0, b.length >> 1));
    });
    assertOneLineError(cli(["itm", IMG, "a cat", "--model", dir]), 3, /model\.safetensors.*past the end/);
  });

  it("missing tokenizer files", () => {
    const dir = variant("notok", (d) => {
      rmSync(join(d, "vocab.json"));
      rmSync(join(d, "merges.txt"));
    });
    assertOneLineError(cli(["itm", IMG, "a cat", "--model", dir]), 7, /vocab\.json|tokenizer/);
  });

  it("a checkpoint without the contrastive head names the head", () => {
    const dir = variant("noitc", (d) => {
      const c = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
      delete c.contrastive_hidden_size;
      writeFileSync(join(d, "config.json"), JSON.stringify(c));
    });
    assertOneLineError(cli(["embed", "--text", "a cat", "--model", dir]), 5, /contrastive.*itm-mlm-itc/);
  });

  it("a shape that disagrees with the config names the parameter and both shapes", () => {
    const dir = variant("shape", (d) => {
      const c = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
      c.text_config.intermediate_size = 128;
      writeFileSync(join(d, "config.json"), JSON.stringify(c));
    });
    assertOneLineError(cli(["itm", IMG, "a cat", "--model", dir]), 5, /intermediate\.dense\.(weight|bias) has shape \[256(, 64)?\] but the config implies \[128(, 64)?\]/);
  });

  it("images that are not images, empty files and missing files", () => {
    const junk = join(tmp, "junk.png");
    writeFileSync(junk, "this is not an image");
    const empty = join(tmp, "empty.jpg");
    writeFileSync(empty, "");
    for (const f of [junk, empty, join(tmp, "missing.png")]) assertOneLineError(cli(["itm", f, "a cat", "--model", E2E]), 6, new RegExp(f.split("/").pop()!));
  });

  it("a text longer than the model's positions says how to truncate", () => {
    const long = "word ".repeat(600);
    assertOneLineError(cli(["itm", IMG, long, "--model", E2E]), 2, /512.*truncat/);
  });

  it("fill-mask without <mask>", () => {
    assertOneLineError(cli(["fill-mask", IMG, "a cat", "--model", E2E]), 2, /<mask>/);
  });

  it("forward --task itc writes every output of the fixtures, itc.logit_scale included", async () => {
    const out = join(tmp, "itc.safetensors");
    const r = cli(["forward", "--model", fixture("tiny-itc"), "--task", "itc", "--inputs", fixture("tiny-itc", "inputs.safetensors"), "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    const got = await readAll(out);
    const want = await readAll(fixture("tiny-itc", "expected.safetensors"));
    const itcKeys = [...want.keys()].filter((k) => k.startsWith("itc.") && !k.endsWith(".labels"));
    assert.ok(itcKeys.includes("itc.logit_scale"));
    for (const k of itcKeys) assert.ok(got.has(k), `forward --task itc did not write ${k}`);
    assertClose("itc.logit_scale", got.get("itc.logit_scale")!, want.get("itc.logit_scale")!);
  });

  it("forward with bad inputs leaves no output file", () => {
    const out = join(tmp, "out.safetensors");
    const badInputs = join(tmp, "inputs.safetensors");
    writeFileSync(badInputs, Buffer.from([1, 2, 3]));
    assertOneLineError(cli(["forward", "--model", fixture("tiny-default"), "--inputs", badInputs, "--out", out]), 3, /inputs\.safetensors/);
    assertOneLineError(cli(["forward", "--model", fixture("tiny-default"), "--task", "xyz", "--inputs", fixture("tiny-default", "inputs.safetensors"), "--out", out]), 2, /task/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith("out.safetensors")), [], "no temporary file either");
  });

  it("preprocess of ragged texts without padding says to pass --padding, and writes nothing", () => {
    const out = join(tmp, "pre.safetensors");
    assertOneLineError(cli(["preprocess", "--model", E2E, "--text", "a cat", "--text", "two dogs in a car", "--out", out]), 2, /--padding|padding/);
    assert.equal(existsSync(out), false);
  });

  it("convert refuses a folder without pytorch_model.bin", () => {
    assertOneLineError(cli(["convert", E2E]), 2, /pytorch_model\.bin/);
  });
});

describe("CLI jobs", () => {
  it("preprocess writes the processor's tensors", () => {
    const out = join(tmp, "pre-ok.safetensors");
    const r = cli(["preprocess", "--model", E2E, "--text", "a cat", "--text", "two dogs in a car", "--padding", "longest", "--image", IMG, "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(out));
  });

  it("convert writes model.safetensors beside pytorch_model.bin", () => {
    const dir = join(tmp, "conv");
    mkdirSync(dir);
    copyFileSync(fixture("tiny-itc", "pytorch_model.bin"), join(dir, "pytorch_model.bin"));
    const r = cli(["convert", dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(dir, "model.safetensors")));
    assertOneLineError(cli(["convert", dir]), 2, /already exists/);
  });
});
