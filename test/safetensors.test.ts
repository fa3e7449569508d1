/** The safetensors reader on bad files: every problem is a CheckpointFormatError naming the file, quickly. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import fc from "fast-check";
import { CheckpointFormatError } from "../src/errors.js";
import { SafetensorsFile, writeSafetensors } from "../src/io/safetensors.js";
import { bytesToFloat32 } from "../src/io/tensors.js";
import { fixture } from "./helpers/fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "bt-st-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A file from a header object and data bytes. */
function file(name: string, header: unknown, data: Uint8Array = new Uint8Array(0), rawHeader?: string): string {
  const h = Buffer.from(rawHeader ?? JSON.stringify(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const p = join(tmp, name);
  writeFileSync(p, Buffer.concat([len, h, data]));
  return p;
}

async function refused(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(SafetensorsFile.open(path), (e: unknown) => e instanceof CheckpointFormatError && e.message.includes(path) && pattern.test(e.message));
}

describe("safetensors reader", () => {
  it("round-trips what writeSafetensors writes, including 0-d and empty tensors", async () => {
    const p = join(tmp, "ok.safetensors");
    await writeSafetensors(p, [
      ["a", { dtype: "F32", shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }],
      ["s", { dtype: "F32", shape: [], data: Float32Array.of(7) }],
      ["e", { dtype: "I64", shape: [0], data: new BigInt64Array(0) }],
    ], { format: "pt" });
    const f = await SafetensorsFile.open(p);
    assert.deepEqual([...bytesToFloat32(await f.readBytes("a"), "F32")], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(f.entries.get("s")!.shape, []);
    assert.equal(f.metadata.format, "pt");
    assert.equal(f.entries.get("a")!.offset % 8, 0, "data aligned");
    await f.close();
  });

  it("refuses bad headers before allocating", async () => {
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(2n ** 62n);
    writeFileSync(join(tmp, "huge"), huge);
    await refused(join(tmp, "huge"), /exceeds/);
    const past = Buffer.alloc(16);
    past.writeBigUInt64LE(1000n);
    writeFileSync(join(tmp, "past"), past);
    await refused(join(tmp, "past"), /past the end/);
    writeFileSync(join(tmp, "tiny"), Buffer.from([1, 2]));
    await refused(join(tmp, "tiny"), /shorter than/);
    await refused(file("notjson", null, undefined, "{nope"), /not valid UTF-8 JSON/);
    await refused(file("array", [1, 2]), /not a JSON object/);
  });

  it("refuses inconsistent tensors", async () => {
    const d = new Uint8Array(32);
    await refused(file("dtype", { a: { dtype: "Q4", shape: [1], data_offsets: [0, 4] } }, d), /unknown dtype/);
    await refused(file("shape", { a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, d), /invalid shape/);
    await refused(file("size", { a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, d), /needs 12/);
    await refused(file("range", { a: { dtype: "F32", shape: [16], data_offsets: [0, 64] } }, d), /past the end of the data/);
    await refused(file("order", { a: { dtype: "F32", shape: [1], data_offsets: [8, 4] } }, d), /invalid data_offsets/);
    await refused(file("overlap", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, d), /overlap/);
    await refused(file("dup", undefined, d, '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'), /listed twice/);
  });

  it("fuzz: mutated real checkpoints open or fail with CheckpointFormatError", async () => {
    const orig = readFileSync(fixture("tiny-default", "model.safetensors")).subarray(0, 40_000);
    const headerLen = Number(orig.readBigUInt64LE(0));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(headerLen + 8 + 64), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.option(fc.nat(orig.length)),
        async (flips, cut) => {
          const b = Buffer.from(orig);
          for (const [i, v] of flips) b[i] = v;
          const p = join(tmp, "fuzz.safetensors");
          writeFileSync(p, cut == null ? b : b.subarray(0, cut));
          try {
            const f = await SafetensorsFile.open(p);
            for (const name of [...f.entries.keys()].slice(0, 3)) await f.readBytes(name);
            await f.close();
          } catch (e) {
            if (!(e instanceof CheckpointFormatError)) throw e;
          }
        },
      ),
      { numRuns: 300, seed: 42 },
    );
  });
});
