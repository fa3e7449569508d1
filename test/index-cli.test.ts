/**
 * `bridgetower index` and `search` as processes: the summary line and exit codes, bad files skipped on one line
 * each, kill -9 in the middle then a rerun (exact rows), the wrong-model refusal, and two searchers reading
 * while a third process indexes.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Collection, type SearchResult } from "../src/index.js";
import { fixture, repoRoot } from "./helpers/fixtures.js";
import { writePng, writeVideo } from "./helpers/media.js";

const bin = join(repoRoot, "bin", "bridgetower");
const E2E = fixture("e2e-fullvocab");
const tmp = mkdtempSync(join(tmpdir(), "bt-index-cli-"));
const MANY = join(tmp, "many");
const N = 120;
after(() => rmSync(tmp, { recursive: true, force: true }));

before(async () => {
  for (let i = 0; i < N; i++) await writePng(join(MANY, `img${String(i).padStart(3, "0")}.png`), 100 + i, 40, 30);
});

function cli(args: string[]) {
  return spawnSync(bin, args, { encoding: "utf8", timeout: 120_000, env: { ...process.env, HF_HUB_OFFLINE: "1" } });
}

/** Runs the CLI without blocking the test's event loop. */
function cliAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(bin, args, { env: { ...process.env, HF_HUB_OFFLINE: "1" } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (b) => (stdout += b));
    p.stderr.on("data", (b) => (stderr += b));
    const timer = setTimeout(() => p.kill("SIGKILL"), 120_000);
    p.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const noStack = (s: string) => assert.doesNotMatch(s, /\n\s+at /, "no stack trace");

async function rows(db: string): Promise<Map<string, SearchResult & { vector?: number[] }>> {
  const c = await Collection.open(db);
  try {
    const all = await c.search("anything", { topK: 10_000 });
    return new Map(all.map((r) => [r.id, r]));
  } finally {
    await c.close();
  }
}

describe("bridgetower index / search", () => {
  it("prints the summary, skips bad files on one line each, exits 2 when anything failed", () => {
    const dir = join(tmp, "mixed");
    mkdirSync(dir);
    copyFileSync(join(E2E, "images", "chelsea.png"), join(dir, "cat.png"));
    writeFileSync(join(dir, "cat.txt"), "a cat");
    writeFileSync(join(dir, "broken.jpg"), "\xff\xd8\xff garbage");
    writeFileSync(join(dir, "broken.webm"), "nothing");
    writeVideo(join(dir, "clip.mov"), 2);
    writeFileSync(join(dir, "clip.vtt"), "WEBVTT\n\n00:00.000 --> oops\ntext\n");
    writeFileSync(join(dir, "caps.jsonl"), "[1, 2]\n");
    const db = join(tmp, "db-mixed");
    const r = cli(["index", dir, "--db", db, "--model", E2E, "--captions", join(dir, "caps.jsonl")]);
    assert.equal(r.stdout, "indexed 1, unchanged 0, removed 0, failed 4\n");
    assert.equal(r.status, 2, r.stderr);
    noStack(r.stderr);
    const skipped = r.stderr.split("\n").filter((l) => l.startsWith("bridgetower: skipped "));
    assert.deepEqual(skipped.map((l) => l.slice("bridgetower: skipped ".length).split(":")[0]).sort(), [
      join(dir, "broken.jpg"), join(dir, "broken.webm"), join(dir, "caps.jsonl"), join(dir, "clip.vtt"),
    ]);
    const again = cli(["index", join(dir, "cat.png"), "--db", db]);
    assert.equal(again.stdout, "indexed 0, unchanged 1, removed 0, failed 0\n");
    assert.equal(again.status, 0, again.stderr);
  });

  it("search prints the library's results; --json; errors are one line", async () => {
    const db = join(tmp, "db-mixed");
    const r = cli(["search", "a cat", "--db", db, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const c = await Collection.open(db);
    try {
      assert.deepEqual(JSON.parse(r.stdout), await c.search("a cat"));
    } finally {
      await c.close();
    }
    const table = cli(["search", "a", "cat", "--db", db, "--rerank", "1"]);
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^rank score\s+itm\s+modality source\n1\s+-?\d\.\d{4}\s+\d\.\d{4}\s+pair\s+\S+cat\.png {2}"a cat"\n$/);
    for (const [args, pattern] of [
      [["search", "--db", db], /give a TEXT, an --image, or both/],
      [["search", "x", "--db", join(tmp, "nope")], /no collection here/],
      [["search", "--image", join(E2E, "images", "coffee.png"), "--db", db, "--rerank", "3"], /--rerank: needs a TEXT/],
      [["index", MANY], /--db: is required/],
    ] as [string[], RegExp][]) {
      const e = cli(args);
      assert.equal(e.stderr.trim().split("\n").length, 1, e.stderr);
      assert.match(e.stderr, pattern);
      assert.ok(e.status === 2 || e.status === 9, `exit ${e.status}`);
    }
  });

  it("refuses a collection made with another model (one line, exit 9)", () => {
    for (const args of [["--model", fixture("tiny-itc")], ["--dtype", "int8"]]) {
      for (const cmd of [["index", MANY], ["search", "x"]]) {
        const r = cli([...cmd, "--db", join(tmp, "db-mixed"), ...args]);
        assert.equal(r.status, 9, r.stderr);
        assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
        assert.match(r.stderr, /^bridgetower: .*db-mixed: was indexed with .*e2e-fullvocab \(fp32\), not .*(tiny-itc \(fp32\)|e2e-fullvocab \(int8\))/);
      }
    }
  });

  it("kill -9 after the first commit: the rerun completes it, rows exact", async (t) => {
    const db = join(tmp, "db-killed");
    const p = spawn(bin, ["index", MANY, "--db", db, "--model", E2E, "--batch-size", "2"], { stdio: ["ignore", "ignore", "pipe"] });
    const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
    await new Promise<void>((resolve) => {
      let err = "";
      p.stderr!.on("data", (b) => {
        err += b;
        if (/\d+\/120 items/.test(err)) p.kill("SIGKILL"); // printed right after the first commit
      });
      p.on("close", () => resolve());
    });
    clearTimeout(timer);
    assert.equal(p.signalCode, "SIGKILL", "killed before it finished");
    const partial = (await rows(db)).size;
    assert.ok(partial >= 2 && partial < N && partial % 2 === 0, `${partial} rows committed before the kill (whole batches)`);
    t.diagnostic(`${partial} of ${N} rows were committed when kill -9 landed`);
    const r = cli(["index", MANY, "--db", db, "--batch-size", "2"]);
    assert.equal(r.stdout, `indexed ${N - partial}, unchanged ${partial}, removed 0, failed 0\n`, r.stderr);
    const clean = join(tmp, "db-clean");
    assert.equal(cli(["index", MANY, "--db", clean, "--model", E2E]).status, 0);
    const [got, want] = [await rows(db), await rows(clean)];
    assert.equal(got.size, N);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [id, w] of want) {
      const { score, ...rest } = got.get(id)!;
      const { score: wantScore, ...wantRest } = w;
      assert.deepEqual(rest, wantRest);
      assert.ok(Math.abs(score - wantScore) < 1e-5, `${id}: ${score} vs ${wantScore}`);
    }
  });

  it("Ctrl-C stops after the batch being committed: the summary says what was indexed, exit 130", async () => {
    const db = join(tmp, "db-interrupted");
    const p = spawn(bin, ["index", MANY, "--db", db, "--model", E2E, "--batch-size", "2"], { stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
    let out = "", err = "";
    p.stdout!.on("data", (b) => (out += b));
    await new Promise<void>((resolve) => {
      let signalled = false;
      p.stderr!.on("data", (b) => {
        err += b;
        if (!signalled && /\d+\/120 items/.test(err)) {
          signalled = true;
          p.kill("SIGINT");
        }
      });
      p.on("close", () => resolve());
    });
    clearTimeout(timer);
    assert.equal(p.exitCode, 130, err);
    const m = /^indexed (\d+), unchanged 0, removed 0, failed 0\n$/.exec(out);
    assert.ok(m, out);
    const indexed = Number(m[1]);
    assert.ok(indexed < N, "stopped early");
    assert.equal((await rows(db)).size, indexed, "every batch it counted is committed, no other");
    const r = cli(["index", MANY, "--db", db]);
    assert.equal(r.stdout, `indexed ${N - indexed}, unchanged ${indexed}, removed 0, failed 0\n`, r.stderr);
  });

  it("two processes search while a third indexes into the same collection", async (t) => {
    const db = join(tmp, "db-shared");
    const seed = join(tmp, "seed");
    await writePng(join(seed, "first.png"), 1);
    assert.equal(cli(["index", seed, "--db", db, "--model", E2E]).status, 0);
    let indexing = true;
    const indexer = cliAsync(["index", MANY, "--db", db, "--batch-size", "2"]).finally(() => (indexing = false));
    const searcher = async () => {
      const seen: number[] = [];
      // The last search must start after the indexer exited, or it may see the table before its last commit.
      for (let whileIndexing = true; whileIndexing || seen.length < 2; ) {
        whileIndexing = indexing;
        const r = await cliAsync(["search", "stripes", "--db", db, "--top-k", "200", "--json"]);
        assert.equal(r.status, 0, r.stderr);
        const results = JSON.parse(r.stdout) as SearchResult[];
        for (let i = 1; i < results.length; i++) assert.ok(results[i - 1].score >= results[i].score);
        assert.equal(new Set(results.map((x) => x.id)).size, results.length, "no duplicate rows");
        seen.push(results.length);
      }
      return seen;
    };
    const [done, a, b] = await Promise.all([indexer, searcher(), searcher()]);
    assert.equal(done.stdout, `indexed ${N}, unchanged 0, removed 0, failed 0\n`, done.stderr);
    assert.equal(a.at(-1), N + 1);
    assert.equal(b.at(-1), N + 1);
    assert.ok([...a, ...b].every((n) => n >= 1 && n <= N + 1));
    assert.ok([...a, ...b].some((n) => n < N + 1), "some searches ran while rows were still being added");
    t.diagnostic(`rows seen by the two searchers: ${a.join(" ")} | ${b.join(" ")}`);
  });
});
