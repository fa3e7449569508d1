import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, open, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { deflateRawSync } from "node:zlib";
import fc from "fast-check";
import { CheckpointFormatError } from "../src/errors.js";
import { convertToSafetensors } from "../src/io/convert.js";
import { PyGlobal, unpickle } from "../src/io/pickle.js";
import { SafetensorsFile } from "../src/io/safetensors.js";
import { TorchBinFile } from "../src/io/torchbin.js";
import { crc32, readZipDirectory, type ZipEntry } from "../src/io/zip.js";
import { makeZip, Pk, statePickle, torchZip, u32, type TensorSpec, type ZipFileSpec } from "./helpers/craft.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const fixtures = process.env.BRIDGETOWER_FIXTURES ?? path.resolve(repoRoot, "../shared/fixtures");
const tinyBin = path.join(fixtures, "tiny-itc", "pytorch_model.bin");
const tinySt = path.join(fixtures, "tiny-itc", "model.safetensors");
const badDir = path.join(repoRoot, "test", "fixtures-bad");

function f32(...xs: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(xs).buffer);
}

function floats(b: Uint8Array): number[] {
  return [...new Float32Array(Uint8Array.from(b).buffer)];
}

let tmp = "";
let counter = 0;
async function tmpFile(bytes: Uint8Array, name = `t${counter++}.bin`): Promise<string> {
  const p = path.join(tmp, name);
  await writeFile(p, bytes);
  return p;
}

async function rejectsFormat(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CheckpointFormatError, `expected CheckpointFormatError, got ${e}`);
    assert.match(e.message, re);
    return true;
  });
}

