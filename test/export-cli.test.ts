/**
 * `bridgetower export` at its edges: a non-empty OUTDIR without --force, a head the checkpoint lacks, an unknown
 * head, replacing with --force, and a failure half way: one line on stderr, the documented exit code, and never a
 * half-written folder (nor a temporary sibling) left behind.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { exportModel } from "../src/export/index.js";
import { externalLocations } from "../src/export/proto.js";
import { writeSafetensors } from "../src/io/safetensors.js";
import { runFile } from "./helpers/export.js";
import { fixture, readAll, repoRoot } from "./helpers/fixtures.js";
import { startHubServer } from "./helpers/hub-server.js";

const entry = join(repoRoot, "test", "helpers", "cli-src.ts");
const tmp = mkdtempSync(join(tmpdir(), "bt-export-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const MODEL = fixture("tiny-default");

function cli(args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", entry, "export", ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, HF_HUB_OFFLINE: "1" } });
}

function assertOneLineError(r: ReturnType<typeof cli>, code: number, pattern: RegExp): void {
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("bridgetower: "));
  assert.equal(errors.length, 1, `one error line, got:\n${r.stderr}`);
  assert.match(errors[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  assert.equal(r.status, code, r.stderr);
}

/** Only `keep` in the parent folder: no temporary sibling left behind. */
function assertNoLeftovers(parent: string, keep: string[]): void {
  assert.deepEqual(readdirSync(parent).sort(), keep.sort());
}

describe("bridgetower export (CLI)", () => {
  it("exports, and refuses a non-empty OUTDIR without --force (exit 2, nothing written)", () => {
    const parent = join(tmp, "nonempty");
    const out = join(parent, "out");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "mine.txt"), "keep me");
    const r = cli([MODEL, "--out", out, "--heads", "itm"]);
    assertOneLineError(r, 2, /is not empty \(pass --force/);
    assert.deepEqual(readdirSync(out), ["mine.txt"]);
    assertNoLeftovers(parent, ["out"]);

    const ok = cli([MODEL, "--out", out, "--heads", "itm", "--force"]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /bridgetower export: wrote itm\.onnx/);
    assert.ok(!existsSync(join(out, "mine.txt")), "--force replaced the folder");
    assert.ok(existsSync(join(out, "itm.onnx")) && !existsSync(join(out, "mlm.onnx")));
    assertNoLeftovers(parent, ["out"]);
  });

  it("an empty or absent OUTDIR needs no --force", () => {
    const out = join(tmp, "empty");
    mkdirSync(out);
    const r = cli([MODEL, "--out", out, "--heads", "mlm"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(out, "mlm.onnx")));
  });

  it("refuses a head the checkpoint lacks (exit 5) and exports the heads it has", async () => {
    const model = join(tmp, "no-mlm");
    mkdirSync(model);
    copyFileSync(join(MODEL, "config.json"), join(model, "config.json"));
    const tensors = await readAll(join(MODEL, "model.safetensors"));
    const kept = [...tensors].filter(([k]) => !k.startsWith("mlm_score."));
    await writeSafetensors(join(model, "model.safetensors"), kept.map(([k, t]) => [k, { dtype: "F32" as const, shape: [...t.dims], data: t.data }]));
    const out = join(tmp, "no-mlm-out");
    assertOneLineError(cli([model, "--out", out, "--heads", "itm,mlm"]), 5, /has no mlm head \(missing mlm_score\./);
    assert.ok(!existsSync(out));
    const r = cli([model, "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(readFileSync(join(out, "bridgetower-export.json"), "utf8")).heads, ["itm", "itc"]);
  });

  it("refuses an unknown head, a bad dtype and a missing --out (exit 2)", () => {
    assertOneLineError(cli([MODEL, "--out", join(tmp, "x"), "--heads", "itm,nsp"]), 2, /unknown head "nsp"/);
    assertOneLineError(cli([MODEL, "--out", join(tmp, "x"), "--dtype", "fp16"]), 2, /--dtype: must be fp32 or int8/);
    assertOneLineError(cli([MODEL]), 2, /--out: is required/);
    assertOneLineError(cli([fixture("tiny-dims-mismatch"), "--out", join(tmp, "x"), "--heads", "itc"]), 5, /cannot export the itc head/);
    assert.ok(!existsSync(join(tmp, "x")));
  });

  it("never replaces the folder it reads the model from", () => {
    const model = join(tmp, "self");
    mkdirSync(model);
    for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(MODEL, f), join(model, f));
    assertOneLineError(cli([model, "--out", model, "--force"]), 2, /which the export reads/);
    assertOneLineError(cli([model, "--out", tmp, "--force"]), 2, /which the export reads/);
    assert.deepEqual(readdirSync(model).sort(), ["config.json", "model.safetensors"]);
  });
});

describe("exportModel failing half way", () => {
  const failAt = (what: string) => (m: string) => {
    if (m.startsWith(what)) throw new Error(`stopped at "${m}"`);
  };

  it("leaves no folder", async () => {
    const parent = join(tmp, "fail");
    mkdirSync(parent);
    const out = join(parent, "out");
    await assert.rejects(exportModel(MODEL, { out, onStep: failAt("wrote mlm.onnx"), onWarning: () => {} }), /stopped at/);
    assertNoLeftovers(parent, []);
  });

  it("with --force, leaves the old folder as it was", async () => {
    const parent = join(tmp, "fail-force");
    const out = join(parent, "out");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "old.txt"), "old");
    await assert.rejects(exportModel(MODEL, { out, force: true, parts: true, onStep: failAt("wrote head_itc.onnx"), onWarning: () => {} }), /stopped at/);
    assert.deepEqual(readdirSync(out), ["old.txt"]);
    assertNoLeftovers(parent, ["out"]);
  });
});

describe("exportModel from a Hub id", () => {
  it("records the repo and commit, and names the weights plainly (not by their cache blob)", async () => {
    const hub = await startHubServer();
    try {
      const id = "BridgeTower/e2e-fullvocab";
      const out = join(tmp, "hub");
      const r = await exportModel(id, { out, heads: ["itm"], endpoint: hub.url, cacheDir: join(tmp, "hf-cache"), offline: false, onProgress: () => {}, onWarning: () => {} });
      assert.deepEqual(r.manifest.source, { hub: id, revision: "main", commit: hub.commit(id) });
      assert.deepEqual(externalLocations(readFileSync(join(out, "itm.onnx"))), ["weights.safetensors"]);
      const inputs = await readAll(fixture("e2e-fullvocab", "expected.safetensors"));
      const feeds = Object.fromEntries(["input_ids", "attention_mask", "pixel_values"].map((n) => [n, inputs.get(`itm.batch.${n}`)!]));
      const got = await runFile(join(out, "itm.onnx"), feeds);
      assert.ok(Math.abs(Number(got["itm.logits"].data[1]) - Number(inputs.get("itm.batch.logits")!.data[1])) < 1e-4);
    } finally {
      await hub.close();
    }
  });
});
