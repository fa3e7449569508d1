/**
 * The int8 weight cache never changes a result: a file damaged in place (flipped bytes, same size), truncated,
 * emptied, or made for another checkpoint is detected when opened, reported once and rebuilt, and the run gives
 * exactly the numbers of a fresh build. Two loads building the same file at once both succeed.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { after, describe, it } from "node:test";
import { blockSums } from "../src/io/block-sums.js";
import { checkCacheFile, readCacheKey, writeCacheFile } from "../src/io/cache-file.js";
import { BridgeTowerForImageAndTextRetrieval } from "../src/index.js";
import type { Tensor } from "../src/model/tensor.js";
import { fixture, readAll } from "./helpers/fixtures.js";

const root = mkdtempSync(join(tmpdir(), "bt-cache-"));
after(() => rmSync(root, { recursive: true, force: true }));

async function logits(model: string, cache: string, warnings: string[] = []): Promise<Float32Array> {
  const inputs = await readAll(fixture(model, "inputs.safetensors"));
  const m = await BridgeTowerForImageAndTextRetrieval.fromPretrained(fixture(model), {
    dtype: "int8", int8CacheDir: cache, onWarning: (w) => warnings.push(w), onProgress: () => {},
  });
  try {
    const out = await m.run({ inputIds: inputs.get("input_ids") as Tensor<BigInt64Array>, attentionMask: inputs.get("attention_mask") as Tensor<BigInt64Array>, pixelValues: inputs.get("pixel_values") as Tensor<Float32Array> });
    return out["itm.logits"].data as Float32Array;
  } finally {
    await m.dispose();
  }
}

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name));
}

const damages: Record<string, (path: string) => void> = {
  "one byte flipped in every 4 KiB (same size)": (p) => {
    const b = readFileSync(p);
    for (let i = 100; i < b.length; i += 4096) b[i] ^= 0x5a;
    writeFileSync(p, b);
  },
  "one data byte flipped in the middle": (p) => {
    const b = readFileSync(p);
    b[Math.floor(b.length / 2)] ^= 1;
    writeFileSync(p, b);
  },
  truncated: (p) => truncateSync(p, Math.floor(statSync(p).size * 0.7)),
  emptied: (p) => truncateSync(p, 0),
};

describe("int8 cache integrity", () => {
  const model = "tiny-default";
  const cache = join(root, "main");
  let fresh: Float32Array;
  let path: string;

  it("a fresh build, then a reuse without warnings", async () => {
    fresh = await logits(model, cache);
    [path] = files(cache);
    assert.match(path, /weights-int8\.bin$/);
    const warnings: string[] = [];
    assert.deepEqual(await logits(model, cache, warnings), fresh);
    assert.deepEqual(warnings, []);
  });

  for (const [what, damage] of Object.entries(damages))
    it(`${what}: detected, rebuilt, same numbers`, async () => {
      const before = readFileSync(path);
      damage(path);
      const warnings: string[] = [];
      assert.deepEqual(await logits(model, cache, warnings), fresh);
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0], /rebuilding it/);
      assert.deepEqual(readFileSync(path), before, "rebuilt byte for byte");
      assert.deepEqual(files(cache), [path], "no temporary files left");
    });

  it("a file made for another checkpoint at the same path (stale key) is rebuilt", async () => {
    const other = join(root, "other");
    await logits("tiny-itc", other);
    const [otherPath] = files(other);
    copyFileSync(otherPath, path);
    const warnings: string[] = [];
    assert.deepEqual(await logits(model, cache, warnings), fresh);
    assert.match(warnings.join("\n"), /stale key/);
  });

  it("two loads building the same file at once both succeed with the same numbers", async () => {
    const both = join(root, "both");
    const [a, b] = await Promise.all([logits(model, both), logits(model, both)]);
    assert.deepEqual(a, fresh);
    assert.deepEqual(b, fresh);
    assert.equal(files(both).length, 1);
  });
});

describe("cache file checksums (several 4 MiB blocks)", () => {
  const BLOCK = 4 << 20;
  const size = 5 * BLOCK + 12345;
  const path = join(root, "blocks.bin");
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i += 997) data[i] = i & 0xff;

  it("a whole file passes; one flipped byte in any block is found in that block, and only there", async () => {
    await writeCacheFile(path, "key-1", size, async (fh) => void (await fh.write(data, 0, size, 0)));
    const { key, size: recorded } = (await readCacheKey(path)) as { key: string; size: number };
    assert.deepEqual([key, recorded], ["key-1", size]);
    assert.equal(await checkCacheFile(path, "key-1", size), undefined);
    const whole = readFileSync(path);
    for (let block = 0; block < 6; block++) {
      const damaged = Buffer.from(whole);
      damaged[Math.min(block * BLOCK + 777, size - 1)] ^= 0x10;
      writeFileSync(path, damaged);
      assert.match((await checkCacheFile(path, "key-1", size)) ?? "passed", new RegExp(`^block ${block} \\(`), `damage in block ${block}`);
    }
    writeFileSync(path, whole);
    assert.equal(await checkCacheFile(path, "key-2", size), "it was made for another checkpoint, format or onnxruntime version (stale key)");
  });
});

describe("block sums (the WebAssembly loop)", () => {
  /** The sums as block-sums.ts defines them, in plain JavaScript. */
  function reference(bytes: Uint8Array): number {
    const padded = new Uint8Array(Math.ceil(bytes.length / 64) * 64);
    padded.set(bytes);
    const words = new Uint32Array(padded.buffer);
    const a = new Uint32Array(4), b = new Uint32Array(4);
    for (let i = 0; i < words.length; i += 4)
      for (let l = 0; l < 4; l++) {
        a[l] += words[i + l];
        b[l] += a[l];
      }
    return crc32(Buffer.concat([Buffer.from(a.buffer), Buffer.from(b.buffer)]));
  }

  it("match a plain JavaScript computation, for whole and partial blocks of odd sizes", async () => {
    const path = join(root, "sums.bin");
    const data = randomBytes(3 * 100_003 + 77);
    writeFileSync(path, data);
    for (const block of [100_003, 65_536, data.length, 2 * data.length]) {
      const want = Array.from({ length: Math.ceil(data.length / block) }, (_, i) => reference(data.subarray(i * block, (i + 1) * block)));
      assert.deepEqual(await blockSums(path, data.length, block), want, `block ${block}`);
    }
    // A prefix of the file only, as for cache data followed by its trailer.
    assert.deepEqual(await blockSums(path, 1000, 4096), [reference(data.subarray(0, 1000))]);
  });
});
