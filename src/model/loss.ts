/** Losses of the heads, computed like torch.nn.functional.cross_entropy (mean over non-ignored rows). */

/** Cross entropy of `[N, C]` logits against integer labels; labels equal to -100 are ignored. */
export function crossEntropy(logits: Float32Array, classes: number, labels: ArrayLike<number | bigint>): number {
  let sum = 0;
  let count = 0;
  for (let r = 0; r < labels.length; r++) {
    const y = Number(labels[r]);
    if (y === -100) continue;
    const row = logits.subarray(r * classes, (r + 1) * classes);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    sum += max + Math.log(z) - row[y];
    count++;
  }
  return count ? sum / count : NaN; // torch returns nan when every label is ignored
}
