import assert from "node:assert/strict";
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { HubError } from "../src/errors.js";
import { normalizeEtag } from "../src/hub/download.js";
import { hubFile, isLocalFolder, resolveModel, type HubOptions } from "../src/hub/index.js";
import { fixturesRoot, startHubServer, type HubServer } from "./helpers/hub-server.js";

const REPO = "BridgeTower/e2e-fullvocab";
const SRC = join(fixturesRoot(), "e2e-fullvocab");
const SMALL = ["config.json", "preprocessor_config.json", "vocab.json", "merges.txt"];

// Keep the developer's own Hugging Face settings (token, cache, offline flag) out of the tests.
const scratch = mkdtempSync(join(tmpdir(), "hub-test-"));
for (const k of ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"]) {
  delete process.env[k];
}
process.env.HF_HOME = join(scratch, "hf-home");
after(() => rmSync(scratch, { recursive: true, force: true }));

let n = 0;
function tempCache(): string {
  return join(scratch, `cache-${++n}`);
}

function storage(cache: string, repo = REPO): string {
  return join(cache, `models--${repo.replace("/", "--")}`);
}

/** Options for a quick, quiet run against the test Hub. */
function opts(hub: HubServer | { url: string }, cacheDir: string, extra: HubOptions = {}): HubOptions {
  return { endpoint: hub.url, cacheDir, onProgress: () => {}, timeoutMs: 2000, readTimeoutMs: 2000, retryDelayMs: 0, ...extra };
}

async function rejectsHub(p: Promise<unknown>, ...patterns: RegExp[]): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof HubError, `expected a HubError, got ${e}`);
    for (const re of patterns) assert.match(e.message, re);
    return e;
  }
  assert.fail("expected a HubError");
}

/** Runs `fn` with stderr captured (warnings and the default progress lines). */
async function captureStderr<T>(fn: () => Promise<T>): Promise<{ value: T; text: string }> {
  const write = process.stderr.write;
  let text = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), text };
  } finally {
    process.stderr.write = write;
  }
}

/** A port on 127.0.0.1 that nothing listens on (connections are refused). */
async function freePort(): Promise<number> {
  const free = createNetServer();
  await new Promise<void>((ok) => free.listen(0, "127.0.0.1", ok));
  const port = (free.address() as { port: number }).port;
  await new Promise<void>((ok) => free.close(() => ok()));
  return port;
}

/** A cache laid out by hand exactly as Python's huggingface_hub leaves it. */
function writePythonCache(cache: string, hub: HubServer, files: string[]): string {
  const root = storage(cache);
  const commit = hub.commit(REPO);
  mkdirSync(join(root, "blobs"), { recursive: true });
  mkdirSync(join(root, "refs"), { recursive: true });
  mkdirSync(join(root, "snapshots", commit), { recursive: true });
  writeFileSync(join(root, "refs", "main"), commit);
  for (const f of files) {
    const etag = hub.file(REPO, f).etag;
    copyFileSync(join(SRC, f), join(root, "blobs", etag));
    symlinkSync(`../../blobs/${etag}`, join(root, "snapshots", commit, f));
  }
  return join(root, "snapshots", commit);
}

