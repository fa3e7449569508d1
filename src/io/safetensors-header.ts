/**
 * The safetensors header: length prefix and JSON, parsed and validated (dtypes, shapes, offsets, overlaps). Pure,
 * so the page (src/web/safetensors.ts) checks a remote file's header exactly as safetensors.ts checks a local one.
 */
import { CheckpointFormatError } from "../errors.js";
import { DTYPE_BYTES, isDType, numel, type DType, type TensorEntry } from "./tensors.js";

/** Headers larger than this are refused before allocating (real ones are well under 1 MB). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const bad = (path: string, msg: string) => new CheckpointFormatError(path, `invalid safetensors file: ${msg}`);

/** Refuses a file too short for the 8-byte header length. */
export function checkSize(path: string, size: number): void {
  if (size < 8) throw bad(path, `file is ${size} bytes, shorter than the 8-byte header length`);
}

/** The header length from the file's first 8 bytes, checked against the limit and the file size. */
export function headerLength(path: string, size: number, lenBytes: Uint8Array): number {
  const headerLen = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) throw bad(path, `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (Number(headerLen) > size - 8) throw bad(path, `header length ${headerLen} runs past the end of the file (${size} bytes)`);
  return Number(headerLen);
}

/** Parses and validates the JSON header (`headerBytes`, the file's bytes 8..8+length) of a file of `size` bytes. */
export function parseHeader(path: string, size: number, headerBytes: Uint8Array): { entries: Map<string, TensorEntry>; metadata: Record<string, string>; dataStart: number } {
  const hlen = headerBytes.byteLength;
  const text = new TextDecoder("utf-8", { fatal: true });
  let header: unknown;
  try {
    const raw = text.decode(headerBytes);
    header = JSON.parse(raw);
    const dup = firstDuplicateTopLevelKey(raw);
    if (dup !== undefined) throw bad(path, `tensor "${dup}" is listed twice in the header`);
  } catch (e) {
    if (e instanceof CheckpointFormatError) throw e;
    throw bad(path, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) throw bad(path, "header is not a JSON object");
  const dataStart = 8 + hlen;
  const dataLen = size - dataStart;
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (v && typeof v === "object" && !Array.isArray(v)) metadata = v as Record<string, string>;
      else throw bad(path, "__metadata__ is not an object");
      continue;
    }
    if (!v || typeof v !== "object") throw bad(path, `entry "${name}" is not an object`);
    const { dtype, shape, data_offsets } = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!isDType(dtype)) throw bad(path, `tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw bad(path, `tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    if (
      !Array.isArray(data_offsets) || data_offsets.length !== 2 ||
      !data_offsets.every((d) => Number.isSafeInteger(d) && d >= 0) || data_offsets[1] < data_offsets[0]
    )
      throw bad(path, `tensor "${name}" has invalid data_offsets ${JSON.stringify(data_offsets)}`);
    const [b, e] = data_offsets as [number, number];
    const expected = numel(shape as number[]) * DTYPE_BYTES[dtype as DType];
    if (e - b !== expected)
      throw bad(path, `tensor "${name}" has ${e - b} bytes but shape ${JSON.stringify(shape)} x ${dtype} needs ${expected}`);
    if (e > dataLen) throw bad(path, `tensor "${name}" ends at data byte ${e}, past the end of the data (${dataLen} bytes)`);
    ranges.push([b, e, name]);
    entries.set(name, { name, dtype, shape: shape as number[], file: path, offset: dataStart + b, byteLength: e - b });
  }
  ranges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) throw bad(path, `tensors "${ranges[i - 1][2]}" and "${ranges[i][2]}" overlap`);
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
