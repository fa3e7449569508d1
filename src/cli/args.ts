import { parseArgs } from "node:util";

export interface OptionSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  help: string;
}

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  options: Record<string, OptionSpec>;
  /** Whether positional arguments are accepted. */
  positionals?: boolean;
}

export type ParsedValues = Record<string, string | boolean | string[] | undefined>;

/** Strict parsing of one command's arguments (unknown flags are errors). */
export function parse(spec: CommandSpec, argv: string[]): { values: ParsedValues; positionals: string[] } {
  const options = Object.fromEntries(
    Object.entries(spec.options).map(([k, o]) => [k, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) }]),
  );
  const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: spec.positionals ?? false });
  return { values: values as ParsedValues, positionals };
}

export function helpText(spec: CommandSpec): string {
  const lines = [`usage: ${spec.usage}`, "", spec.summary, "", "options:"];
  for (const [k, o] of Object.entries(spec.options)) {
    const flag = `--${k}${o.type === "string" ? " VALUE" : ""}${o.multiple ? " (repeatable)" : ""}`;
    lines.push(`  ${flag.padEnd(30)} ${o.help}`);
  }
  lines.push(`  ${"--help".padEnd(30)} show this help`);
  return lines.join("\n");
}