describe("hub downloads", () => {
  let hub: HubServer;
  before(async () => {
    hub = await startHubServer({
      [REPO]: { dir: SRC },
      "BridgeTower/tiny-itc": { dir: join(fixturesRoot(), "tiny-itc") },
      "BridgeTower/tiny-itc-bin": { dir: join(fixturesRoot(), "tiny-itc"), hide: ["model.safetensors"] },
    }, { "BridgeTower/old-name": REPO });
  });
  after(() => hub.close());
  afterEach(() => {
    hub.requests.length = 0;
    hub.requireToken = undefined;
    hub.cdnOtherHost = false;
    hub.cutOnce.clear();
    hub.stallOnce.clear();
    hub.corruptOnce.clear();
  });

  test("a download lays out the cache as huggingface_hub does, with the source bytes", async () => {
    const cache = tempCache();
    const seen: number[] = [];
    const r = await resolveModel(REPO, opts(hub, cache, {
      onProgress: (p) => {
        if (p.file === "model.safetensors") {
          assert.equal(p.total, hub.file(REPO, "model.safetensors").size);
          seen.push(p.downloaded);
        }
      },
    }));
    const root = storage(cache);
    const commit = hub.commit(REPO);
    assert.deepEqual(r, { dir: join(root, "snapshots", commit), weights: join(root, "snapshots", commit, "model.safetensors"), fromHub: true });
    assert.equal(readFileSync(join(root, "refs", "main"), "utf8"), commit);

    const files = [...SMALL, "model.safetensors"];
    assert.deepEqual(readdirSync(join(root, "snapshots", commit)).sort(), [...files].sort());
    assert.deepEqual(readdirSync(join(root, "blobs")).sort(), files.map((f) => hub.file(REPO, f).etag).sort());
    for (const f of files) {
      const pointer = join(root, "snapshots", commit, f);
      assert.ok(lstatSync(pointer).isSymbolicLink(), `${f} is a symlink`);
      assert.equal(readlinkSync(pointer), `../../blobs/${hub.file(REPO, f).etag}`);
      assert.ok(readFileSync(pointer).equals(readFileSync(join(SRC, f))), `${f} has the source bytes`);
    }
    // The LFS file's blob is named by its sha256, not by the CDN's or the pointer's ETag.
    assert.match(hub.file(REPO, "model.safetensors").etag, /^[0-9a-f]{64}$/);
    // Absent optional files are recorded the way huggingface_hub records them.
    assert.ok(existsSync(join(root, ".no_exist", commit, "tokenizer.json")));

    assert.ok(seen.length > 2);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, "progress never goes back");
    assert.equal(seen.at(-1), hub.file(REPO, "model.safetensors").size);

    // The weights came from the CDN-like path the Hub redirected to.
    const gets = hub.requests.filter((q) => q.method === "GET");
    assert.deepEqual(gets.filter((q) => q.path.startsWith("/cdn/")).length, 1);
    assert.ok(hub.requests.some((q) => q.method === "HEAD" && q.path === `/${REPO}/resolve/main/config.json`));
  });

  test("a filled cache is used offline with the server gone, and offline misses say so", async () => {
    const other = await startHubServer();
    const cache = tempCache();
    const first = await resolveModel(REPO, opts(other, cache));
    await other.close();
    const again = await resolveModel(REPO, opts(other, cache, { offline: true }));
    assert.deepEqual(again, first);

    process.env.HF_HUB_OFFLINE = "1";
    try {
      assert.deepEqual(await resolveModel(REPO, opts(other, cache)), first);
      assert.equal(await hubFile(REPO, "tokenizer.json", { ...opts(other, cache), optional: true }), undefined);
      await rejectsHub(resolveModel(REPO, opts(other, tempCache())), /BridgeTower\/e2e-fullvocab/, /config\.json/, /not in the cache/, /HF_HUB_OFFLINE/);
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
  });

  test("a cache laid out by Python is reused: a HEAD to check for updates, no download", async () => {
    const cache = tempCache();
    const snapshot = writePythonCache(cache, hub, [...SMALL, "model.safetensors"]);
    const r = await resolveModel(REPO, opts(hub, cache));
    assert.deepEqual(r, { dir: snapshot, weights: join(snapshot, "model.safetensors"), fromHub: true });
    assert.deepEqual(hub.requests.filter((q) => q.method === "GET"), []);
    assert.deepEqual(hub.requests.filter((q) => q.path.includes("model.safetensors") || q.path.startsWith("/cdn/")), []);
    assert.ok(hub.requests.some((q) => q.method === "HEAD" && q.path.endsWith("/resolve/main/config.json")));

    // Pinned to a commit that is cached: no request at all.
    hub.requests.length = 0;
    const commit = hub.commit(REPO);
    assert.equal(await hubFile(REPO, "config.json", opts(hub, cache, { revision: commit })), join(snapshot, "config.json"));
    assert.deepEqual(hub.requests, []);
  });

  test("a stale cache (the branch moved on the Hub) gets the new commit", async () => {
    const cache = tempCache();
    const root = storage(cache);
    const old = "0".repeat(40);
    mkdirSync(join(root, "refs"), { recursive: true });
    mkdirSync(join(root, "snapshots", old), { recursive: true });
    writeFileSync(join(root, "refs", "main"), old);
    writeFileSync(join(root, "snapshots", old, "config.json"), "{}");
    const r = await resolveModel(REPO, opts(hub, cache));
    assert.equal(r.dir, join(root, "snapshots", hub.commit(REPO)));
    assert.equal(readFileSync(join(root, "refs", "main"), "utf8"), hub.commit(REPO));
    assert.ok(readFileSync(join(r.dir, "config.json")).equals(readFileSync(join(SRC, "config.json"))));
  });

  test("when the Hub cannot be reached online, the cache is used with a warning", async () => {
    const cache = tempCache();
    const snapshot = writePythonCache(cache, hub, [...SMALL, "model.safetensors"]);
    const down = { url: `http://127.0.0.1:${await freePort()}` };
    const { value, text } = await captureStderr(() => resolveModel(REPO, opts(down, cache)));
    assert.equal(value.weights, join(snapshot, "model.safetensors"));
    assert.match(text, /warning: .*could not be reached.*using the cached BridgeTower\/e2e-fullvocab/);
    assert.equal(text.split("\n").filter(Boolean).length, 1, "one warning for the whole model");
  });

  test("a download cut halfway resumes with Range and leaves no partial file", async () => {
    const cache = tempCache();
    const info = hub.file(REPO, "model.safetensors");
    hub.cutOnce.add("model.safetensors");
    const { value: p, text } = await captureStderr(() => hubFile(REPO, "model.safetensors", opts(hub, cache)));
    assert.match(text, /interrupted.*resuming/);
    const ranges = hub.requests.filter((q) => q.method === "GET" && q.range).map((q) => q.range!);
    assert.equal(ranges.length, 1);
    const from = Number(/^bytes=(\d+)-$/.exec(ranges[0]!)![1]);
    assert.ok(from > 0 && from < info.size, `resumed at ${from}`);
    assert.ok(readFileSync(p!).equals(readFileSync(join(SRC, "model.safetensors"))));
    assert.deepEqual(readdirSync(join(storage(cache), "blobs")), [info.etag]);
  });

  test("an interrupted download with no retries left resumes on the next call", async () => {
    const cache = tempCache();
    const info = hub.file(REPO, "model.safetensors");
    const blobs = join(storage(cache), "blobs");
    const pointer = join(storage(cache), "snapshots", hub.commit(REPO), "model.safetensors");
    hub.cutOnce.add("model.safetensors");
    await rejectsHub(hubFile(REPO, "model.safetensors", opts(hub, cache, { retries: 0 })), /model\.safetensors/, /run again to resume/);
    assert.deepEqual(readdirSync(blobs), [`${info.etag}.incomplete`]);
    const partial = statSync(join(blobs, `${info.etag}.incomplete`)).size;
    assert.ok(partial > 0 && partial < info.size);
    assert.ok(!existsSync(pointer), "no pointer to a partial file");

    hub.requests.length = 0;
    assert.equal(await hubFile(REPO, "model.safetensors", opts(hub, cache, { retries: 0 })), pointer);
    assert.deepEqual(hub.requests.filter((q) => q.method === "GET").map((q) => q.range), [`bytes=${partial}-`]);
    assert.deepEqual(readdirSync(blobs), [info.etag]);
    assert.ok(readFileSync(pointer).equals(readFileSync(join(SRC, "model.safetensors"))));
  });

  test("a stalled download times out and resumes", async () => {
    const cache = tempCache();
    hub.stallOnce.add("vocab.json");
    const start = Date.now();
    const { value: p } = await captureStderr(() => hubFile(REPO, "vocab.json", opts(hub, cache, { readTimeoutMs: 200 })));
    assert.ok(Date.now() - start < 3000);
    assert.ok(readFileSync(p!).equals(readFileSync(join(SRC, "vocab.json"))));
    assert.equal(hub.requests.filter((q) => q.method === "GET" && q.range).length, 1);
  });

  test("a corrupt download is caught by its sha256 and discarded", async () => {
    const cache = tempCache();
    hub.corruptOnce.add("model.safetensors");
    await rejectsHub(hubFile(REPO, "model.safetensors", opts(hub, cache)), /corrupt/, /sha256/);
    assert.deepEqual(readdirSync(join(storage(cache), "blobs")), []);
    assert.ok(!existsSync(join(storage(cache), "snapshots", hub.commit(REPO), "model.safetensors")));
  });

  test("a private repo asks for HF_TOKEN; the token goes to the Hub but not to another host", async () => {
    hub.requireToken = "hf_secret";
    await rejectsHub(hubFile(REPO, "config.json", opts(hub, tempCache())), /BridgeTower\/e2e-fullvocab/, /gated or private/, /HF_TOKEN/);
    await rejectsHub(hubFile(REPO, "config.json", opts(hub, tempCache(), { token: "wrong" })), /refused/, /HF_TOKEN/);

    const cache = tempCache();
    assert.ok(await hubFile(REPO, "model.safetensors", opts(hub, cache, { token: "hf_secret" })));
    assert.ok(hub.requests.filter((q) => q.path.startsWith("/cdn/")).every((q) => q.authorization === "Bearer hf_secret"));

    hub.requests.length = 0;
    hub.cdnOtherHost = true;
    const p = await hubFile("BridgeTower/tiny-itc", "model.safetensors", opts(hub, cache, { token: "hf_secret" }));
    assert.ok(readFileSync(p!).equals(readFileSync(join(fixturesRoot(), "tiny-itc", "model.safetensors"))));
    const cdn = hub.requests.filter((q) => q.listener === "cdn");
    assert.equal(cdn.length, 1);
    assert.equal(cdn[0]!.authorization, undefined);
    assert.ok(hub.requests.filter((q) => q.listener === "hub").every((q) => q.authorization === "Bearer hf_secret"));
  });

  test("the token comes from HF_TOKEN, else from the token file in HF_HOME", async () => {
    hub.requireToken = "hf_env";
    process.env.HF_TOKEN = "hf_env";
    try {
      assert.ok(await hubFile(REPO, "config.json", opts(hub, tempCache())));
    } finally {
      delete process.env.HF_TOKEN;
    }
    mkdirSync(process.env.HF_HOME!, { recursive: true });
    writeFileSync(join(process.env.HF_HOME!, "token"), "hf_env\n");
    try {
      assert.ok(await hubFile(REPO, "config.json", opts(hub, tempCache())));
    } finally {
      rmSync(join(process.env.HF_HOME!, "token"));
    }
    await rejectsHub(hubFile(REPO, "config.json", opts(hub, tempCache())), /HF_TOKEN/);
  });

  test("404s name the file, the repo and the revision; optional files are skipped", async () => {
    const cache = tempCache();
    await rejectsHub(hubFile(REPO, "nope.json", opts(hub, cache)), /BridgeTower\/e2e-fullvocab/, /"nope\.json"/, /revision "main"/);
    assert.equal(await hubFile(REPO, "nope.json", { ...opts(hub, cache), optional: true }), undefined);
    await rejectsHub(hubFile("BridgeTower/no-such-repo", "config.json", opts(hub, cache)), /BridgeTower\/no-such-repo/, /no such repository/);
    await rejectsHub(hubFile("BridgeTower/no-such-repo", "x.json", { ...opts(hub, cache), optional: true }), /no such repository/);
    // The revision is one URL segment, percent-encoded as huggingface_hub does.
    await rejectsHub(hubFile(REPO, "config.json", opts(hub, cache, { revision: "refs/pr/1" })), /revision "refs\/pr\/1"/);
    assert.ok(hub.requests.some((q) => q.path === `/${REPO}/resolve/refs%2Fpr%2F1/config.json`));
  });

  test("a Hub that cannot be reached gives the no-network advice", async () => {
    await rejectsHub(
      resolveModel(REPO, opts({ url: `http://127.0.0.1:${await freePort()}` }, tempCache())),
      /could not be reached/, /ECONNREFUSED/, /local model folder/, /HF_HUB_OFFLINE/,
    );
  });

  test("a Hub that accepts but never answers times out", async () => {
    const sockets: Socket[] = [];
    const silent: NetServer = createNetServer((s) => sockets.push(s));
    await new Promise<void>((ok) => silent.listen(0, "127.0.0.1", ok));
    const port = (silent.address() as { port: number }).port;
    const start = Date.now();
    try {
      await rejectsHub(hubFile(REPO, "config.json", opts({ url: `http://127.0.0.1:${port}` }, tempCache(), { timeoutMs: 200 })), /could not be reached/, /ETIMEDOUT/);
      assert.ok(Date.now() - start < 2000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((ok) => silent.close(() => ok()));
    }
  });

  test("model.safetensors is preferred; pytorch_model.bin is the fallback", async () => {
    const cache = tempCache();
    const st = await resolveModel("BridgeTower/tiny-itc", opts(hub, cache));
    assert.equal(st.weights, join(st.dir, "model.safetensors"));
    assert.ok(!hub.requests.some((q) => q.path.endsWith("pytorch_model.bin")));
    const bin = await resolveModel("BridgeTower/tiny-itc-bin", opts(hub, cache));
    assert.equal(bin.weights, join(bin.dir, "pytorch_model.bin"));
    assert.ok(readFileSync(bin.weights).equals(readFileSync(join(fixturesRoot(), "tiny-itc", "pytorch_model.bin"))));
  });

  test("sharded safetensors: the index and every shard are fetched", async () => {
    const dir = join(scratch, "sharded-repo");
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(SRC, "config.json"), join(dir, "config.json"));
    const shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    shards.forEach((f, i) => writeFileSync(join(dir, f), Buffer.alloc(1000 + i, i + 1)));
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: { a: shards[0], b: shards[1], c: shards[1] } }));
    const sharded = await startHubServer({ "BridgeTower/sharded": { dir } });
    try {
      const r = await resolveModel("BridgeTower/sharded", opts(sharded, tempCache()));
      assert.equal(r.weights, join(r.dir, "model.safetensors.index.json"));
      for (const f of shards) assert.ok(readFileSync(join(r.dir, f)).equals(readFileSync(join(dir, f))));
    } finally {
      await sharded.close();
    }
  });

  test("two calls for the same file share one download", async () => {
    const cache = tempCache();
    const [a, b] = await Promise.all([0, 1].map(() => hubFile(REPO, "model.safetensors", opts(hub, cache))));
    assert.equal(a, b);
    assert.equal(hub.requests.filter((q) => q.method === "GET").length, 1);
  });

  test("a renamed repo's relative redirect is followed", async () => {
    const cache = tempCache();
    const p = await hubFile("BridgeTower/old-name", "config.json", opts(hub, cache));
    assert.equal(p, join(storage(cache, "BridgeTower/old-name"), "snapshots", hub.commit(REPO), "config.json"));
    assert.ok(readFileSync(p!).equals(readFileSync(join(SRC, "config.json"))));
  });

  test("nested files link to the blobs three levels up", async () => {
    const cache = tempCache();
    const p = await hubFile(REPO, "images/coffee.png", opts(hub, cache));
    assert.equal(readlinkSync(p!), `../../../blobs/${hub.file(REPO, "images/coffee.png").etag}`);
    assert.ok(readFileSync(p!).equals(readFileSync(join(SRC, "images/coffee.png"))));
  });

  test("without onProgress, big files report progress on stderr", async () => {
    const { text } = await captureStderr(() => hubFile(REPO, "model.safetensors", { ...opts(hub, tempCache()), onProgress: undefined }));
    assert.match(text, /BridgeTower\/e2e-fullvocab\/model\.safetensors: downloading 27\.3 MB/);
    assert.match(text, /model\.safetensors: downloaded 27\.3 MB/);
    const small = await captureStderr(() => hubFile(REPO, "vocab.json", { ...opts(hub, tempCache()), onProgress: undefined }));
    assert.equal(small.text, "");
  });
});

