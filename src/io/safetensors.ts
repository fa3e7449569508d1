import { open, type FileHandle } from "node:fs/promises";
import { writeAll, writeAtomically } from "./atomic.js";
import { CheckpointFormatError } from "../errors.js";
import { checkSize, headerLength, parseHeader } from "./safetensors-header.js";
import { bytesToBigInt64, bytesToFloat32, DTYPE_BYTES, numel, type DType, type TensorEntry, type TensorSource } from "./tensors.js";

export { MAX_HEADER_BYTES } from "./safetensors-header.js";

/**
 * A safetensors file read by positional reads: the header is parsed and validated once, tensors are
 * read on demand, so files far beyond 2 GiB work without loading them whole.
 */
export class SafetensorsFile implements TensorSource {
  readonly metadata: Record<string, string>;
  /** Absolute offset of the data region (8 + header length). */
  readonly dataStart: number;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly entries: ReadonlyMap<string, TensorEntry>,
    metadata: Record<string, string>,
    dataStart: number,
  ) {
    this.metadata = metadata;
    this.dataStart = dataStart;
  }

  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, "r");
    } catch (e) {
      throw new CheckpointFormatError(path, `cannot open safetensors file (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    try {
      const size = (await fh.stat()).size;
      const { entries, metadata, dataStart } = await readHeader(fh, path, size);
      return new SafetensorsFile(path, fh, entries, metadata, dataStart);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointFormatError(this.path, `no tensor named "${name}"`);
    return readAt(this.fh, this.path, e.offset, e.byteLength);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/**
 * Every tensor of a (small) safetensors file: floating-point ones as float32, integer ones as int64
 * (the forms the models take). For inputs and outputs, not for checkpoints.
 */
export async function readAllTensors(path: string): Promise<Map<string, { data: Float32Array | BigInt64Array; dims: number[] }>> {
  const f = await SafetensorsFile.open(path);
  try {
    const out = new Map<string, { data: Float32Array | BigInt64Array; dims: number[] }>();
    for (const [name, e] of f.entries) {
      const bytes = await f.readBytes(name);
      const isFloat = e.dtype === "F32" || e.dtype === "F16" || e.dtype === "BF16" || e.dtype === "F64";
      out.set(name, { data: isFloat ? bytesToFloat32(bytes, e.dtype) : bytesToBigInt64(bytes, e.dtype), dims: e.shape });
    }
    return out;
  } finally {
    await f.close();
  }
}

/** Reads exactly `length` bytes at `position`, in chunks (a single read is limited to 2 GiB). */
export async function readAt(fh: FileHandle, path: string, position: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const chunk = Math.min(length - done, 1 << 30);
    const { bytesRead } = await fh.read(buf, done, chunk, position + done);
    if (bytesRead === 0) throw new CheckpointFormatError(path, `unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
  return buf;
}

async function readHeader(fh: FileHandle, path: string, size: number) {
  checkSize(path, size);
  const hlen = headerLength(path, size, await readAt(fh, path, 0, 8));
  return parseHeader(path, size, await readAt(fh, path, 8, hlen));
}

export interface TensorToWrite {
  dtype: DType;
  shape: number[];
  /** The bytes, or a function producing them when the tensor is written (to stream files larger than memory). */
  data: ArrayBufferView | (() => ArrayBufferView | Promise<ArrayBufferView>);
}

/** The 8-byte length and JSON header of a safetensors file holding `tensors` back to back, in order. */
export function safetensorsHeader(tensors: { name: string; dtype: DType; shape: number[] }[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    if (t.name === "__metadata__") throw new CheckpointFormatError(t.name, "a tensor cannot be named __metadata__ in safetensors");
    const n = numel(t.shape) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data aligned to 8 bytes, as safetensors does
  const body = Buffer.from(json, "utf8");
  const out = Buffer.alloc(8 + body.length);
  out.writeBigUInt64LE(BigInt(body.length));
  body.copy(out, 8);
  return out;
}

/**
 * Writes a safetensors file atomically (temporary file, then rename), so a failure never leaves a
 * partial file under `path`. Tensors are written one at a time: no single buffer holds the whole file.
 */
export async function writeSafetensors(
  path: string,
  tensors: Iterable<[string, TensorToWrite]> | Map<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const list = [...tensors];
  await writeAtomically(path, async (fh) => {
    await writeAll(fh, safetensorsHeader(list.map(([name, t]) => ({ name, ...t })), metadata));
    for (const [name, t] of list) {
      const data = typeof t.data === "function" ? await t.data() : t.data;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (bytes.byteLength !== numel(t.shape) * DTYPE_BYTES[t.dtype])
        throw new Error(`writeSafetensors: "${name}" has ${bytes.byteLength} bytes for shape [${t.shape}] ${t.dtype}`);
      await writeAll(fh, bytes);
    }
  });
}
