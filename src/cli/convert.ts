import { access } from "node:fs/promises";
import { join } from "node:path";
import { InputError } from "../errors.js";
import { convertToSafetensors } from "../io/convert.js";
import { parse, type CommandSpec } from "./args.js";

export const convertSpec: CommandSpec = {
  name: "convert",
  usage: "bridgetower convert DIR [--force]",
  summary: "Write DIR/model.safetensors from DIR/pytorch_model.bin (tensor by tensor, atomically).",
  options: { force: { type: "boolean", help: "overwrite an existing model.safetensors" } },
  positionals: true,
};

export async function convert(argv: string[]): Promise<void> {
  const { values: o, positionals } = parse(convertSpec, argv);
  if (positionals.length !== 1) throw new InputError("convert", "needs exactly one model folder (see --help)");
  const dir = positionals[0];
  const src = join(dir, "pytorch_model.bin");
  const dst = join(dir, "model.safetensors");
  await access(src).catch(() => {
    throw new InputError(src, "not found: convert needs a folder with pytorch_model.bin");
  });
  if (!o.force && (await access(dst).then(() => true, () => false)))
    throw new InputError(dst, "already exists (pass --force to overwrite)");
  let last = 0;
  const r = await convertToSafetensors(src, dst, (done, total) => {
    const now = Date.now();
    if (process.stderr.isTTY && (now - last > 500 || done === total)) {
      last = now;
      process.stderr.write(`\rconverting: ${((100 * done) / Math.max(total, 1)).toFixed(0)}%${done === total ? "\n" : ""}`);
    }
  });
  console.log(`wrote ${dst}: ${r.tensors} tensors, ${(r.bytes / 2 ** 20).toFixed(1)} MiB`);
}
