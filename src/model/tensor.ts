/** A plain tensor: row-major data and its dimensions (onnxruntime's Tensor has the same two fields). */
export interface Tensor<T extends Float32Array | BigInt64Array = Float32Array | BigInt64Array> {
  data: T;
  dims: readonly number[];
}

export function int64Tensor(rows: readonly (readonly number[])[]): Tensor<BigInt64Array> {
  const T = rows[0]?.length ?? 0;
  const data = new BigInt64Array(rows.length * T);
  rows.forEach((r, b) => r.forEach((v, t) => (data[b * T + t] = BigInt(v))));
  return { data, dims: [rows.length, T] };
}

/** Rows `[b0, b1)` along the first axis, as a view. */
export function sliceBatch<T extends Float32Array | BigInt64Array>(t: Tensor<T>, b0: number, b1: number): Tensor<T> {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  return { data: t.data.subarray(b0 * per, b1 * per) as T, dims: [b1 - b0, ...t.dims.slice(1)] };
}
