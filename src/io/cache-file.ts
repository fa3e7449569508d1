/**
 * Cache files that check themselves: the data, then a trailer naming what the file was made from (its key) and a
 * CRC-32 of every 4 MiB block. Readers (onnxruntime) use the data by offset and never see the trailer. A file whose
 * trailer, key or any block does not match is reported, so the caller rebuilds it instead of using it.
 *
 *   [data: size bytes][meta JSON][u32 CRC-32 of the JSON][u64 JSON length][8-byte magic]
 */
import { open, stat, type FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { writeAtomically, writeAll } from "./atomic.js";

const MAGIC = "BTCACHE1";
const TAIL = 4 + 8 + 8;
const BLOCK = 4 << 20;
/** Blocks read at once: the copies out of the page cache run on libuv's pool threads, in parallel. */
const IN_FLIGHT = 4;

interface Meta {
  key: string;
  size: number;
  block: number;
  crcs: number[];
}

/** undefined when the file is whole and was made for `key`; "missing"; or what is wrong with it. */
export async function checkCacheFile(path: string, key: string, size: number): Promise<string | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return "missing";
  if (st.size === 0) return "the file is empty";
  const fh = await open(path, "r");
  try {
    const meta = await readTrailer(fh, st.size);
    if (typeof meta === "string") return meta;
    if (meta.key !== key) return "it was made for another checkpoint, format or onnxruntime version (stale key)";
    if (meta.size !== size) return `its data is ${meta.size} bytes, ${size} expected`;
    const bad = await firstBadBlock(fh, meta);
    return bad === undefined ? undefined : `block ${bad} (bytes ${bad * meta.block}..${Math.min((bad + 1) * meta.block, meta.size)}) fails its checksum`;
  } finally {
    await fh.close();
  }
}

async function readTrailer(fh: FileHandle, fileSize: number): Promise<Meta | string> {
  if (fileSize < TAIL) return "the file is truncated (no trailer)";
  const tail = Buffer.alloc(TAIL);
  await fh.read(tail, 0, TAIL, fileSize - TAIL);
  if (tail.toString("latin1", 12) !== MAGIC) return "the file is truncated or damaged (no trailer)";
  const jsonLength = Number(tail.readBigUInt64LE(4));
  const start = fileSize - TAIL - jsonLength;
  if (jsonLength > 64 << 20 || start < 0) return "its trailer is damaged";
  const json = Buffer.alloc(jsonLength);
  await fh.read(json, 0, jsonLength, start);
  if (crc32(json) !== tail.readUInt32LE(0)) return "its trailer fails its checksum";
  let meta: Meta;
  try {
    meta = JSON.parse(json.toString("utf8")) as Meta;
  } catch {
    return "its trailer is damaged";
  }
  if (meta.size !== start) return `the file is truncated or extended (${start} data bytes, the trailer says ${meta.size})`;
  return meta;
}

/** Index of the first block whose CRC-32 differs, or undefined. */
async function firstBadBlock(fh: FileHandle, meta: Meta): Promise<number | undefined> {
  const crcs = await blockCrcs(fh, meta.size, meta.block);
  const bad = crcs.findIndex((c, i) => c !== meta.crcs[i]);
  return bad < 0 && crcs.length === meta.crcs.length ? undefined : Math.max(bad, 0);
}

async function blockCrcs(fh: FileHandle, size: number, block: number): Promise<number[]> {
  const n = Math.ceil(size / block);
  const crcs = new Array<number>(n);
  let next = 0;
  const worker = async () => {
    const buf = Buffer.allocUnsafe(block);
    for (let i = next++; i < n; i = next++) {
      const length = Math.min(block, size - i * block);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, i * block + got);
        if (bytesRead === 0) throw new Error("unexpected end of file");
        got += bytesRead;
      }
      crcs[i] = crc32(buf.subarray(0, length));
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return crcs;
}

/**
 * Writes a cache file atomically: `fill` writes the `size` data bytes (at any offsets), then the checksums are
 * taken from what reached the file and the trailer is appended, all under a temporary name renamed into place.
 * Two processes building the same file write the same bytes, so whichever rename lands last is as good.
 */
export async function writeCacheFile(path: string, key: string, size: number, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
  await writeAtomically(path, async (fh) => {
    await fill(fh);
    await fh.truncate(size);
    const meta: Meta = { key, size, block: BLOCK, crcs: await blockCrcs(fh, size, BLOCK) };
    const json = Buffer.from(JSON.stringify(meta), "utf8");
    const tail = Buffer.alloc(TAIL);
    tail.writeUInt32LE(crc32(json), 0);
    tail.writeBigUInt64LE(BigInt(json.length), 4);
    tail.write(MAGIC, 12, "latin1");
    await writeAll(fh, json, size);
    await writeAll(fh, tail, size + json.length);
  });
}
