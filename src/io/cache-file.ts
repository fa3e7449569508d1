/**
 * Cache files that check themselves: the data, then a trailer naming what the file was made from (its key) and a
 * checksum of every 4 MiB block (block-sums.ts). Readers (onnxruntime) use the data by offset and never see the trailer. A file whose
 * trailer, key or any block does not match is reported, so the caller rebuilds it instead of using it.
 *
 *   [data: size bytes][meta JSON][u32 CRC-32 of the JSON][u64 JSON length][8-byte magic]
 */
import { open, stat, type FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { writeAtomically, writeAll } from "./atomic.js";
import { blockSums } from "./block-sums.js";

const MAGIC = "BTCACHE1";
const TAIL = 4 + 8 + 8;
const BLOCK = 4 << 20;

interface Meta {
  key: string;
  size: number;
  block: number;
  /** block-sums.ts: one per block. */
  sums: number[];
}

/** undefined when the file is whole and was made for `key`; "missing"; or what is wrong with it. */
export async function checkCacheFile(path: string, key: string, size: number): Promise<string | undefined> {
  const head = await checkCacheTrailer(path, key, size);
  return typeof head === "string" ? head : head.blocks;
}

/**
 * The quick part of the check (size, trailer, key): a problem, or the block check still running in a worker
 * thread, so the caller can do other work (create sessions) while 1 GB is read and summed.
 */
export async function checkCacheTrailer(path: string, key: string, size: number): Promise<string | { blocks: Promise<string | undefined> }> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return "missing";
  if (st.size === 0) return "the file is empty";
  const fh = await open(path, "r");
  let meta: Meta | string;
  try {
    meta = await readTrailer(fh, st.size);
  } finally {
    await fh.close();
  }
  if (typeof meta === "string") return meta;
  if (meta.key !== key) return "it was made for another checkpoint, format or onnxruntime version (stale key)";
  if (meta.size !== size) return `its data is ${meta.size} bytes, ${size} expected`;
  if (!Array.isArray(meta.sums) || meta.sums.length !== Math.ceil(meta.size / meta.block)) return "its trailer is damaged";
  return { blocks: checkBlocksInWorker(path, meta) };
}

/** The key and data size a cache file records, or what is wrong with its trailer (the benchmark checks a file on its own key). */
export async function readCacheKey(path: string): Promise<{ key: string; size: number } | string> {
  const fh = await open(path, "r");
  try {
    const meta = await readTrailer(fh, (await fh.stat()).size);
    return typeof meta === "string" ? meta : { key: meta.key, size: meta.size };
  } finally {
    await fh.close();
  }
}

/** The block check, in a worker thread: its reads go on while the main thread is blocked creating sessions. */
async function checkBlocksInWorker(path: string, meta: Meta): Promise<string | undefined> {
  const sums = await blockSums(path, meta.size, meta.block);
  // Both lists have one sum per block (checkCacheTrailer checked the recorded one's length).
  const i = sums.findIndex((c, k) => c !== meta.sums[k]);
  return i < 0 ? undefined : `block ${i} (bytes ${i * meta.block}..${Math.min((i + 1) * meta.block, meta.size)}) fails its checksum`;
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

/**
 * Writes a cache file atomically: `fill` writes the `size` data bytes (at any offsets), then the checksums are
 * taken from what reached the file and the trailer is appended, all under a temporary name renamed into place.
 * Two processes building the same file write the same bytes, so whichever rename lands last is as good.
 */
export async function writeCacheFile(path: string, key: string, size: number, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
  await writeAtomically(path, async (fh, tmp) => {
    await fill(fh);
    await fh.truncate(size);
    await fh.datasync();
    const meta: Meta = { key, size, block: BLOCK, sums: await blockSums(tmp, size, BLOCK) };
    const json = Buffer.from(JSON.stringify(meta), "utf8");
    const tail = Buffer.alloc(TAIL);
    tail.writeUInt32LE(crc32(json), 0);
    tail.writeBigUInt64LE(BigInt(json.length), 4);
    tail.write(MAGIC, 12, "latin1");
    await writeAll(fh, json, size);
    await writeAll(fh, tail, size + json.length);
  });
}
