import { InputError } from "../errors.js";
import { resolveModel } from "../hub/index.js";
import type { OptionSpec } from "./args.js";

export const DEFAULT_MODEL = "BridgeTower/bridgetower-large-itm-mlm-gaudi";

/** Options every model-running command takes. */
export const MODEL_OPTIONS: Record<string, OptionSpec> = {
  model: { type: "string", help: `model folder or Hub id (default ${DEFAULT_MODEL})` },
  revision: { type: "string", help: "Hub revision: branch, tag or commit (default main)" },
  threads: { type: "string", help: "onnxruntime threads (default: all cores)" },
  dtype: { type: "string", help: "fp32 (default) or int8 (quantized linear layers: faster, less memory)" },
  json: { type: "boolean", help: "print JSON instead of a table" },
};

export function required(v: unknown, flag: string): string {
  if (typeof v !== "string" || v === "") throw new InputError(flag, "is required (see --help)");
  return v;
}

export function positiveInt(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InputError(flag, `must be a positive integer, got "${v}"`);
  return n;
}

/** --dtype: fp32, int8 or not given. */
export function dtypeFlag(v: unknown): "fp32" | "int8" | undefined {
  if (v !== undefined && v !== "fp32" && v !== "int8") throw new InputError("--dtype", `must be fp32 or int8, got "${v}"`);
  return v;
}

export function list(v: unknown): string[] {
  return Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
}

/** Status lines on stderr, only for people watching a terminal. */
export function status(msg: string): void {
  if (process.stderr.isTTY) process.stderr.write(`${msg}\n`);
}

/** Resolves --model/--revision once (downloading into the Hugging Face cache if needed); returns the folder. */
export async function modelFolder(
  o: Record<string, unknown>,
): Promise<{ dir: string; threads?: number; dtype?: "fp32" | "int8"; onWarning: (w: string) => void }> {
  const id = typeof o.model === "string" && o.model ? o.model : DEFAULT_MODEL;
  status(`bridgetower: resolving ${id}`);
  const { dir } = await resolveModel(id, { revision: typeof o.revision === "string" ? o.revision : undefined });
  const dtype = dtypeFlag(o.dtype);
  return { dir, threads: positiveInt(o.threads, "--threads"), dtype, onWarning: (w) => console.error(`bridgetower: warning: ${w}`) };
}

export const fmt = (x: number, digits = 4) => x.toFixed(digits);