describe("hub ids and local folders", () => {
  test("a local folder is returned as is", async () => {
    const dir = join(fixturesRoot(), "e2e-fullvocab");
    assert.ok(isLocalFolder(dir));
    assert.deepEqual(await resolveModel(dir), { dir, weights: join(dir, "model.safetensors"), fromHub: false });
    assert.equal(await hubFile(dir, "config.json"), join(dir, "config.json"));
    assert.equal(await hubFile(dir, "tokenizer.json", { optional: true }), undefined);
    await rejectsHub(resolveModel(join(fixturesRoot(), "tokenizer")), /no weights/);
  });

  test("ids that are neither folders nor valid repo ids are refused before any request", async () => {
    const fetchImpl = (() => assert.fail("no request expected")) as typeof fetch;
    await rejectsHub(resolveModel("not a repo!", { fetchImpl }), /not a repo!/, /neither an existing model folder nor a valid Hub repo id/);
    await rejectsHub(resolveModel("./no/such/folder", { fetchImpl }), /no such model folder/);
    await rejectsHub(resolveModel("org/na--me", { fetchImpl }), /valid Hub repo id/);
    await rejectsHub(hubFile(REPO, "../escape", { fetchImpl }), /not a valid file path/);
    await rejectsHub(hubFile(REPO, "config.json", { fetchImpl, revision: "../../x" }), /not a valid revision/);
    await rejectsHub(resolveModel(join(fixturesRoot(), "e2e-fullvocab", "config.json"), { fetchImpl }), /is a file/);
  });

  test("ETags are normalized as huggingface_hub does", () => {
    assert.equal(normalizeEtag('W/"abc"'), "abc");
    assert.equal(normalizeEtag('"abc"'), "abc");
    assert.equal(normalizeEtag("abc"), "abc");
    assert.equal(normalizeEtag(null), undefined);
  });
});