async function directory(p: string): Promise<Map<string, ZipEntry>> {
  const fh = await open(p, "r");
  try {
    return await readZipDirectory(fh, p, (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}

async function openAndClose(p: string): Promise<TorchBinFile> {
  const f = await TorchBinFile.open(p);
  await f.close();
  return f;
}

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), "bridgetower-torchbin-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// A 2x3 float storage and views over it, shared by several tests.
const six = f32(0, 1, 2, 3, 4, 5);

describe("TorchBinFile on the tiny-itc fixture", () => {
  it("loads exactly the tensors of model.safetensors", async () => {
    const bin = await TorchBinFile.open(tinyBin);
    const st = await SafetensorsFile.open(tinySt);
    try {
      assert.deepEqual([...bin.entries.keys()].sort(), [...st.entries.keys()].sort());
      assert.equal(bin.entries.size, 206);
      for (const [name, e] of st.entries) {
        const b = bin.entries.get(name)!;
        assert.equal(b.dtype, e.dtype, name);
        assert.deepEqual(b.shape, e.shape, name);
        assert.equal(b.byteLength, e.byteLength, name);
        assert.ok(bin.isInPlace(name), name);
        assert.deepEqual(await bin.readBytes(name), await st.readBytes(name), name);
      }
      // In-place offsets really point at the tensor bytes in the file.
      const raw = readFileSync(tinyBin);
      const e = bin.entries.get("logit_scale")!;
      assert.deepEqual(new Uint8Array(raw.subarray(e.offset, e.offset + e.byteLength)), await st.readBytes("logit_scale"));
      await rejectsFormat(bin.readBytes("nope"), /no tensor named "nope"/);
    } finally {
      await bin.close();
      await st.close();
    }
  });

  it("converts to safetensors that equal the original tensors, atomically", async () => {
    const out = path.join(tmp, "converted.safetensors");
    const progress: [number, number][] = [];
    const r = await convertToSafetensors(tinyBin, out, (d, t) => progress.push([d, t]));
    assert.equal(r.tensors, 206);
    assert.equal(r.bytes, 498566 * 4);
    assert.deepEqual(progress.at(-1), [r.bytes, r.bytes]);
    assert.ok(progress.every(([d], i) => i === 0 || d >= progress[i - 1][0]));
    const a = await SafetensorsFile.open(out);
    const b = await SafetensorsFile.open(tinySt);
    try {
      assert.deepEqual([...a.entries.keys()].sort(), [...b.entries.keys()].sort());
      for (const [name, e] of b.entries) {
        assert.equal(a.entries.get(name)!.dtype, e.dtype);
        assert.deepEqual(a.entries.get(name)!.shape, e.shape);
        assert.deepEqual(await a.readBytes(name), await b.readBytes(name), name);
      }
      assert.equal(a.metadata.format, "pt");
    } finally {
      await a.close();
      await b.close();
    }
    assert.ok(!(await readdir(tmp)).some((n) => n.includes(".tmp-")));
  });

  it("leaves no output and no temporary file when conversion fails", async () => {
    const out = path.join(tmp, "failed.safetensors");
    await assert.rejects(
      convertToSafetensors(tinyBin, out, (d) => {
        if (d > 0) throw new Error("stop");
      }),
      /stop/,
    );
    assert.ok(!existsSync(out));
    assert.ok(!(await readdir(tmp)).some((n) => n.startsWith("failed.safetensors")));
    await rejectsFormat(convertToSafetensors(path.join(tmp, "missing.bin"), out), /cannot open/);
  });
});

describe("TorchBinFile views", () => {
  it("reads a real torch.save file with views, shared storages and many dtypes", async () => {
    const expected = JSON.parse(readFileSync(path.join(badDir, "torch-views.json"), "utf8")) as Record<
      string,
      { dtype: string; shape: number[]; contiguous: boolean; hex: string }
    >;
    const f = await TorchBinFile.open(path.join(badDir, "torch-views.bin"));
    try {
      assert.deepEqual([...f.entries.keys()], Object.keys(expected));
      for (const [name, x] of Object.entries(expected)) {
        const e = f.entries.get(name)!;
        assert.equal(e.dtype, x.dtype, name);
        assert.deepEqual(e.shape, x.shape, name);
        assert.equal(f.isInPlace(name), x.contiguous, name);
        assert.equal(e.offset < 0, !x.contiguous, name);
        assert.equal(Buffer.from(await f.readBytes(name)).toString("hex"), x.hex, name);
      }
    } finally {
      await f.close();
    }
    const out = path.join(tmp, "views.safetensors");
    await convertToSafetensors(path.join(badDir, "torch-views.bin"), out);
    const s = await SafetensorsFile.open(out);
    try {
      for (const [name, x] of Object.entries(expected)) assert.equal(Buffer.from(await s.readBytes(name)).toString("hex"), x.hex, name);
    } finally {
      await s.close();
    }
  });

  it("gathers crafted non-contiguous views by their strides", async () => {
    const pkl = statePickle([
      { name: "m", key: "0", numel: 6, size: [2, 3], stride: [3, 1] },
      { name: "m_t", key: "0", numel: 6, size: [3, 2], stride: [1, 3] },
      { name: "col", key: "0", numel: 6, offset: 1, size: [2], stride: [3] },
      { name: "tail", key: "0", numel: 6, offset: 4, size: [2], stride: [1] },
      { name: "sub", key: "0", numel: 6, offset: 1, size: [2, 2], stride: [3, 1] },
      { name: "ids", key: "1", storage: "LongStorage", numel: 3, size: [1, 3], stride: [3, 1] },
    ]);
    const ids = new Uint8Array(BigInt64Array.from([0n, 1n, 2n]).buffer);
    const p = await tmpFile(torchZip(pkl, { "0": six, "1": ids }));
    const f = await TorchBinFile.open(p);
    try {
      assert.deepEqual(floats(await f.readBytes("m")), [0, 1, 2, 3, 4, 5]);
      assert.deepEqual(floats(await f.readBytes("m_t")), [0, 3, 1, 4, 2, 5]);
      assert.deepEqual(floats(await f.readBytes("col")), [1, 4]);
      assert.deepEqual(floats(await f.readBytes("tail")), [4, 5]);
      assert.deepEqual(floats(await f.readBytes("sub")), [1, 2, 4, 5]);
      assert.deepEqual(await f.readBytes("ids"), ids);
      assert.equal(f.entries.get("ids")!.dtype, "I64");
      assert.deepEqual(
        ["m", "m_t", "col", "tail", "sub"].map((n) => f.isInPlace(n)),
        [true, false, false, true, false],
      );
      assert.equal(f.entries.get("m_t")!.offset, -1);
      assert.equal(f.entries.get("m_t")!.byteLength, 24);
      // A contiguous view at an offset points into the shared storage.
      assert.equal(f.entries.get("tail")!.offset, f.entries.get("m")!.offset + 16);
    } finally {
      await f.close();
    }
  });

  it("reads _rebuild_tensor_v3 over an UntypedStorage with a dtype, and _rebuild_parameter", async () => {
    const pkl = new Pk().proto().global("collections", "OrderedDict").emptyTuple().reduce().mark()
      .str("v3").global("torch._utils", "_rebuild_tensor_v3").mark()
      .mark().str("storage").global("torch", "UntypedStorage").str("0").str("cpu").int(24).tuple().op(0x51)
      .int(1).ints([2]).ints([1]).op(0x89).global("collections", "OrderedDict").emptyTuple().reduce()
      .global("torch", "float32").tuple().reduce()
      .str("p").global("torch._utils", "_rebuild_parameter").mark()
      .global("torch._utils", "_rebuild_tensor_v2").mark()
      .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(6).tuple().op(0x51)
      .int(3).ints([3]).ints([1]).op(0x89).global("collections", "OrderedDict").emptyTuple().reduce().tuple().reduce()
      .op(0x88).global("collections", "OrderedDict").emptyTuple().reduce().tuple().reduce()
      .op(0x75).stop().bytes();
    const f = await TorchBinFile.open(await tmpFile(torchZip(pkl, { "0": six })));
    try {
      assert.equal(f.entries.get("v3")!.dtype, "F32");
      assert.deepEqual(floats(await f.readBytes("v3")), [1, 2]);
      assert.deepEqual(floats(await f.readBytes("p")), [3, 4, 5]);
    } finally {
      await f.close();
    }
  });

  it("reads a crafted zip64 archive (zip64 end record, locator and extra fields)", async () => {
    const pkl = statePickle([{ name: "m_t", key: "0", numel: 6, size: [3, 2], stride: [1, 3] }]);
    const p = await tmpFile(torchZip(pkl, { "0": six }, { zip64: true }));
    const f = await TorchBinFile.open(p);
    try {
      assert.deepEqual(floats(await f.readBytes("m_t")), [0, 3, 1, 4, 2, 5]);
    } finally {
      await f.close();
    }
  });

  it("accepts a little-endian byteorder record and refuses big-endian", async () => {
    const pkl = statePickle([{ name: "m", key: "0", numel: 6, size: [6], stride: [1] }]);
    const little = { name: "archive/byteorder", data: Buffer.from("little") };
    await openAndClose(await tmpFile(torchZip(pkl, { "0": six }, { extra: [little] })));
    const big = { name: "archive/byteorder", data: Buffer.from("big") };
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(pkl, { "0": six }, { extra: [big] }))), /big-endian/);
  });

  it("refuses a storage shorter than its view", async () => {
    const view = statePickle([{ name: "w", key: "0", numel: 6, offset: 2, size: [2, 3], stride: [3, 1] }]);
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(view, { "0": six }))), /needs 32 bytes but storage "0" has 24/);
    const strided = statePickle([{ name: "w", key: "0", numel: 6, size: [3, 3], stride: [1, 3] }]);
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(strided, { "0": six }))), /storage "0"/);
    // The persistent id claims more elements than the zip entry holds.
    const entry = statePickle([{ name: "w", key: "0", numel: 8, size: [8], stride: [1] }]);
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(entry, { "0": six }))), /entry has only 24 bytes/);
    // An expanded view (stride 0) larger than its storage.
    const expanded = statePickle([{ name: "w", key: "0", numel: 6, size: [1000, 6], stride: [0, 1] }]);
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(expanded, { "0": six }))), /larger than its storage/);
    const missing = statePickle([{ name: "w", key: "9", numel: 6, size: [6], stride: [1] }]);
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(missing, { "0": six }))), /no zip entry archive\/data\/9/);
  });
});

