import type { FileHandle } from "node:fs/promises";
import { CheckpointFormatError } from "../errors.js";
import { readAt } from "./safetensors.js";

/** One file inside a zip archive, located by the central directory. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate, ... */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
  /** Absolute offset of the entry's (possibly compressed) data, after the local header. */
  dataOffset: number;
}

/** Real checkpoints have a few thousand entries at most; this only stops absurd allocations. */
export const MAX_CENTRAL_DIRECTORY_BYTES = 64 * 1024 * 1024;

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;

/**
 * Reads a zip's central directory with positional reads (never the whole file), following zip64 records,
 * and locates each entry's data by reading its local header. Any inconsistency is a CheckpointFormatError.
 */
export async function readZipDirectory(fh: FileHandle, path: string, size: number): Promise<Map<string, ZipEntry>> {
  const bad = (msg: string) => new CheckpointFormatError(path, `invalid zip archive: ${msg}`);
  if (size < 22) throw bad(`file is ${size} bytes, too short for a zip end record`);

  // The end record is 22 bytes plus a comment of at most 65535 bytes.
  const tailLen = Math.min(size, 22 + 0xffff);
  const tailStart = size - tailLen;
  const tail = await readAt(fh, path, tailStart, tailLen);
  const tv = view(tail);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD_SIG && i + 22 + tv.getUint16(i + 20, true) <= tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad("end of central directory record not found (not a zip file, or truncated)");
  const eocdPos = tailStart + eocd;
  let diskNo = tv.getUint16(eocd + 4, true);
  let cdDisk = tv.getUint16(eocd + 6, true);
  let diskEntries: number = tv.getUint16(eocd + 8, true);
  let count: number = tv.getUint16(eocd + 10, true);
  let cdSize: number = tv.getUint32(eocd + 12, true);
  let cdOffset: number = tv.getUint32(eocd + 16, true);
  let cdLimit = eocdPos; // the central directory must end before this

  if (eocdPos >= 20) {
    const loc = await readAt(fh, path, eocdPos - 20, 20);
    const lv = view(loc);
    if (lv.getUint32(0, true) === ZIP64_LOCATOR_SIG) {
      if (lv.getUint32(16, true) > 1) throw bad("multi-disk archives are not supported");
      const z64 = u64(lv, 8, "zip64 end record offset", bad);
      if (z64 + 56 > eocdPos - 20) throw bad(`zip64 end record offset ${z64} is out of range`);
      const zv = view(await readAt(fh, path, z64, 56));
      if (zv.getUint32(0, true) !== ZIP64_EOCD_SIG) throw bad(`no zip64 end record at offset ${z64}`);
      diskNo = zv.getUint32(16, true);
      cdDisk = zv.getUint32(20, true);
      diskEntries = u64(zv, 24, "entry count", bad);
      count = u64(zv, 32, "entry count", bad);
      cdSize = u64(zv, 40, "central directory size", bad);
      cdOffset = u64(zv, 48, "central directory offset", bad);
      cdLimit = z64;
    }
  }
  if (diskNo !== 0 || cdDisk !== 0 || diskEntries !== count) throw bad("multi-disk archives are not supported");
  if (cdOffset + cdSize > cdLimit)
    throw bad(`central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record at ${cdLimit}`);
  if (cdSize > MAX_CENTRAL_DIRECTORY_BYTES) throw bad(`central directory of ${cdSize} bytes is too large`);
  if (count * 46 > cdSize) throw bad(`${count} entries cannot fit in a ${cdSize}-byte central directory`);

  const cd = await readAt(fh, path, cdOffset, cdSize);
  const cv = view(cd);
  const utf8 = new TextDecoder("utf-8");
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cdSize || cv.getUint32(p, true) !== CENTRAL_SIG) throw bad(`central directory entry ${n} is corrupt`);
    const flags = cv.getUint16(p + 8, true);
    const method = cv.getUint16(p + 10, true);
    const crc32 = cv.getUint32(p + 16, true);
    let compressedSize: number = cv.getUint32(p + 20, true);
    let usize: number = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const commentLen = cv.getUint16(p + 32, true);
    const startDisk = cv.getUint16(p + 34, true);
    let lho: number = cv.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cdSize) throw bad(`central directory entry ${n} runs past the directory`);
    const name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
    if (flags & 1) throw bad(`entry "${name}" is encrypted`);

    // zip64 extra field: only the fields saturated in the fixed header are present, in this order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cv.getUint16(e, true);
      const len = cv.getUint16(e + 2, true);
      if (e + 4 + len > extraEnd) throw bad(`entry "${name}" has a truncated extra field`);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (what: string) => {
          if (q + 8 > e + 4 + len) throw bad(`entry "${name}" has a short zip64 extra field (no ${what})`);
          const v = u64(cv, q, what, bad);
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = take("size");
        if (compressedSize === 0xffffffff) compressedSize = take("compressed size");
        if (lho === 0xffffffff) lho = take("local header offset");
      }
      e += 4 + len;
    }
    if (startDisk !== 0 && startDisk !== 0xffff) throw bad(`entry "${name}" is on another disk`);
    if (lho + 30 > cdOffset) throw bad(`entry "${name}" has local header offset ${lho} outside the data area`);
    if (entries.has(name)) throw bad(`entry "${name}" appears twice`);
    entries.set(name, { name, method, compressedSize, size: usize, crc32, localHeaderOffset: lho, dataOffset: -1 });
    p = end;
  }

  // Data starts after the local header, whose name/extra lengths may differ from the central ones.
  for (const ent of entries.values()) {
    const nameLen = Buffer.byteLength(ent.name);
    const local = await readAt(fh, path, ent.localHeaderOffset, Math.min(30 + nameLen, cdOffset - ent.localHeaderOffset));
    const lv = view(local);
    if (lv.getUint32(0, true) !== LOCAL_SIG) throw bad(`entry "${ent.name}" has no local header at ${ent.localHeaderOffset}`);
    if (lv.getUint16(26, true) !== nameLen || utf8.decode(local.subarray(30)) !== ent.name)
      throw bad(`entry "${ent.name}" has a different name in its local header`);
    ent.dataOffset = ent.localHeaderOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
    if (ent.dataOffset + ent.compressedSize > cdOffset)
      throw bad(`entry "${ent.name}" (${ent.compressedSize} bytes at ${ent.dataOffset}) runs past the data area`);
    if (ent.method === 0 && ent.compressedSize !== ent.size)
      throw bad(`stored entry "${ent.name}" has size ${ent.size} but ${ent.compressedSize} stored bytes`);
  }
  return entries;
}

/** Throws unless the entry is stored uncompressed (its bytes can then be read or mapped in place). */
export function requireStored(path: string, entry: ZipEntry): void {
  if (entry.method !== 0)
    throw new CheckpointFormatError(
      path,
      `zip entry "${entry.name}" is compressed (method ${entry.method}); PyTorch writes entries stored, re-save the checkpoint with torch.save`,
    );
}

/** Reads a whole small stored entry and checks its CRC-32. */
export async function readStoredEntry(fh: FileHandle, path: string, entry: ZipEntry): Promise<Uint8Array> {
  requireStored(path, entry);
  const bytes = await readAt(fh, path, entry.dataOffset, entry.size);
  if (crc32(bytes) !== entry.crc32) throw new CheckpointFormatError(path, `zip entry "${entry.name}" fails its CRC-32 check`);
  return bytes;
}

let crcTable: Uint32Array | undefined;

export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u64(v: DataView, at: number, what: string, bad: (m: string) => Error): number {
  const x = v.getBigUint64(at, true);
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} ${x} is out of range`);
  return Number(x);
}
