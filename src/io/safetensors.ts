import { open, type FileHandle } from "node:fs/promises";
import { writeAll, writeAtomically } from "./atomic.js";
import { CheckpointFormatError } from "../errors.js";
import { bytesToBigInt64, bytesToFloat32, DTYPE_BYTES, isDType, numel, type DType, type TensorEntry, type TensorSource } from "./tensors.js";

/** Headers larger than this are refused before allocating (real ones are well under 1 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

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
  const bad = (msg: string) => new CheckpointFormatError(path, `invalid safetensors file: ${msg}`);
  if (size < 8) throw bad(`file is ${size} bytes, shorter than the 8-byte header length`);
  const lenBytes = await readAt(fh, path, 0, 8);
  const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) throw bad(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (Number(headerLen) > size - 8) throw bad(`header length ${headerLen} runs past the end of the file (${size} bytes)`);
  const hlen = Number(headerLen);
  const text = new TextDecoder("utf-8", { fatal: true });
  let header: unknown;
  try {
    const raw = text.decode(await readAt(fh, path, 8, hlen));
    header = JSON.parse(raw);
    const dup = firstDuplicateTopLevelKey(raw);
    if (dup !== undefined) throw bad(`tensor "${dup}" is listed twice in the header`);
  } catch (e) {
    if (e instanceof CheckpointFormatError) throw e;
    throw bad(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) throw bad("header is not a JSON object");
  const dataStart = 8 + hlen;
  const dataLen = size - dataStart;
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (v && typeof v === "object" && !Array.isArray(v)) metadata = v as Record<string, string>;
      else throw bad("__metadata__ is not an object");
      continue;
    }
    if (!v || typeof v !== "object") throw bad(`entry "${name}" is not an object`);
    const { dtype, shape, data_offsets } = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDType(dtype)) throw bad(`tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw bad(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    if (
      !Array.isArray(data_offsets) || data_offsets.length !== 2 ||
      !data_offsets.every((d) => Number.isSafeInteger(d) && d >= 0) || data_offsets[1] < data_offsets[0]
    )
      throw bad(`tensor "${name}" has invalid data_offsets ${JSON.stringify(data_offsets)}`);
    const [b, e] = data_offsets as [number, number];
    const expected = numel(shape as number[]) * DTYPE_BYTES[dtype as DType];
    if (e - b !== expected)
      throw bad(`tensor "${name}" has ${e - b} bytes but shape ${JSON.stringify(shape)} x ${dtype} needs ${expected}`);
    if (e > dataLen) throw bad(`tensor "${name}" ends at data byte ${e}, past the end of the data (${dataLen} bytes)`);
    ranges.push([b, e, name]);
    entries.set(name, { name, dtype, shape: shape as number[], file: path, offset: dataStart + b, byteLength: e - b });
  }
  ranges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) throw bad(`tensors "${ranges[i - 1][2]}" and "${ranges[i][2]}" overlap`);
  }
  return { entries, metadata, dataStart };
}

/**
 * JSON.parse keeps the last of duplicated keys silently; a checkpoint listing a tensor twice is corrupt,
 * so scan the top level of the header for repeated keys.
 */
function firstDuplicateTopLevelKey(raw: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let i = 0;
  let expectKey = false;
  while (i < raw.length) {
    const c = raw[i];
    if (c === '"') {
      let j = i + 1;
      while (j < raw.length && raw[j] !== '"') j += raw[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(raw.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === "{" || c === "[") {
      depth++;
      if (depth === 1 && c === "{") expectKey = true;
    } else if (c === "}" || c === "]") depth--;
    else if (c === "," && depth === 1) expectKey = true;
    i++;
  }
  return undefined;
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