describe("restricted unpickler", () => {
  const hostile = (cmd: string) => [
    ["os.system", new Pk().proto().global("os", "system").str(cmd).op(0x85).reduce().stop().bytes()],
    ["posix.system", new Pk().proto().global("posix", "system").str(cmd).op(0x85).reduce().stop().bytes()],
    ["builtins.eval", new Pk().proto(4).stackGlobal("builtins", "eval").str(`__import__('os').system('${cmd}')`).op(0x85).reduce().stop().bytes()],
    ["__builtin__.getattr", new Pk().proto().global("__builtin__", "getattr").stop().bytes()],
    ["torch.load", new Pk().proto().global("torch", "load").stop().bytes()],
  ] as const;

  it("refuses hostile globals inside a valid zip, without executing them", async () => {
    const marker = path.join(tmp, "pwned");
    for (const [what, pkl] of hostile(`touch ${marker}`)) {
      const p = await tmpFile(torchZip(pkl, {}));
      await rejectsFormat(TorchBinFile.open(p), new RegExp(`refused to load global "${what.replace(".", "\\.")}"`));
    }
    // A hostile call hidden in a tensor's backward hooks.
    const sneaky = new Pk().proto().global("collections", "OrderedDict").emptyTuple().reduce().mark().str("w")
      .global("torch._utils", "_rebuild_tensor_v2").mark()
      .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(6).tuple().op(0x51)
      .int(0).ints([6]).ints([1]).op(0x89).global("os", "system").str(`touch ${marker}`).op(0x85).reduce()
      .tuple().reduce().op(0x75).stop().bytes();
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(sneaky, { "0": six }))), /refused to load global "os\.system"/);
    assert.ok(!existsSync(marker));
  });

  it("refuses opcodes that import or call objects", () => {
    const opts = { input: "x", globals: new Map<string, PyGlobal>() };
    assert.throws(() => unpickle(new Pk().proto().raw("ios\nsystem\n").stop().bytes(), opts), /INST/);
    assert.throws(() => unpickle(new Pk().proto().mark().raw("o").stop().bytes(), opts), /OBJ/);
    assert.throws(() => unpickle(new Pk().proto().op(0x82, 1).stop().bytes(), opts), /EXT1/);
    assert.throws(() => unpickle(new Pk().proto().op(0xff).bytes(), opts), /unknown opcode 0xff at byte 2/);
    assert.throws(() => unpickle(new Pk().proto(6).bytes(), opts), /protocol 6/);
    // A callable not allowed to be called (a storage type) through REDUCE.
    const g = new Map([["torch.FloatStorage", new PyGlobal("torch", "FloatStorage")]]);
    assert.throws(() => unpickle(new Pk().global("torch", "FloatStorage").emptyTuple().reduce().stop().bytes(), { input: "x", globals: g }), /not callable/);
  });

  it("reads the value opcodes", () => {
    const pk = new Pk().proto(4).op(0x95, 8, 0, 0, 0, 0, 0, 0, 0).mark() // FRAME
      .op(0x4e, 0x88, 0x89) // None True False
      .op(0x4a, ...u32(-5 >>> 0)) // BININT -5
      .op(0x8a, 2, 0x00, 0x80) // LONG1 -32768
      .op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1) // LONG1 2**64
      .op(0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0) // BINFLOAT 1.5
      .op(0x8c, 3).raw(Buffer.from("hé"))
      .op(0x43, 2, 7, 8) // SHORT_BINBYTES
      .op(0x5d).op(0x94).int(1).op(0x61).int(2).op(0x61) // [1, 2], memoized as 0
      .op(0x7d).str("k").int(3).op(0x73) // {"k": 3}
      .op(0x68, 0) // BINGET 0: the same list
      .op(0x74).stop().bytes();
    const v = unpickle(pk, { input: "x", globals: new Map() }) as unknown[];
    assert.deepEqual(v.slice(0, 8), [null, true, false, -5, -32768, 2n ** 64n, 1.5, "hé"]);
    assert.deepEqual(v[8], Uint8Array.from([7, 8]));
    assert.deepEqual(v[9], [1, 2]);
    assert.deepEqual(v[10], new Map([["k", 3]]));
    assert.equal(v[11], v[9]);
  });

  it("refuses truncated pickles and absurd lengths with clear errors", async () => {
    const full = statePickle([{ name: "w", key: "0", numel: 6, size: [2, 3], stride: [3, 1] }]);
    // Every proper prefix fails cleanly.
    for (let n = 0; n < full.length; n++) {
      const p = await tmpFile(torchZip(full.subarray(0, n), { "0": six }), "prefix.bin");
      await rejectsFormat(TorchBinFile.open(p), /invalid pickle/);
    }
    const opts = { input: "x", globals: new Map<string, PyGlobal>() };
    assert.throws(() => unpickle(new Pk().proto().str("abc").bytes().subarray(0, 8), opts), /truncated: BINUNICODE at byte 2 needs 3 more bytes/);
    assert.throws(() => unpickle(new Pk().proto().op(0x58, 0xf0, 0xff, 0xff, 0xff).stop().bytes(), opts), /BINUNICODE .* needs 4294967280 more bytes/);
    assert.throws(() => unpickle(new Pk().proto(4).op(0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80).stop().bytes(), opts), /truncated: BINUNICODE8/);
    assert.throws(() => unpickle(new Pk().proto().op(0x8b, 0, 0, 0, 1).stop().bytes(), opts), /LONG4 .* too large/);
    assert.throws(() => unpickle(new Pk().proto().op(0x68, 3).stop().bytes(), opts), /memo key 3/);
    assert.throws(() => unpickle(new Pk().proto().int(1).int(2).stop().bytes(), opts), /2 values on the stack/);
    assert.throws(() => unpickle(new Pk().proto().op(0x30).stop().bytes(), opts), /POP at byte 2 pops an empty stack/);
    assert.throws(() => unpickle(new Pk().proto().int(1).op(0x75).stop().bytes(), opts), /without a MARK/);
    const deep = new Pk().proto();
    for (let i = 0; i < 5000; i++) deep.mark();
    assert.throws(() => unpickle(deep.stop().bytes(), opts), /MARKs nested deeper/);
  });

  it("keeps a tensor's validated size even if the pickle mutates it afterwards", async () => {
    // size passed as a list (memo 90), then appended to after the tensor was rebuilt
    const withList = (tupleSize: boolean) => {
      const p = new Pk().proto().global("collections", "OrderedDict").emptyTuple().reduce().mark().str("w")
        .global("torch._utils", "_rebuild_tensor_v2").mark()
        .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(6).tuple().op(0x51).int(0);
      if (tupleSize) p.ints([6]);
      else p.op(0x5d).int(6).op(0x61);
      p.op(0x71, 90).ints([1]).op(0x89).global("collections", "OrderedDict").emptyTuple().reduce().tuple().reduce();
      return p.op(0x68, 90).int(1000).op(0x61, 0x30).op(0x75).stop().bytes();
    };
    const f = await TorchBinFile.open(await tmpFile(torchZip(withList(false), { "0": six })));
    assert.deepEqual(f.entries.get("w")!.shape, [6]);
    assert.deepEqual(floats(await f.readBytes("w")), [0, 1, 2, 3, 4, 5]);
    await f.close();
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(withList(true), { "0": six }))), /APPEND at byte \d+ targets a value that is not a list/);
  });

  it("refuses a pickle that is not a state dict", async () => {
    const list = new Pk().proto().op(0x5d).stop().bytes();
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(list, {}))), /does not hold a state dict/);
    const badPid = new Pk().proto().mark().str("storage").tuple().op(0x51).stop().bytes();
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(badPid, {}))), /persistent id/);
    const badType = statePickle([{ name: "w", key: "0", storage: "ComplexFloatStorage", numel: 6, size: [6], stride: [1] }]);
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(badType, { "0": six }))), /refused to load global "torch\.ComplexFloatStorage"/);
  });
});

