/**
 * File access of the shared parsers (config.json, preprocessor_config.json, tokenizer files), in one Node-only
 * module so they stay importable in the browser: the web build (src/web/build.ts) puts src/web/local-files.ts
 * in its place, where a page loads by URL instead.
 */
export { readFile } from "node:fs/promises";
export { join } from "node:path";
