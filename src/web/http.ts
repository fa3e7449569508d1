/**
 * Where a model's files come from in the page: a Hub repo (the resolve URLs and revision rules of src/hub) or any
 * base URL serving a model folder. Whole small files, and byte ranges of large ones with resume.
 */
import { HubError } from "../errors.js";
import { statusError } from "../hub/http.js";
import { checkFileName, checkRepoId, checkRevision, fileUrl } from "../hub/names.js";

export const DEFAULT_ENDPOINT = "https://huggingface.co";
const COMMIT = /^[0-9a-f]{40}$/;
const URL_LIKE = /^([a-z][a-z0-9+.-]*:|\/|\.\.?\/)/i;

export interface SourceOptions {
  /** Hub endpoint for repo ids (default https://huggingface.co). */
  endpoint?: string;
  /** Branch, tag or commit of a Hub repo (default "main"). */
  revision?: string;
  /** Resumes of a cut download before giving up (default 5), and the pause before each (ms, default 500). */
  retries?: number;
  retryDelayMs?: number;
  /** Longest silence while a body is read, in ms (default 30 s). */
  readTimeoutMs?: number;
}

export class Source {
  /** The commit config.json came from, when the server says (X-Repo-Commit); later files are read at it. */
  commit?: string;

  private constructor(
    /** Names the model in errors and cache keys: the repo id or the base URL. */
    readonly label: string,
    readonly repoId: string | undefined,
    readonly endpoint: string,
    private revision: string,
    private readonly base: URL | undefined,
    readonly options: SourceOptions,
  ) {}

