import { open, type FileHandle } from "node:fs/promises";
import { writeAll, writeAtomically } from "./atomic.js";
import { readAt, safetensorsHeader } from "./safetensors.js";
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
    const entries = [...src.entries.values()];
    const total = entries.reduce((a, e) => a + e.byteLength, 0);
    await writeAtomically(outPath, async (fh) => {
      await writeAll(fh, safetensorsHeader(entries, { format: "pt" }));
      let done = 0;
      onProgress?.(0, total);
      for (const e of entries) {
        if (!src.isInPlace(e.name)) {
          await writeAll(fh, await src.readBytes(e.name));
        } else {
          // Copy in chunks: memory stays bounded even for tensors beyond the 4 GiB typed-array limit.
          for (let p = 0; p < e.byteLength; p += CHUNK) {
            const n = Math.min(CHUNK, e.byteLength - p);
            await writeAll(fh, await readAt(raw!, binPath, e.offset + p, n));
            if (p + n < e.byteLength) onProgress?.(done + p + n, total);
          }
        }
        done += e.byteLength;
        onProgress?.(done, total);
      }
    });
    return { tensors: entries.length, bytes: total };
  } finally {
    await raw?.close();
    await src.close();
  }
}
