/**
 * A local imitation of the Hugging Face Hub's file endpoints, on 127.0.0.1, for the download tests.
 * It serves folders as repos at `/{org}/{name}/resolve/{revision}/{path}` with the Hub's headers:
 * X-Repo-Commit, ETag (git sha1 for small files), and for LFS files (.safetensors, .bin) a 302 to a
 * CDN-like path carrying X-Linked-Etag (sha256) and X-Linked-Size. It supports Range, and can demand a
 * token, cut or stall a download once, or corrupt one.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fixturesDir } from "./fixtures.js";
import { join, relative, resolve } from "node:path";

export function fixturesRoot(): string {
  return fixturesDir;
}

export interface RepoSpec {
  dir: string;
  /** Files of `dir` the repo does not have. */
  hide?: string[];
}

export interface ServedFile {
  path: string;
  size: number;
  lfs: boolean;
  /** What the Hub sends as the file's ETag: sha256 for LFS files, git blob sha1 otherwise. */
  etag: string;
}

export interface LoggedRequest {
  method: string;
  path: string;
  /** "hub" or "cdn" (the second listener, used when cdnOtherHost is on). */
  listener: string;
  range?: string;
  authorization?: string;
}

export interface HubServer {
  url: string;
  requests: LoggedRequest[];
  /** When set, resolve requests without `Authorization: Bearer <token>` get 401. */
  requireToken: string | undefined;
  /** Repo file paths whose next download is cut halfway / stalls halfway / has a flipped byte. */
  cutOnce: Set<string>;
  stallOnce: Set<string>;
  corruptOnce: Set<string>;
  /** Redirect LFS files to a second listener (another host:port) instead of the same server. */
  cdnOtherHost: boolean;
  commit(repoId: string): string;
  file(repoId: string, path: string): ServedFile;
  close(): Promise<void>;
}

const LFS = /\.(safetensors|bin|onnx|h5|msgpack)$/;

function listFiles(dir: string, hide: string[]): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(relative(dir, p).split("\\").join("/"));
    }
  };
  walk(dir);
  return out.filter((f) => !hide.includes(f));
}

function describe(path: string, name: string): ServedFile {
  const data = readFileSync(path);
  const lfs = LFS.test(name);
  const etag = lfs
    ? createHash("sha256").update(data).digest("hex")
    : createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
  return { path, size: data.length, lfs, etag };
}

