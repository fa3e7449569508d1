/**
 * Bundles `bridgetower/web` (src/web/index.ts) for the browser into dist/web/bridgetower.js, and copies
 * onnxruntime-web's WebAssembly files beside it (dist/web/ort/). Two Node-only modules of the shared code are
 * swapped for the page's: model/engine.ts (loading + sessions) and io/local-files.ts (file reads). The build fails
 * if anything else would pull a Node built-in into the bundle (platform "browser" cannot resolve them).
 */
import { build, type Plugin } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const out = join(root, "dist/web");
const SWAPS: Record<string, string> = {
  [join(root, "src/model/engine.ts")]: join(root, "src/web/engine.ts"),
  [join(root, "src/io/local-files.ts")]: join(root, "src/web/local-files.ts"),
};
/** The WebAssembly build onnxruntime-web's default entry loads (CPU and WebGPU). */
const ORT_FILES = ["ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm"];

const swap: Plugin = {
  name: "bridgetower-web-swaps",
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      const target = SWAPS[resolve(args.resolveDir, args.path.replace(/\.js$/, ".ts"))];
      return target ? { path: target } : undefined;
    });
  },
};

await build({
  entryPoints: [join(root, "src/web/index.ts")],
  outfile: join(out, "bridgetower.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  // onnxruntime-web's entry that loads its .mjs/.wasm from env.wasm.wasmPaths instead of embedding them.
  conditions: ["onnxruntime-web-use-extern-wasm"],
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
  plugins: [swap],
});
mkdirSync(join(out, "ort"), { recursive: true });
for (const f of ORT_FILES) copyFileSync(join(root, "node_modules/onnxruntime-web/dist", f), join(out, "ort", f));
