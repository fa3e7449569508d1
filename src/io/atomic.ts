import { randomBytes } from "node:crypto";
import { open, rename, unlink, type FileHandle } from "node:fs/promises";

/**
 * Writes `path` through a temporary file beside it, renamed into place only when `fill` has succeeded:
 * a failure (or a crash) never leaves a partial file under `path`.
 */
export async function writeAtomically(path: string, fill: (fh: FileHandle, tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  const fh = await open(tmp, "wx+"); // readable too: cache files checksum what they wrote
  try {
    await fill(fh, tmp);
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/** Writes all of `bytes` (FileHandle.write may write less, and one call is limited to 2 GiB). */
export async function writeAll(fh: FileHandle, bytes: Uint8Array, position?: number): Promise<void> {
  let p = 0;
  while (p < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, p, Math.min(bytes.length - p, 1 << 30), position === undefined ? null : position + p);
    p += bytesWritten;
  }
}
