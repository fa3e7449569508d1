/** The int8 weight scheme, shared by Node's cache file (quantize.ts) and the page (src/web/weights.ts). */

/** Symmetric per-row int8 of `w` `[outF, inF]`, written transposed `[inF, outF]`; scale = max|row| / 127. */
export function quantizeTransposed(w: Float32Array, outF: number, inF: number): { q: Int8Array; scale: Float32Array } {
  const q = new Int8Array(outF * inF);
  const scale = new Float32Array(outF);
  for (let n = 0; n < outF; n++) {
    let max = 0;
    const row = n * inF;
    for (let k = 0; k < inF; k++) max = Math.max(max, Math.abs(w[row + k]));
    const s = max > 0 ? max / 127 : 1;
    scale[n] = s;
    const inv = 1 / Math.fround(s);
    for (let k = 0; k < inF; k++) q[k * outF + n] = Math.max(-127, Math.min(127, Math.round(w[row + k] * inv)));
  }
  return { q, scale };
}