  /** A Hub repo id (`org/name`), or a URL (absolute, or starting with `/`, `./`, `../`) of a model folder. */
  static resolve(idOrUrl: string, options: SourceOptions = {}): Source {
    if (typeof idOrUrl !== "string" || idOrUrl === "") throw new HubError(String(idOrUrl), "expected a Hub repo id or the URL of a model folder");
    const endpoint = (options.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
    if (URL_LIKE.test(idOrUrl)) {
      let base: URL;
      try {
        base = new URL(idOrUrl.endsWith("/") ? idOrUrl : `${idOrUrl}/`, globalThis.location?.href);
      } catch {
        throw new HubError(idOrUrl, "is not a valid URL");
      }
      return new Source(base.href, undefined, endpoint, "", base, options);
    }
    checkRepoId(idOrUrl);
    const revision = options.revision ?? "main";
    checkRevision(idOrUrl, revision);
    try {
      new URL(endpoint);
    } catch {
      throw new HubError(endpoint, "is not a valid Hub endpoint URL");
    }
    return new Source(idOrUrl, idOrUrl, endpoint, revision, undefined, options);
  }

  url(file: string): string {
    checkFileName(this.label, file);
    if (this.base) return new URL(file.split("/").map(encodeURIComponent).join("/"), this.base).href;
    return fileUrl(this.endpoint, this.repoId!, this.commit ?? this.revision, file);
  }

  /** Pins the revision to the commit this response names, so every file comes from one commit (as in Node). */
  pin(res: Response): void {
    const commit = res.headers.get("x-repo-commit");
    if (this.repoId && !this.commit && commit && COMMIT.test(commit)) this.commit = commit;
    else if (this.repoId && !this.commit && COMMIT.test(this.revision)) this.commit = this.revision;
  }

  httpError(file: string, res: Response): HubError {
    if (this.repoId) {
      // The page sends no token: gated and private repos are out of reach (Node's advice about HF_TOKEN is not).
      const code = res.headers.get("x-error-code");
      if (res.status === 401 || res.status === 403 || (res.status === 404 && code === "RepoNotFound"))
        return new HubError(this.repoId, `no such public repository on ${this.endpoint} (HTTP ${res.status} for ${file}): check the id; the page loads public repositories only`);
      return statusError({ repoId: this.repoId, file, revision: this.commit ?? this.revision, endpoint: this.endpoint, token: undefined }, res);
    }
    return new HubError(this.label, `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""} for "${file}" (${this.url(file)})`);
  }

  networkError(file: string, e: unknown): HubError {
    const why = e instanceof Error ? e.message : String(e);
    return new HubError(this.label, `could not fetch "${file}" from ${this.url(file)} (${why}): the server is unreachable, or does not allow this page's origin (CORS)`);
  }
}

/** GET a whole (small) file; undefined for an `optional` one the server does not have (404). */
export async function getFile(src: Source, file: string, optional = false): Promise<Response | undefined> {
  let res: Response;
  try {
    res = await fetch(src.url(file));
  } catch (e) {
    throw src.networkError(file, e);
  }
  if (res.status === 404 && optional && !repoMissing(res)) {
    src.pin(res);
    await res.body?.cancel().catch(() => {});
    return undefined;
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw src.httpError(file, res);
  }
  src.pin(res);
  return res;
}

const repoMissing = (res: Response) => ["RepoNotFound", "RevisionNotFound"].includes(res.headers.get("x-error-code") ?? "");

export async function getText(src: Source, file: string, optional = false): Promise<string | undefined> {
  const res = await getFile(src, file, optional);
  if (!res) return undefined;
  try {
    return await res.text();
  } catch (e) {
    throw src.networkError(file, e);
  }
}

export interface RangeResult {
  bytes: Uint8Array;
  /** The file's size, from Content-Range (when the server exposes it). */
  total?: number;
  /** ETag or Last-Modified of the file, to notice it changed. */
  version?: string;
}

/** Thrown inside `getRange` for answers a retry cannot fix. */
class Final extends Error {
  constructor(readonly error: HubError, readonly absent = false) {
    super(error.message);
  }
}

/**
 * Bytes `[start, start + length)` of `file` by Range requests, written into one buffer as they arrive; a cut or
 * stalled body is resumed from the byte it stopped at (`retries` times without progress), else a HubError.
 */
export async function getRange(src: Source, file: string, start: number, length: number, onBytes?: (n: number) => void): Promise<RangeResult>;
export async function getRange(src: Source, file: string, start: number, length: number, onBytes: undefined, optional: true): Promise<RangeResult | undefined>;
export async function getRange(src: Source, file: string, start: number, length: number, onBytes?: (n: number) => void, optional = false): Promise<RangeResult | undefined> {
  const { retries = 5, retryDelayMs = 500, readTimeoutMs = 30_000 } = src.options;
  const out = new Uint8Array(length);
  const result: RangeResult = { bytes: out };
  let got = 0;
  let failures = 0;
  let last: unknown;
  while (got < length) {
    const before = got;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new Error(`no data for ${readTimeoutMs} ms`)), readTimeoutMs);
    };
    try {
      arm();
      let res: Response;
      try {
        res = await fetch(src.url(file), { headers: { range: `bytes=${start + got}-${start + length - 1}` }, signal: controller.signal });
      } catch (e) {
        if (controller.signal.aborted) throw controller.signal.reason;
        throw e;
      }
      // A server that ignores Range answers 200 with the whole file: enough for bytes from 0 (the header), no more.
      const whole = res.status === 200 && start + got === 0;
      if (res.status !== 206 && !whole) {
        await res.body?.cancel().catch(() => {});
        if (res.ok) throw new Final(new HubError(src.label, `the server sent all of "${file}" for a Range request (HTTP ${res.status}): it must support Range requests`));
        throw new Final(src.httpError(file, res), res.status === 404 && !repoMissing(res));
      }
      const range = /\/(\d+)\s*$/.exec(res.headers.get("content-range") ?? "");
      if (range) result.total = Number(range[1]);
      else if (whole && /^\d+$/.test(res.headers.get("content-length") ?? "")) result.total = Number(res.headers.get("content-length"));
      result.version ??= res.headers.get("etag") ?? res.headers.get("last-modified") ?? undefined;
      const reader = res.body!.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          arm();
          const n = Math.min(value.byteLength, length - got);
          out.set(value.subarray(0, n), got);
          got += n;
          onBytes?.(n);
          if (got === length) break;
        }
      } catch (e) {
        if (controller.signal.aborted) throw controller.signal.reason;
        throw e;
      } finally {
        reader.cancel().catch(() => {});
      }
      if (got < length) throw new Error(`the body ended after ${got - before} of ${length - before} bytes`);
    } catch (e) {
      if (e instanceof Final) {
        if (optional && e.absent) return undefined;
        throw e.error;
      }
      last = e;
      failures = got > before ? 1 : failures + 1;
      if (failures > retries)
        throw new HubError(src.label, `downloading "${file}" was cut at byte ${start + got} (${(last as Error)?.message ?? last}) and did not resume after ${retries} retries: check the connection and load again`);
      await new Promise((r) => setTimeout(r, retryDelayMs * failures));
    } finally {
      clearTimeout(timer);
    }
  }
  return result;
}
