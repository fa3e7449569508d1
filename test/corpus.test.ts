/**
 * The corpus of bad inputs (test/corpus, written by make.ts) through every CLI command that reads that kind of
 * file: each run ends in one line `bridgetower: ...` naming the input, a non-zero exit, within 10 s, with no
 * output file (or temporary file) left behind, and nothing executed by a hostile pickle.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, describe, it } from "node:test";
import { fixture, repoRoot } from "./helpers/fixtures.js";

const corpus = join(repoRoot, "test", "corpus");
const bin = join(repoRoot, "bin", "bridgetower");
const tmp = mkdtempSync(join(tmpdir(), "bt-corpus-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const E2E = fixture("e2e-fullvocab");
const IMG = join(E2E, "images", "chelsea.png");
const files = (kind: string) => readdirSync(join(corpus, kind)).sort().map((f) => join(corpus, kind, f));
const PWNED = "/tmp/bridgetower-pwned";

/** A model folder: `base`'s files, with `replace` mapping file names to corpus files. */
function folder(base: string, replace: Record<string, string>, drop: string[] = []): string {
  const dir = mkdtempSync(join(tmp, "m-"));
  for (const f of readdirSync(base)) if (f.includes(".") && !drop.includes(f) && !(f in replace)) copyFileSync(join(base, f), join(dir, f));
  for (const [name, src] of Object.entries(replace)) copyFileSync(src, join(dir, name));
  return dir;
}

function expectCleanFailure(args: string[], names: string[], outDir?: string): void {
  const t0 = performance.now();
  const r = spawnSync(bin, args, { encoding: "utf8", timeout: 30_000, env: { ...process.env, HF_HUB_OFFLINE: "1" } });
  const seconds = (performance.now() - t0) / 1000;
  const what = `bridgetower ${args.join(" ")}`;
  assert.notEqual(r.status, 0, `${what}: exit code`);
  assert.ok(r.status !== null, `${what}: killed (${r.signal})`);
  const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("bridgetower: warning:"));
  assert.equal(lines.length, 1, `${what}: one error line, got:\n${r.stderr}`);
  assert.match(lines[0], /^bridgetower: /, what);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/, `${what}: no stack trace or internal error`);
  assert.ok(names.some((n) => lines[0].includes(n)), `${what}: the message names the input (${names.join(" or ")}): ${lines[0]}`);
  assert.ok(seconds < 10, `${what}: took ${seconds.toFixed(1)} s`);
  if (outDir) assert.deepEqual(readdirSync(outDir), [], `${what}: left files behind`);
}

describe("corpus of bad inputs through the CLI", () => {
  it("safetensors files: as model weights and as forward inputs", () => {
    for (const f of files("safetensors")) {
      const out = mkdtempSync(join(tmp, "o-"));
      const model = folder(fixture("tiny-default"), { "model.safetensors": f });
      expectCleanFailure(["forward", "--model", model, "--inputs", fixture("tiny-default", "inputs.safetensors"), "--out", join(out, "o.safetensors")], ["model.safetensors"], out);
      expectCleanFailure(["forward", "--model", fixture("tiny-default"), "--inputs", f, "--out", join(out, "o.safetensors")], [basename(f)], out);
      const e2e = folder(E2E, { "model.safetensors": f });
      expectCleanFailure(["itm", IMG, "a cat", "--model", e2e], ["model.safetensors"]);
    }
  });

  it("pytorch_model.bin files: convert, forward and the jobs; hostile pickles run nothing", () => {
    rmSync(PWNED, { force: true });
    for (const f of files("bin")) {
      const model = folder(fixture("tiny-itc"), { "pytorch_model.bin": f }, ["model.safetensors"]);
      expectCleanFailure(["convert", model], ["pytorch_model.bin"]);
      assert.equal(existsSync(join(model, "model.safetensors")), false, "convert left no output");
      assert.deepEqual(readdirSync(model).filter((n) => n.includes(".tmp")), [], "convert left no temporary file");
      const out = mkdtempSync(join(tmp, "o-"));
      expectCleanFailure(["forward", "--model", model, "--task", "itc", "--inputs", fixture("tiny-itc", "inputs.safetensors"), "--out", join(out, "o.safetensors")], ["pytorch_model.bin"], out);
      const e2e = folder(E2E, { "pytorch_model.bin": f }, ["model.safetensors"]);
      expectCleanFailure(["fill-mask", IMG, "a <mask>", "--model", e2e], ["pytorch_model.bin"]);
    }
    assert.equal(existsSync(PWNED), false, "a hostile pickle executed code");
  });

  it("images: itm, fill-mask, embed and preprocess", () => {
    for (const f of files("images")) {
      const out = mkdtempSync(join(tmp, "o-"));
      const n = [basename(f)];
      expectCleanFailure(["itm", f, "a cat", "--model", E2E], n);
      expectCleanFailure(["fill-mask", f, "a <mask>", "--model", E2E], n);
      expectCleanFailure(["embed", "--image", f, "--text", "a cat", "--model", E2E], n);
      expectCleanFailure(["preprocess", "--model", E2E, "--image", f, "--out", join(out, "p.safetensors")], n, out);
    }
  });

  it("config.json files: every command that loads a model", () => {
    for (const f of files("config")) {
      const model = folder(E2E, { "config.json": f });
      const out = mkdtempSync(join(tmp, "o-"));
      const n = ["config.json"];
      expectCleanFailure(["itm", IMG, "a cat", "--model", model], n);
      expectCleanFailure(["fill-mask", IMG, "a <mask>", "--model", model], n);
      expectCleanFailure(["embed", "--text", "a cat", "--model", model], n);
      expectCleanFailure(["forward", "--model", model, "--inputs", fixture("tiny-default", "inputs.safetensors"), "--out", join(out, "o.safetensors")], n, out);
    }
  });
});
