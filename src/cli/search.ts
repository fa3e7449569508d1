/** `bridgetower search`: a text and/or image query against a collection; a table or JSON, best first. */
import { Collection, InputError, type SearchResult } from "../index.js";
import { parse, type CommandSpec } from "./args.js";
import { dtypeFlag, fmt, positiveInt } from "./common.js";

export const searchSpec: CommandSpec = {
  name: "search",
  usage: "bridgetower search [TEXT] [--image F] --db DIR [--top-k 10] [--rerank N] [--json]",
  summary: "Search a collection made by `index`: by text, by image, or by both (their pair embedding).",
  options: {
    db: { type: "string", help: "the collection's folder (or s3:// gs:// az:// URI)" },
    image: { type: "string", help: "query image file" },
    "top-k": { type: "string", help: "results (default 10)" },
    rerank: { type: "string", help: "re-rank the best N by cosine with the ITM head (text queries); adds itm_score" },
    json: { type: "boolean", help: "print a JSON array of {id, source, modality, text?, video?, time_ms?, frame?, score, itm_score?}" },
    model: { type: "string", help: "model folder or Hub id (default: the one the collection records; another is refused)" },
    revision: { type: "string", help: "Hub revision (default: the commit the collection records)" },
    dtype: { type: "string", help: "fp32 or int8 (default: the collection's own; another is refused)" },
    threads: { type: "string", help: "onnxruntime threads (default: all cores)" },
    "frames-dir": { type: "string", help: "where the video frames are (default DIR/frames)" },
  },
  positionals: true,
};

const clock = (ms: number) => {
  const s = ms / 1000;
  return `${Math.floor(s / 60)}:${(s % 60).toFixed(3).padStart(6, "0")}`;
};

function table(results: SearchResult[]): string {
  const rerank = results.some((r) => r.itm_score !== undefined);
  const lines = [`${"rank".padEnd(5)}${"score".padEnd(8)}${rerank ? "itm".padEnd(8) : ""}${"modality".padEnd(9)}source`];
  results.forEach((r, i) => {
    const where = r.time_ms !== undefined ? `${r.source} @ ${clock(r.time_ms)}` : r.source;
    const itm = rerank ? (r.itm_score === undefined ? "-" : fmt(r.itm_score)).padEnd(8) : "";
    lines.push(`${String(i + 1).padEnd(5)}${fmt(r.score).padEnd(8)}${itm}${r.modality.padEnd(9)}${where}${r.text ? `  ${JSON.stringify(r.text)}` : ""}`);
  });
  return lines.join("\n");
}

export async function searchCommand(argv: string[]): Promise<void> {
  const { values: o, positionals } = parse(searchSpec, argv);
  if (typeof o.db !== "string" || !o.db) throw new InputError("--db", "is required: the collection's folder (see --help)");
  const text = positionals.length ? positionals.join(" ") : undefined;
  const image = o.image as string | undefined;
  if (!text?.trim() && !image) throw new InputError("search", "give a TEXT, an --image, or both (see --help)");
  const topK = positiveInt(o["top-k"], "--top-k") ?? 10;
  const rerank = positiveInt(o.rerank, "--rerank");
  if (rerank && !text?.trim()) throw new InputError("--rerank", "needs a TEXT query (ITM scores the text against each image)");
  const dtype = dtypeFlag(o.dtype);
  const collection = await Collection.open(o.db, {
    model: o.model as string | undefined,
    dtype,
    threads: positiveInt(o.threads, "--threads"),
    hub: o.revision ? { revision: o.revision as string } : undefined,
    framesDir: o["frames-dir"] as string | undefined,
    onWarning: (w) => console.error(`bridgetower: warning: ${w}`),
  });
  try {
    const results = await collection.search({ text, image }, { topK, rerank });
    console.log(o.json ? JSON.stringify(results) : table(results));
  } finally {
    await collection.close();
  }
}
