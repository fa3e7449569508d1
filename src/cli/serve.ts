/** `bridgetower serve`: flags and environment to server options; the server itself is src/server. */
import { InputError } from "../errors.js";
import { DEFAULT_MAX_IMAGE_PIXELS, serve } from "../server/index.js";
import { parse, type CommandSpec } from "./args.js";
import { DEFAULT_MODEL, dtypeFlag, positiveInt } from "./common.js";

export const serveSpec: CommandSpec = {
  name: "serve",
  usage: "bridgetower serve [--model ID|DIR] [--db DIR] [--host 127.0.0.1] [--port 8080] [--dtype fp32|int8] [--threads N] [--api-key KEY] [--cors ORIGIN]",
  summary: "Serve the model over HTTP (OPEA /v1/encode, OpenAI-style /v1/embeddings, /v1/itm, /v1/fill-mask, /v1/search with --db, a web page).",
  options: {
    model: { type: "string", help: `model folder or Hub id (default ${DEFAULT_MODEL}, or with --db the collection's); every head it has is served` },
    db: { type: "string", help: "a collection made by `bridgetower index`: adds /v1/search, /v1/items/{id}/image and the page's Search view" },
    "frames-dir": { type: "string", help: "where the collection's video frames are (default DB/frames)" },
    revision: { type: "string", help: "Hub revision: branch, tag or commit (default main)" },
    host: { type: "string", help: "address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)" },
    port: { type: "string", help: "port (default $PORT or 8080; 0 = a free port)" },
    dtype: { type: "string", help: "fp32 (default; with --db the collection's) or int8 (quantized linear layers: faster, less memory)" },
    threads: { type: "string", help: "onnxruntime threads (default: all cores)" },
    "max-batch-size": { type: "string", help: "inputs run together in one model call (default 16)" },
    "max-queue": { type: "string", help: "inputs waiting at most; beyond, 429 (default 64)" },
    "max-body-mb": { type: "string", help: "largest request body in MiB (default 20)" },
    "max-inputs": { type: "string", help: "texts/images per request at most (default 64)" },
    "api-key": { type: "string", help: "require Authorization: Bearer KEY (default $BRIDGETOWER_API_KEY; health and metrics stay open)" },
    cors: { type: "string", help: "allow browser calls from this origin (e.g. https://example.org)" },
    quiet: { type: "boolean", help: "no request log lines on stderr" },
  },
};

export async function serveCommand(argv: string[]): Promise<void> {
  const { values: o } = parse(serveSpec, argv);
  const dtype = dtypeFlag(o.dtype);
  const portText = (o.port as string | undefined) ?? process.env.PORT ?? "8080";
  const port = Number(portText);
  if (portText.trim() === "" || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new InputError(o.port === undefined ? "PORT" : "--port", `must be a port number from 0 to 65535, got "${portText}"`);
  const maxBodyMb = o["max-body-mb"] === undefined ? 20 : Number(o["max-body-mb"]);
  if (!(maxBodyMb > 0) || !Number.isFinite(maxBodyMb)) throw new InputError("--max-body-mb", `must be a positive number, got "${o["max-body-mb"]}"`);
  const apiKey = (o["api-key"] as string | undefined) ?? process.env.BRIDGETOWER_API_KEY;
  if (o.db !== undefined && (typeof o.db !== "string" || !o.db)) throw new InputError("--db", "must name the collection's folder");
  const db = o.db as string | undefined;
  await serve({
    // With --db and no --model: the model the collection records.
    model: typeof o.model === "string" && o.model ? o.model : db ? undefined : DEFAULT_MODEL,
    db,
    framesDir: o["frames-dir"] as string | undefined,
    revision: o.revision as string | undefined,
    host: (o.host as string | undefined) ?? "127.0.0.1",
    port,
    dtype,
    threads: positiveInt(o.threads, "--threads"),
    maxBatchSize: positiveInt(o["max-batch-size"], "--max-batch-size") ?? 16,
    maxQueue: positiveInt(o["max-queue"], "--max-queue") ?? 64,
    maxBodyMb,
    maxInputs: positiveInt(o["max-inputs"], "--max-inputs") ?? 64,
    maxImagePixels: DEFAULT_MAX_IMAGE_PIXELS,
    apiKey: apiKey ? apiKey : undefined,
    cors: o.cors as string | undefined,
    quiet: o.quiet === true,
  });
  // Drained and closed: leave even if a handle lingers (e.g. a download cut short by the signal while loading).
  setTimeout(() => process.exit(), 2000).unref();
}
