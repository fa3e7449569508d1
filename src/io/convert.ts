import { open, rename, unlink, type FileHandle } from "node:fs/promises";
import { CheckpointFormatError } from "../errors.js";
import { readAt } from "./safetensors.js";
import { TorchBinFile } from "./torchbin.js";

const CHUNK = 64 * 1024 * 1024;

/**
 * Converts a PyTorch `pytorch_model.bin` to safetensors, tensor by tensor in chunks (memory stays small),
 * atomically: a temporary file next to `outPath` is renamed into place only when complete, and removed on failure.
 * Tensors sharing a storage (tied weights, views) are written as separate copies, like safetensors' `save_file`
 * after cloning. Non-tensor state-dict values are dropped. `onProgress` and `bytes` count tensor data bytes.
 */
export async function convertToSafetensors(
  binPath: string,
  outPath: string,
  onProgress?: (done: number, total: number) => void,
): Promise<{ tensors: number; bytes: number }> {
  const src = await TorchBinFile.open(binPath);
  let raw: FileHandle | undefined;
  try {
    raw = await open(binPath, "r");
    const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
    let total = 0;
    for (const e of src.entries.values()) {
      if (e.name === "__metadata__") throw new CheckpointFormatError(binPath, `a tensor named "__metadata__" cannot be written to safetensors`);
      header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [total, total + e.byteLength] };
      total += e.byteLength;
    }
    let json = JSON.stringify(header);
    json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // align data to 8 bytes, as safetensors does
    const hbytes = Buffer.from(json, "utf8");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hbytes.length));

    const tmp = `${outPath}.tmp-${process.pid}-${Date.now()}`;
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, "wx");
      await writeAll(fh, len);
      await writeAll(fh, hbytes);
      let done = 0;
      onProgress?.(0, total);
      for (const e of src.entries.values()) {
        if (!src.isInPlace(e.name)) {
          await writeAll(fh, await src.readBytes(e.name));
        } else {
          // Copy in chunks: memory stays bounded even for tensors beyond the 4 GiB typed-array limit.
          for (let p = 0; p < e.byteLength; p += CHUNK) {
            const n = Math.min(CHUNK, e.byteLength - p);
            await writeAll(fh, await readAt(raw, binPath, e.offset + p, n));
            if (p + n < e.byteLength) onProgress?.(done + p + n, total);
          }
        }
        done += e.byteLength;
        onProgress?.(done, total);
      }
      await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(tmp, outPath);
    } catch (err) {
      await fh?.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    return { tensors: src.entries.size, bytes: total };
  } finally {
    await raw?.close();
    await src.close();
  }
}

/** FileHandle.write may write less than asked, and one call is limited to 2 GiB. */
async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let p = 0;
  while (p < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, p, Math.min(bytes.length - p, 1 << 30));
    p += bytesWritten;
  }
}
