import { helpText, type CommandSpec } from "./args.js";
import { reportError, EXIT } from "./errors.js";
import { convert, convertSpec } from "./convert.js";
import { exportCommand, exportSpec } from "./export.js";
import { forward, forwardSpec } from "./forward.js";
import { embedCommand, embedSpec, fillMaskCommand, fillMaskSpec, itm, itmSpec } from "./jobs.js";
import { indexCommand, indexSpec } from "./index-command.js";
import { preprocess, preprocessSpec } from "./preprocess.js";
import { searchCommand, searchSpec } from "./search.js";
import { serveCommand, serveSpec } from "./serve.js";

interface Command {
  spec: CommandSpec;
  /** Resolves to the exit code, or nothing for 0. */
  run(argv: string[]): Promise<void | number>;
}

const COMMANDS: Command[] = [
  { spec: itmSpec, run: itm },
  { spec: fillMaskSpec, run: fillMaskCommand },
  { spec: embedSpec, run: embedCommand },
  { spec: indexSpec, run: indexCommand },
  { spec: searchSpec, run: searchCommand },
  { spec: serveSpec, run: serveCommand },
  { spec: preprocessSpec, run: preprocess },
  { spec: forwardSpec, run: forward },
  { spec: convertSpec, run: convert },
  { spec: exportSpec, run: exportCommand },
];

function usage(): string {
  return [
    "usage: bridgetower <command> [options]",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(12)} ${c.spec.summary}`),
    "",
    "Run `bridgetower <command> --help` for a command's options.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name ? 0 : EXIT.usage;
  }
  const cmd = COMMANDS.find((c) => c.spec.name === name);
  if (!cmd) {
    console.error(`bridgetower: unknown command "${name}" (commands: ${COMMANDS.map((c) => c.spec.name).join(", ")})`);
    return EXIT.usage;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(helpText(cmd.spec));
    return 0;
  }
  try {
    return (await cmd.run(rest)) ?? 0;
  } catch (e) {
    return reportError(e);
  }
}
