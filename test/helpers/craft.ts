/** Crafting helpers for tests: pickles and zips written the way torch.save writes them. */
import { deflateRawSync } from "node:zlib";
import { crc32 } from "../../src/io/zip.js";


/** Pickle bytes, opcode by opcode. */
export class Pk {
  private b: number[] = [];
  op(...xs: number[]) {
    for (const x of xs) this.b.push(x);
    return this;
  }
  raw(s: string | Uint8Array) {
    return this.op(...(typeof s === "string" ? Buffer.from(s, "latin1") : s));
  }
  proto(v = 2) { return this.op(0x80, v); }
  global(m: string, n: string) { return this.op(0x63).raw(`${m}\n${n}\n`); }
  stackGlobal(m: string, n: string) { return this.str(m).str(n).op(0x93); }
  str(s: string) {
    const u = Buffer.from(s, "utf8");
    return this.op(0x58, ...u32(u.length)).raw(u);
  }
  int(n: number) {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    return this.op(0x4a, ...u32(n >>> 0));
  }
  ints(xs: number[]) {
    this.mark();
    for (const x of xs) this.int(x);
    return this.tuple();
  }
  mark() { return this.op(0x28); }
  tuple() { return this.op(0x74); }
  emptyTuple() { return this.op(0x29); }
  reduce() { return this.op(0x52); }
  stop() { return this.op(0x2e); }
  bytes() { return Uint8Array.from(this.b); }
}

export function u32(n: number) {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

export interface TensorSpec {
  name: string;
  key: string;
  storage?: string; // torch storage class, FloatStorage by default
  numel: number; // storage numel in the persistent id
  offset?: number;
  size: number[];
  stride: number[];
}

/** A state-dict pickle exactly like torch.save's (protocol 2, _rebuild_tensor_v2, persistent ids). */
export function statePickle(tensors: TensorSpec[]): Uint8Array {
  const p = new Pk().proto().global("collections", "OrderedDict").emptyTuple().reduce().mark();
  for (const t of tensors) {
    p.str(t.name).global("torch._utils", "_rebuild_tensor_v2").mark();
    p.mark().str("storage").global("torch", t.storage ?? "FloatStorage").str(t.key).str("cpu").int(t.numel).tuple().op(0x51);
    p.int(t.offset ?? 0).ints(t.size).ints(t.stride).op(0x89);
    p.global("collections", "OrderedDict").emptyTuple().reduce().tuple().reduce();
  }
  return p.op(0x75).stop().bytes();
}

export interface ZipFileSpec {
  name: string;
  data: Uint8Array;
  method?: number;
}

/** A zip with stored entries, torch-style 64-byte data alignment via a local extra field, optionally zip64. */
export function makeZip(files: ZipFileSpec[], opts: { zip64?: boolean } = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let off = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    off += b.length;
  };
  for (const f of files) {
    const name = Buffer.from(f.name);
    const method = f.method ?? 0;
    const data = method === 8 ? deflateRawSync(f.data) : f.data;
    const crc = crc32(f.data);
    const pad = (64 - ((off + 30 + name.length + 4) % 64)) % 64;
    const local = Buffer.alloc(30 + name.length + 4 + pad);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(f.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(4 + pad, 28);
    name.copy(local, 30);
    local.writeUInt16LE(0x4246, 30 + name.length); // "FB" padding field, as torch writes
    local.writeUInt16LE(pad, 32 + name.length);
    const lho = off;
    push(local);
    push(data);
    const c = Buffer.alloc(46 + name.length + (opts.zip64 ? 28 : 0));
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(opts.zip64 ? 45 : 20, 4);
    c.writeUInt16LE(opts.zip64 ? 45 : 20, 6);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt16LE(name.length, 28);
    name.copy(c, 46);
    if (opts.zip64) {
      c.writeUInt32LE(0xffffffff, 20);
      c.writeUInt32LE(0xffffffff, 24);
      c.writeUInt32LE(0xffffffff, 42);
      c.writeUInt16LE(28, 30);
      const x = 46 + name.length;
      c.writeUInt16LE(1, x);
      c.writeUInt16LE(24, x + 2);
      c.writeBigUInt64LE(BigInt(f.data.length), x + 4);
      c.writeBigUInt64LE(BigInt(data.length), x + 12);
      c.writeBigUInt64LE(BigInt(lho), x + 20);
    } else {
      c.writeUInt32LE(data.length, 20);
      c.writeUInt32LE(f.data.length, 24);
      c.writeUInt32LE(lho, 42);
    }
    central.push(c);
  }
  const cdOffset = off;
  for (const c of central) push(c);
  const cdSize = off - cdOffset;
  if (opts.zip64) {
    const z = Buffer.alloc(56 + 20);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeUInt16LE(45, 12);
    z.writeUInt16LE(45, 14);
    z.writeBigUInt64LE(BigInt(files.length), 24);
    z.writeBigUInt64LE(BigInt(files.length), 32);
    z.writeBigUInt64LE(BigInt(cdSize), 40);
    z.writeBigUInt64LE(BigInt(cdOffset), 48);
    z.writeUInt32LE(0x07064b50, 56);
    z.writeBigUInt64LE(BigInt(off), 64);
    z.writeUInt32LE(1, 72);
    push(z);
  }
  const e = Buffer.alloc(22);
  e.writeUInt32LE(0x06054b50, 0);
  e.writeUInt16LE(opts.zip64 ? 0xffff : files.length, 8);
  e.writeUInt16LE(opts.zip64 ? 0xffff : files.length, 10);
  e.writeUInt32LE(opts.zip64 ? 0xffffffff : cdSize, 12);
  e.writeUInt32LE(opts.zip64 ? 0xffffffff : cdOffset, 16);
  push(e);
  return Buffer.concat(parts);
}

/** A complete torch-style checkpoint: archive/data.pkl, archive/data/<key>, archive/version. */
export function torchZip(pkl: Uint8Array, storages: Record<string, Uint8Array>, opts: { zip64?: boolean; extra?: ZipFileSpec[]; pklMethod?: number } = {}) {
  return makeZip(
    [
      { name: "archive/data.pkl", data: pkl, method: opts.pklMethod },
      ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data })),
      { name: "archive/version", data: Buffer.from("3\n") },
      ...(opts.extra ?? []),
    ],
    opts,
  );
}

