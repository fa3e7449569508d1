import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readAllTensors } from "../../src/io/safetensors.js";
import type { Tensor } from "../../src/model/tensor.js";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** The read-only golden fixtures (../shared/fixtures beside the repository, or $BRIDGETOWER_FIXTURES). */
export const fixturesDir = process.env.BRIDGETOWER_FIXTURES ?? resolve(repoRoot, "../shared/fixtures");
export const fixture = (...p: string[]) => resolve(fixturesDir, ...p);
export const hasFixtures = existsSync(fixturesDir);

/** Every tensor of a safetensors file, floats as Float32Array and integers as BigInt64Array. */
export async function readAll(path: string): Promise<Map<string, Tensor>> {
  return readAllTensors(path);
}

/** Largest absolute difference, with the index where it occurs. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; at: number } {
  let diff = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= diff)) {
      diff = d;
      at = i;
    }
  }
  return { diff, at };
}
