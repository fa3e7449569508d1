/**
 * Downloads one blob into blobs/{etag}: bytes go to {etag}.incomplete, resumed with a Range header after an
 * interruption, checked (size, and sha256 for LFS etags), and only then renamed into place.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, rename, stat, truncate, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { HubError } from "../errors.js";
import { NetworkError, discard, readBody, send, statusError, type Target } from "./http.js";
import type { Settings } from "./options.js";
import { endProgressLine, stderrProgress, warn } from "./progress.js";

const SHA256 = /^[0-9a-f]{64}$/;

export interface BlobJob {
  /** Where to GET the bytes (the resolve URL, or the CDN location it redirects to). */
  url: string;
  headers: Record<string, string>;
  blob: string;
  etag: string;
  expectedSize: number | undefined;
  target: Target;
}

/** Strips the weak marker and quotes, as huggingface_hub does. */
export function normalizeEtag(etag: string | null): string | undefined {
  if (etag === null) return undefined;
  const e = etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  return e === "" ? undefined : e;
}

async function sizeOf(p: string): Promise<number | undefined> {
  try {
    return (await stat(p)).size;
  } catch {
    return undefined;
  }
}

async function hashPrefix(p: string, length: number): Promise<Hash> {
  const h = createHash("sha256");
  if (length > 0) for await (const c of createReadStream(p, { end: length - 1 })) h.update(c as Buffer);
  return h;
}

function rangeStart(res: Response): number | undefined {
  const m = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
  return m ? Number(m[1]) : undefined;
}

// Two calls for the same blob in one process share a download instead of writing one .incomplete twice.
const inflight = new Map<string, Promise<void>>();

export function downloadBlob(s: Settings, job: BlobJob): Promise<void> {
  let p = inflight.get(job.blob);
  if (!p) {
    p = run(s, job)
      .catch((e: unknown) => {
        endProgressLine();
        throw e;
      })
      .finally(() => inflight.delete(job.blob));
    inflight.set(job.blob, p);
  }
  return p;
}

/**
 * Another process may be downloading the same blob into the same cache (two commands started together):
 * `{blob}.lock` holds the downloader's pid; others wait for it, then use the finished blob. A lock left by a
 * process that died is taken over.
 */
async function withBlobLock(job: BlobJob, fn: () => Promise<void>): Promise<void> {
  const lock = `${job.blob}.lock`;
  let told = false;
  for (;;) {
    try {
      const fh = await open(lock, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const text = await readFile(lock, "utf8").catch(() => "");
    const pid = Number(text);
    // An empty lock is one being written right now, unless it is old (its writer died at once).
    const fresh = text === "" && Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? 0) < 10_000;
    if (!fresh && !alive(pid)) {
      await unlink(lock).catch(() => {}); // stale: its owner is gone
      continue;
    }
    if (!told) warn(`waiting for another process (pid ${pid}) that is downloading "${job.target.file}" of ${job.target.repoId}`);
    told = true;
    await new Promise((r) => setTimeout(r, 200));
  }
  try {
    if ((await sizeOf(job.blob)) === undefined) await fn(); // unless the other process finished it
  } finally {
    await unlink(lock).catch(() => {});
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function run(s: Settings, job: BlobJob): Promise<void> {
  await mkdir(dirname(job.blob), { recursive: true });
  await withBlobLock(job, () => fetchBlob(s, job));
}

async function fetchBlob(s: Settings, job: BlobJob): Promise<void> {
  const { target, expectedSize } = job;
  const incomplete = `${job.blob}.incomplete`;
  const report = s.onProgress ?? stderrProgress(`${target.repoId}/${target.file}`);
  const wantSha = SHA256.test(job.etag);
  let hash: Hash | undefined;
  let hashed = 0;
  let failures = 0;

  for (;;) {
    let offset = (await sizeOf(incomplete)) ?? 0;
    if (expectedSize !== undefined && offset > expectedSize) {
      await truncate(incomplete, 0);
      offset = 0;
    }
    if (expectedSize !== undefined && offset === expectedSize && offset > 0) break;
    const headers: Record<string, string> = { ...job.headers, "accept-encoding": "identity" };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    try {
      const o = await send(s, "GET", job.url, headers, "all");
      if (o.res.status === 416 && offset > 0) {
        // The server has nothing past our bytes: start over rather than trust them.
        await discard(o.res);
        await truncate(incomplete, 0);
        throw new NetworkError("ERANGE", `the server refused to resume at byte ${offset}`);
      }
      if (!o.res.ok) {
        await discard(o.res);
        throw statusError(target, o.res);
      }
      const append = o.res.status === 206 && offset > 0;
      if (append && rangeStart(o.res) !== offset) {
        await discard(o.res);
        throw new HubError(target.repoId, `the server resumed "${target.file}" at the wrong byte (asked ${offset})`);
      }
      if (!append) offset = 0;
      if (wantSha && (hash === undefined || hashed !== offset)) {
        hash = await hashPrefix(incomplete, offset);
        hashed = offset;
      }
      const fh = await open(incomplete, append ? "a" : "w");
      let done = offset;
      report({ file: target.file, downloaded: done, total: expectedSize });
      try {
        await readBody(o, s, async (c) => {
          await fh.write(c);
          hash?.update(c);
          done += c.length;
          hashed = done;
          report({ file: target.file, downloaded: done, total: expectedSize });
        });
      } finally {
        await fh.close();
      }
      if (expectedSize !== undefined && done < expectedSize) {
        throw new NetworkError("ECONNRESET", `the connection closed after ${done} of ${expectedSize} bytes`);
      }
      break;
    } catch (e) {
      if (!(e instanceof NetworkError) || failures >= s.retries) throw e;
      failures++;
      warn(
        `downloading "${target.file}" from ${target.repoId} was interrupted (${e.code}: ${e.message}); ` +
          `resuming (retry ${failures} of ${s.retries})`,
      );
      await new Promise((r) => setTimeout(r, s.retryDelayMs));
    }
  }

  const size = (await sizeOf(incomplete)) ?? 0;
  if (expectedSize !== undefined && size !== expectedSize) {
    await unlink(incomplete);
    throw new HubError(
      target.repoId,
      `the download of "${target.file}" has ${size} bytes instead of ${expectedSize}: it was discarded, try again`,
    );
  }
  if (wantSha) {
    if (hash === undefined || hashed !== size) hash = await hashPrefix(incomplete, size);
    const got = hash.digest("hex");
    if (got !== job.etag) {
      await unlink(incomplete);
      throw new HubError(
        target.repoId,
        `the download of "${target.file}" is corrupt (sha256 ${got}, expected ${job.etag}): it was discarded, try again`,
      );
    }
  }
  await rename(incomplete, job.blob);
}
