/** Tensor element types found in checkpoints (safetensors names). */
export type DType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

export const DTYPE_BYTES: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export function isDType(s: unknown): s is DType {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

/** A tensor stored as contiguous little-endian bytes at `offset` (absolute, from the start of `file`). */
export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  file: string;
  offset: number;
  byteLength: number;
}

/** A checkpoint file whose tensors can be listed and read by name (safetensors, pytorch_model.bin). */
export interface TensorSource {
  readonly path: string;
  readonly entries: ReadonlyMap<string, TensorEntry>;
  /** The tensor's bytes (a copy), contiguous, little-endian, in its stored dtype. */
  readBytes(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Raw little-endian bytes of a stored tensor converted to float32 (F32, F16, BF16, F64 and integer types). */
export function bytesToFloat32(bytes: Uint8Array, dtype: DType): Float32Array {
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (dtype) {
    case "F32":
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      break;
    case "F64":
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      break;
    case "F16":
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      break;
    case "BF16": {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(i * 2, true) << 16;
      break;
    }
    case "I64":
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(i * 8, true));
      break;
    case "I32":
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      break;
    case "I16":
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
      break;
    case "I8":
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      break;
    case "U8":
    case "BOOL":
      for (let i = 0; i < n; i++) out[i] = dv.getUint8(i);
      break;
  }
  return out;
}

/** Raw little-endian bytes of an integer tensor as bigint64 (I64, I32, I16, I8, U8, BOOL). */
export function bytesToBigInt64(bytes: Uint8Array, dtype: DType): BigInt64Array {
  if (dtype === "I64") {
    const copy = new Uint8Array(bytes); // aligned copy
    return new BigInt64Array(copy.buffer);
  }
  const f = bytesToFloat32(bytes, dtype);
  return BigInt64Array.from(f, (v) => BigInt(Math.trunc(v)));
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