describe("zip container", () => {
  const pkl = statePickle([{ name: "w", key: "0", numel: 6, size: [6], stride: [1] }]);
  const good = torchZip(pkl, { "0": six });
  const eocdAt = good.length - 22;
  const cdOffset = Buffer.from(good).readUInt32LE(eocdAt + 16);

  it("refuses broken central directories and end records", async () => {
    const mutate = (f: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      f(b);
      return b;
    };
    await rejectsFormat(TorchBinFile.open(await tmpFile(mutate((b) => b.writeUInt32LE(0, cdOffset)))), /central directory entry 0 is corrupt/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(mutate((b) => b.writeUInt32LE(good.length, eocdAt + 16)))), /runs past its end record/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(mutate((b) => b.writeUInt16LE(200, eocdAt + 10)))), /multi-disk|cannot fit/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(mutate((b) => b.writeUInt32LE(0x7fffffff, cdOffset + 42)))), /local header offset/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(mutate((b) => b.writeUInt32LE(0xffffff, cdOffset + 20)))), /runs past the data area|has size/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(mutate((b) => b.writeUInt32LE(0, 0)))), /no local header/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(mutate((b) => (b[100] ^= 1)))), /CRC-32/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(good.subarray(0, good.length - 10))), /end of central directory record not found/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(new Uint8Array(10))), /too short/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(Buffer.from("not a zip at all, just some text"))), /not found/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(new Pk().proto().op(0x8a, 0x0a).bytes())), /legacy/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(makeZip([{ name: "x/other.pkl", data: pkl }]))), /no <archive>\/data\.pkl/);
    await rejectsFormat(TorchBinFile.open(path.join(tmp, "does-not-exist.bin")), /cannot open/);
  });

  it("refuses compressed (deflate) entries, naming them", async () => {
    const z = makeZip([
      { name: "archive/data.pkl", data: pkl },
      { name: "archive/data/0", data: six, method: 8 },
    ]);
    await rejectsFormat(TorchBinFile.open(await tmpFile(z)), /zip entry "archive\/data\/0" is compressed \(method 8\)/);
    await rejectsFormat(TorchBinFile.open(await tmpFile(torchZip(pkl, { "0": six }, { pklMethod: 8 }))), /"archive\/data\.pkl" is compressed/);
  });
});

