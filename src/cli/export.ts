import { InputError } from "../errors.js";
import { exportModel, type ExportHead } from "../export/index.js";
import { parse, type CommandSpec } from "./args.js";
import { dtypeFlag, required } from "./common.js";

export const exportSpec: CommandSpec = {
  name: "export",
  usage: "bridgetower export ID|DIR --out OUTDIR [--dtype fp32|int8] [--heads itm,mlm,itc] [--parts] [--force] [--revision R]",
  summary: "Write self-contained ONNX graphs of the model (one per head, weights beside them) for any onnxruntime.",
  options: {
    out: { type: "string", help: "output folder (must be empty or absent unless --force)" },
    dtype: { type: "string", help: "fp32 (default) or int8 (the quantized graphs of --dtype int8)" },
    heads: { type: "string", help: "comma-separated heads (default: every head the checkpoint has)" },
    parts: { type: "boolean", help: "also write text/vision/trunk/head_* graphs and a README on chaining them" },
    force: { type: "boolean", help: "replace a non-empty OUTDIR (the new folder is moved in, then the old one removed)" },
    revision: { type: "string", help: "Hub revision: branch, tag or commit (default main)" },
  },
  positionals: true,
};

export async function exportCommand(argv: string[]): Promise<void> {
  const { values: o, positionals } = parse(exportSpec, argv);
  if (positionals.length !== 1) throw new InputError("export", "needs exactly one model folder or Hub id (see --help)");
  const dtype = dtypeFlag(o.dtype);
  const heads = typeof o.heads === "string" ? (o.heads.split(",").map((h) => h.trim()).filter(Boolean) as ExportHead[]) : "available";
  const log = (m: string) => process.stderr.write(`bridgetower export: ${m}\n`);
  const r = await exportModel(positionals[0], {
    out: required(o.out, "--out"),
    dtype,
    heads,
    parts: o.parts === true,
    force: o.force === true,
    revision: typeof o.revision === "string" ? o.revision : undefined,
    onStep: log,
    onWarning: (w) => log(`warning: ${w}`),
  });
  console.log(`${r.out}: ${r.manifest.graphs.map((g) => g.file).join(", ")} (${r.heads.join(", ")}, ${r.manifest.dtype})`);
}
