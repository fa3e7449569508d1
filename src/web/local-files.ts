/**
 * The page's stand-in for src/io/local-files.ts (the web build swaps it in): a page has no file system, so the
 * `fromFolder`-style loaders refuse; load by URL or Hub id with `fromPretrained` instead.
 */
import { InputError } from "../errors.js";

export async function readFile(path: string, _encoding?: string): Promise<string> {
  throw new InputError(path, "local files cannot be read in the browser: load the model by URL or Hub id with fromPretrained");
}

export function join(...parts: string[]): string {
  return parts.join("/");
}
