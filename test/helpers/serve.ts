/** Starts `bin/bridgetower serve` as a child process and talks to it (tests and bench/serve.ts). */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { resolve } from "node:path";
import { crc32 } from "node:zlib";
import { fixture, repoRoot } from "./fixtures.js";

export const E2E = fixture("e2e-fullvocab");
export const BIN = resolve(repoRoot, "bin/bridgetower");
/** The CLI from src through tsx, for tests that must not need a build of dist/. */
const FROM_SOURCES = [process.execPath, "--import", "tsx", resolve(repoRoot, "test/helpers/cli-src.ts")];

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `n` texts of ~500 tokens: sent to /v1/embeddings, a batch that keeps the small fixture model busy for a few
 * hundred ms (16) to about a second (64), so that requests sent meanwhile have to wait.
 */
export const longTexts = (n: number) => Array.from({ length: n }, (_, i) => `caption ${i} ${"a cat on a mat ".repeat(100)}`);

export interface Served {
  url: string;
  proc: ChildProcess;
  /** Every stderr line so far. */
  lines: string[];
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** SIGKILL unless it has exited already. */
  kill(): void;
}

/** Spawns the server and waits (at most `timeoutMs`) for its `listening on URL` line. */
export async function startServer(
  // model null: no --model flag (with --db, the server takes the collection's model).
  args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; model?: string | null; threads?: number | "default"; fromSources?: boolean } = {},
): Promise<Served> {
  // One onnxruntime thread by default: the tests share the machine's cores.
  const threads = options.threads === "default" ? [] : ["--threads", String(options.threads ?? 1)];
  const model = options.model === null ? [] : ["--model", options.model ?? E2E];
  // BRIDGETOWER_SERVE_FROM_SOURCES=1 runs any server test against src (no build of dist/ needed).
  const [cmd, ...pre] = options.fromSources || process.env.BRIDGETOWER_SERVE_FROM_SOURCES === "1" ? FROM_SOURCES : [BIN];
  const proc = spawn(cmd, [...pre, "serve", ...model, "--port", "0", ...threads, ...args], {
    env: { ...process.env, HF_HUB_OFFLINE: "1", ...options.env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const lines: string[] = [];
  const exited = new Promise<number | string>((res) => proc.once("exit", (code, signal) => res(code ?? signal ?? -1)));
  const kill = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  };
  let partial = "";
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => (kill(), rej(new Error(`no "listening on" line within ${options.timeoutMs ?? 60_000} ms:\n${lines.join("\n")}`))), options.timeoutMs ?? 60_000);
    proc.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        const m = /^listening on (http:\/\/\S+)$/.exec(line);
        if (m) (clearTimeout(timer), res(m[1]));
      }
    });
    void exited.then((code) => (clearTimeout(timer), rej(new Error(`server exited (${code}) before listening:\n${lines.join("\n")}`))));
  });
  return { url, proc, lines, exited, kill };
}

/** POST JSON with a timeout; returns status, headers and the parsed body. */
export async function post(url: string, body: unknown, init: { headers?: Record<string, string>; raw?: string; timeoutMs?: number } = {}) {
  return answer(await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...init.headers },
    body: init.raw ?? JSON.stringify(body),
    signal: AbortSignal.timeout(init.timeoutMs ?? 60_000),
  }));
}

export async function get(url: string, headers: Record<string, string> = {}) {
  return answer(await fetch(url, { headers, signal: AbortSignal.timeout(30_000) }));
}

/** Status, headers, the body as text and as JSON (undefined when it is not JSON). */
async function answer(res: Response) {
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** An image file of the e2e fixture as a data: URL. */
export function dataUrl(name: string): string {
  return `data:image/png;base64,${readFileSync(resolve(E2E, "images", name)).toString("base64")}`;
}

export function expectedJson(): any {
  return JSON.parse(readFileSync(resolve(E2E, "expected.json"), "utf8"));
}

/** A PNG that is only a header claiming `w` x `h` pixels (refused before any decoding). */
export function pngHeader(w: number, h: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", Buffer.alloc(16)), chunk("IEND", Buffer.alloc(0))]);
}

/** Sends raw bytes over one connection and returns everything the server writes back before closing. */
export function rawHttp(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((res, rej) => {
    let out = "";
    const socket = connect(Number(port), hostname, () => socket.write(request));
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer within 10 s")));
    socket.on("data", (d) => (out += d)).on("end", () => res(out)).on("error", rej);
  });
}
