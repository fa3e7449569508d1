import { BridgeTowerError } from "../errors.js";

/** Exit codes, documented in the README. */
export const EXIT = { usage: 2, internal: 1 } as const;

/** Prints one line `bridgetower: <message>` and returns the exit code; stacks only with BRIDGETOWER_DEBUG=1. */
export function reportError(e: unknown): number {
  if (process.env.BRIDGETOWER_DEBUG === "1") console.error(e);
  if (e instanceof BridgeTowerError) {
    console.error(`bridgetower: ${oneLine(e.message)}`);
    return e.exitCode;
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === "object" && err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    console.error(`bridgetower: ${oneLine(err.message)} (see --help)`);
    return EXIT.usage;
  }
  if (err && typeof err === "object" && typeof err.code === "string" && err.code.startsWith("ERR_PARSE_ARGS")) {
    console.error(`bridgetower: ${oneLine(err.message)}`);
    return EXIT.usage;
  }
  if (err && typeof err === "object" && ["ENOENT", "EACCES", "EISDIR", "ENOTDIR", "ENOSPC"].includes(String(err.code))) {
    console.error(`bridgetower: ${oneLine(err.message)}`);
    return EXIT.internal;
  }
  console.error(`bridgetower: internal error: ${oneLine(String((e as Error)?.message ?? e))} (set BRIDGETOWER_DEBUG=1 for details)`);
  return EXIT.internal;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").trim();
}