describe("mutation fuzz (every run: a valid file or a CheckpointFormatError)", () => {
  /** Opens, reads every tensor, closes; returns the error, which must be a CheckpointFormatError. */
  async function outcome(p: string): Promise<"ok" | "error"> {
    try {
      const f = await TorchBinFile.open(p);
      try {
        for (const name of f.entries.keys()) {
          const b = await f.readBytes(name);
          assert.equal(b.length, f.entries.get(name)!.byteLength);
        }
      } finally {
        await f.close();
      }
      return "ok";
    } catch (e) {
      if (e instanceof CheckpointFormatError) return "error";
      throw e;
    }
  }

  const flips = (len: number, hot: fc.Arbitrary<number>) =>
    fc.array(fc.record({ at: fc.oneof(hot, fc.integer({ min: 0, max: len - 1 })), xor: fc.integer({ min: 1, max: 255 }) }), {
      minLength: 1,
      maxLength: 6,
    });

  it("tiny-itc pytorch_model.bin: byte flips and truncation", { timeout: 300_000 }, async () => {
    const b = readFileSync(tinyBin);
    const zip = await directory(tinyBin);
    const pklEntry = zip.get("pytorch_model/data.pkl")!;
    const cdStart = Math.max(...[...zip.values()].map((e) => e.dataOffset + e.size));
    // Hot spots: the pickle, local headers, the central directory and end records.
    const hot = fc.oneof(
      fc.integer({ min: 0, max: pklEntry.dataOffset + pklEntry.size }),
      fc.integer({ min: cdStart, max: b.length - 1 }),
      fc.tuple(fc.constantFrom(...[...zip.values()].map((e) => e.localHeaderOffset)), fc.nat(80)).map(([o, d]) => o + d),
    );
    const counts = { ok: 0, error: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          flips(b.length, hot).map((fl) => ({ fl, cut: b.length })),
          fc.integer({ min: 0, max: b.length - 1 }).map((cut) => ({ fl: [], cut })),
        ),
        async ({ fl, cut }) => {
          const m = Buffer.from(b.subarray(0, cut));
          for (const { at, xor } of fl) if (at < m.length) m[at] ^= xor;
          counts[await outcome(await tmpFile(m, "fuzz.bin"))]++;
        },
      ),
      { numRuns: 200, seed: 2024 },
    );
    assert.ok(counts.error > 50, JSON.stringify(counts));
    assert.ok(process.resourceUsage().maxRSS < 1.5e6, `max RSS ${process.resourceUsage().maxRSS} KB`);
  });

  it("tiny-itc data.pkl: flips, truncation and inserted opcodes inside a valid zip", { timeout: 300_000 }, async () => {
    const raw = readFileSync(tinyBin);
    const zip = await directory(tinyBin);
    const bytesOf = (name: string) => {
      const e = zip.get(name)!;
      return new Uint8Array(raw.subarray(e.dataOffset, e.dataOffset + e.size));
    };
    const pkl = bytesOf("pytorch_model/data.pkl");
    const storages = [...zip.keys()].filter((n) => n.includes("/data/")).map((name) => ({ name, data: bytesOf(name) }));
    const hotOps = [0x63, 0x52, 0x51, 0x58, 0x8d, 0x72, 0x6a, 0x28, 0x74, 0x75, 0x62, 0x93, 0x81, 0x95, 0x30, 0x2e];
    const counts = { ok: 0, error: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          flips(pkl.length, fc.integer({ min: 0, max: 400 })).map((fl) => ({ fl, cut: pkl.length, ins: [] as [number, number][] })),
          fc.integer({ min: 0, max: pkl.length - 1 }).map((cut) => ({ fl: [], cut, ins: [] as [number, number][] })),
          fc.array(fc.tuple(fc.integer({ min: 0, max: pkl.length - 1 }), fc.constantFrom(...hotOps)), { minLength: 1, maxLength: 4 })
            .map((ins) => ({ fl: [], cut: pkl.length, ins })),
        ),
        async ({ fl, cut, ins }) => {
          let m = Buffer.from(pkl.subarray(0, cut));
          for (const { at, xor } of fl) if (at < m.length) m[at] ^= xor;
          for (const [at, op] of ins) m = Buffer.concat([m.subarray(0, at), Buffer.from([op]), m.subarray(at)]);
          const z = makeZip([{ name: "pytorch_model/data.pkl", data: m }, ...storages]);
          counts[await outcome(await tmpFile(z, "fuzz-pkl.bin"))]++;
        },
      ),
      { numRuns: 200, seed: 7 },
    );
    assert.ok(counts.error > 50, JSON.stringify(counts));
    assert.ok(counts.ok > 0, JSON.stringify(counts));
  });
});
