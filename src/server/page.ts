/**
 * The web page's files. They live in src/server/page/ (tsc copies nothing but TypeScript), found from
 * src/server (tests, via tsx) and from dist/server (the built package, which ships src/server/page).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/in-browser.js": { file: "in-browser.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

/**
 * Nothing from elsewhere; images come in as data: URLs and file previews as blob: URLs. 'wasm-unsafe-eval' lets
 * onnxruntime-web compile its WebAssembly ("run in this browser"); it allows no JavaScript eval.
 */
export const PAGE_CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

function pageDir(): string {
  for (const rel of ["./page/", "../../src/server/page/"]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new Error("the server's page files (src/server/page) are missing from the package");
}

/** Reads the page's files once; the server answers from memory. */
export async function loadPage(): Promise<Map<string, { body: Buffer; type: string }>> {
  const dir = pageDir();
  const out = new Map<string, { body: Buffer; type: string }>();
  for (const [path, f] of Object.entries(FILES)) out.set(path, { body: await readFile(dir + f.file), type: f.type });
  return out;
}

/** The package's version, from the package.json two levels up from src/server or dist/server. */
export async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}