export async function startHubServer(
  repos: Record<string, RepoSpec> = {
    "BridgeTower/e2e-fullvocab": { dir: join(fixturesRoot(), "e2e-fullvocab") },
  },
  aliases: Record<string, string> = {},
): Promise<HubServer> {
  const served = new Map<string, Map<string, ServedFile>>();
  const bySha = new Map<string, { repo: string; name: string; file: ServedFile }>();
  for (const [id, spec] of Object.entries(repos)) {
    const files = new Map<string, ServedFile>();
    for (const name of listFiles(spec.dir, spec.hide ?? [])) {
      const f = describe(join(spec.dir, name), name);
      files.set(name, f);
      if (f.lfs) bySha.set(f.etag, { repo: id, name, file: f });
    }
    served.set(id, files);
  }
  const commit = (id: string) => createHash("sha1").update(`fake commit of ${id}`).digest("hex");
  const data = new Map<string, Buffer>();
  const bytes = (f: ServedFile) => {
    let b = data.get(f.path);
    if (!b) data.set(f.path, (b = readFileSync(f.path)));
    return b;
  };

  const state = {
    requests: [] as LoggedRequest[],
    requireToken: undefined as string | undefined,
    cutOnce: new Set<string>(),
    stallOnce: new Set<string>(),
    corruptOnce: new Set<string>(),
    cdnOtherHost: false,
  };

  function serveBytes(req: IncomingMessage, res: ServerResponse, name: string, f: ServedFile, extra: Record<string, string>) {
    let body = bytes(f);
    const size = body.length;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const headers: Record<string, string | number> = { ...extra, "accept-ranges": "bytes" };
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
      if (start >= size) {
        res.writeHead(416, { "content-range": `bytes */${size}` }).end();
        return;
      }
      status = 206;
      headers["content-range"] = `bytes ${start}-${end}/${size}`;
    }
    headers["content-length"] = end - start + 1;
    if (req.method === "HEAD") {
      res.writeHead(status, headers).end();
      return;
    }
    body = body.subarray(start, end + 1);
    const half = Math.floor(body.length / 2);
    if (state.corruptOnce.delete(name)) {
      body = Buffer.from(body);
      body[half] = body[half]! ^ 0xff;
    }
    if (state.cutOnce.delete(name)) {
      res.writeHead(status, headers);
      res.write(body.subarray(0, half), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (state.stallOnce.delete(name)) {
      res.writeHead(status, headers);
      res.write(body.subarray(0, half)); // and then nothing: the client's read timeout must notice
      return;
    }
    res.writeHead(status, headers).end(body);
  }

  function notFound(res: ServerResponse, code: string, message: string, extra: Record<string, string> = {}) {
    res.writeHead(404, { "x-error-code": code, "x-error-message": message, ...extra }).end(message);
  }

  function handle(listener: string, req: IncomingMessage, res: ServerResponse) {
    const path = req.url ?? "/";
    state.requests.push({
      method: req.method ?? "",
      path,
      listener,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (cdn) {
      const hit = bySha.get(cdn[1]!);
      if (!hit) return notFound(res, "EntryNotFound", "no such object");
      // A CDN's own ETag is not the sha256: clients must use X-Linked-Etag from the redirect.
      return serveBytes(req, res, hit.name, hit.file, { etag: `"cdn-${hit.file.etag.slice(0, 16)}"` });
    }
    const m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m || (req.method !== "GET" && req.method !== "HEAD")) return notFound(res, "NotFound", "not a Hub path");
    const repo = `${m[1]}/${m[2]}`;
    const revision = decodeURIComponent(m[3]!);
    const name = m[4]!.split("/").map(decodeURIComponent).join("/");
    if (aliases[repo]) {
      // A renamed repo: the Hub answers with a relative redirect.
      res.writeHead(307, { location: `/${aliases[repo]}/resolve/${m[3]}/${m[4]}` }).end();
      return;
    }
    const files = served.get(repo);
    if (!files) return notFound(res, "RepoNotFound", "Repository not found");
    if (state.requireToken !== undefined && req.headers.authorization !== `Bearer ${state.requireToken}`) {
      res.writeHead(401, { "x-error-message": "Access to this model is restricted" }).end();
      return;
    }
    const sha = commit(repo);
    if (revision !== "main" && revision !== sha) return notFound(res, "RevisionNotFound", "Invalid rev id");
    const f = files.get(name);
    if (!f) return notFound(res, "EntryNotFound", "Entry not found", { "x-repo-commit": sha });
    if (f.lfs) {
      const port = ((state.cdnOtherHost ? cdnServer : server).address() as AddressInfo).port;
      const pointerSha = createHash("sha1").update(`version https://git-lfs.github.com/spec/v1\noid sha256:${f.etag}\n`).digest("hex");
      res
        .writeHead(302, {
          location: `http://127.0.0.1:${port}/cdn/${f.etag}`,
          "x-repo-commit": sha,
          etag: `"${pointerSha}"`,
          "x-linked-etag": `"${f.etag}"`,
          "x-linked-size": String(f.size),
          "content-length": "0",
        })
        .end();
      return;
    }
    serveBytes(req, res, name, f, { etag: `"${f.etag}"`, "x-repo-commit": sha });
  }

  const server: Server = createServer((req, res) => handle("hub", req, res));
  const cdnServer: Server = createServer((req, res) => handle("cdn", req, res));
  const listen = (s: Server) => new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok));
  await Promise.all([listen(server), listen(cdnServer)]);
  const port = (server.address() as AddressInfo).port;

  const stop = (s: Server) =>
    new Promise<void>((ok) => {
      s.close(() => ok());
      s.closeAllConnections();
    });

  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    commit,
    file(repoId: string, path: string): ServedFile {
      const f = served.get(repoId)?.get(path);
      if (!f) throw new Error(`the test Hub has no ${repoId}/${path}`);
      return f;
    },
    close: () => Promise.all([stop(server), stop(cdnServer)]).then(() => undefined),
  });
}
