import assert from "node:assert/strict";
import type { Tensor } from "../../src/model/tensor.js";

/**
 * The bar of the issue: 1e-5 on hidden states and features, 1e-4 on logits and losses, absolute, or relative
 * to the value where it is larger than 1 (large activations carry float32 rounding proportional to their size).
 */
export function tolerance(name: string): number {
  return /logits|loss|embeds|logit_scale/.test(name) ? 1e-4 : 1e-5;
}

export function assertClose(name: string, got: Tensor, want: Tensor): void {
  assert.deepEqual([...got.dims], [...want.dims], `${name}: shape`);
  const tol = tolerance(name);
  for (let i = 0; i < want.data.length; i++) {
    const w = Number(want.data[i]);
    const g = Number(got.data[i]);
    const err = Math.abs(g - w);
    if (!(err <= tol * Math.max(1, Math.abs(w)))) assert.fail(`${name}[${i}]: got ${g}, want ${w} (|diff| ${err} > ${tol})`);
  }
}

