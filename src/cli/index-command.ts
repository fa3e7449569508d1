/** `bridgetower index`: flags to `Collection.add`, progress on stderr, one line per skipped file, the summary on stdout. */
import { Collection, InputError, type IndexProgress } from "../index.js";
import { parse, type CommandSpec } from "./args.js";
import { dtypeFlag, positiveInt } from "./common.js";

export const indexSpec: CommandSpec = {
  name: "index",
  usage:
    "bridgetower index SOURCE... --db DIR [--model ID|DIR] [--dtype fp32|int8] [--captions FILE.jsonl] [--context 2] [--frames-every 5] [--prune] [--batch-size N]",
  summary: "Index images, captioned images and videos (frames with their transcript) into a collection for `search`.",
  options: {
    db: { type: "string", help: "the collection: a folder (created if needed), or s3:// gs:// az:// (see README)" },
    model: { type: "string", help: "model folder or Hub id with ITC heads (default: the collection's own; for a new one BridgeTower/bridgetower-large-itm-mlm-itc)" },
    revision: { type: "string", help: "Hub revision: branch, tag or commit (default main)" },
    dtype: { type: "string", help: "fp32 or int8 (default: the collection's own; for a new one fp32)" },
    threads: { type: "string", help: "onnxruntime threads (default: all cores)" },
    captions: { type: "string", help: 'JSONL lines {"image": PATH, "text": CAPTION} (paths relative to the file); their images are indexed too' },
    context: { type: "string", help: "transcript cues joined on each side of a video cue (default 2)" },
    "frames-every": { type: "string", help: "seconds between frames of a video without a NAME.vtt transcript (default 5)" },
    "frames-dir": { type: "string", help: "where video frames are written (default DIR/frames; needed for videos when --db is on object storage)" },
    prune: { type: "boolean", help: "also remove rows whose source file is gone" },
    "batch-size": { type: "string", help: "rows per model call and per commit (default 8); an interrupted run loses at most the batches in flight" },
  },
  positionals: true,
};

function duration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.round(s)}s`;
}

/** Progress on stderr: a line rewritten in place on a terminal; otherwise at the first commit and every 5 s. */
function progressPrinter(): (p: IndexProgress) => void {
  const tty = process.stderr.isTTY;
  const t0 = performance.now();
  let shown = -Infinity;
  let first = true;
  return (p) => {
    if (p.phase === "ann-index") {
      if (p.done === 0) process.stderr.write(`${tty ? "\r\x1b[K" : ""}bridgetower: building the ANN index over ${p.total} rows\n`);
      return;
    }
    if (p.done === 0) return;
    const now = performance.now();
    const last = p.done === p.total;
    if (!tty && !first && now - shown < 5000 && !last) return;
    if (tty && now - shown < 100 && !last) return;
    first = false;
    shown = now;
    const rate = p.done / ((now - t0) / 1000);
    const line = `bridgetower: ${p.done}/${p.total} items, ${rate.toFixed(1)} items/s, ETA ${duration((p.total - p.done) / rate)}`;
    process.stderr.write(tty ? `\r\x1b[K${line}${last ? "\n" : ""}` : `${line}\n`);
  };
}

export async function indexCommand(argv: string[]): Promise<number> {
  const { values: o, positionals: sources } = parse(indexSpec, argv);
  if (typeof o.db !== "string" || !o.db) throw new InputError("--db", "is required: the collection's folder (see --help)");
  if (sources.length === 0 && !o.captions) throw new InputError("index", "give at least one SOURCE file or folder, or --captions (see --help)");
  const dtype = dtypeFlag(o.dtype);
  const context = o.context === undefined ? undefined : Number(o.context);
  if (context !== undefined && !(Number.isInteger(context) && context >= 0)) throw new InputError("--context", `must be a whole number >= 0, got "${o.context}"`);
  const every = o["frames-every"] === undefined ? undefined : Number(o["frames-every"]);
  if (every !== undefined && !(every > 0 && Number.isFinite(every))) throw new InputError("--frames-every", `must be a positive number of seconds, got "${o["frames-every"]}"`);
  const batchSize = positiveInt(o["batch-size"], "--batch-size");
  const collection = await Collection.open(o.db, {
    create: true,
    model: o.model as string | undefined,
    dtype,
    threads: positiveInt(o.threads, "--threads"),
    hub: { revision: o.revision as string | undefined },
    framesDir: o["frames-dir"] as string | undefined,
    onWarning: (w) => console.error(`bridgetower: warning: ${w}`),
  });
  // Ctrl-C (or SIGTERM) stops after the batch being committed; a second one stops at once (the table stays whole).
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
    console.error("bridgetower: interrupted: committing the batch in flight (again to stop now; a rerun completes the rest)");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const s = await collection.add(sources, {
      captions: o.captions as string | undefined,
      context,
      framesEvery: every,
      prune: o.prune === true,
      batchSize,
      signal: stop.signal,
      onProgress: progressPrinter(),
      onFailure: (e) => console.error(`bridgetower: skipped ${e.message.replace(/\s*\n\s*/g, " ")}`),
    });
    console.log(`indexed ${s.indexed}, unchanged ${s.unchanged}, removed ${s.removed}, failed ${s.failed}`);
    return s.interrupted ? 130 : s.failed > 0 ? 2 : 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await collection.close();
  }
}
