/** Requests to the Hub: deadlines, redirects handled by hand (to drop the token across hosts), error sentences. */
import { HubError } from "../errors.js";
import type { Settings } from "./options.js";

/** The Hub could not be reached, or stopped answering: the cases where a cached copy may stand in. */
export class NetworkError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** What a request is about, for error sentences. */
export interface Target {
  repoId: string;
  file: string;
  revision: string;
  endpoint: string;
  token: string | undefined;
}

export interface Opened {
  res: Response;
  url: string;
  controller: AbortController;
}

function toNetworkError(e: unknown, signal: AbortSignal): Error {
  if (e instanceof HubError || e instanceof NetworkError) return e;
  if (signal.aborted && signal.reason instanceof NetworkError) return signal.reason;
  const err = e as { code?: string; name?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err.cause?.code ?? err.code ?? (err.name === "TimeoutError" ? "ETIMEDOUT" : undefined);
  return new NetworkError(code ?? "network error", err.cause?.message ?? err.message ?? String(e));
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // nothing to free
  }
}

async function once(s: Settings, method: string, url: string, headers: Record<string, string>): Promise<Opened> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new NetworkError("ETIMEDOUT", `no answer within ${s.timeoutMs} ms`)),
    s.timeoutMs,
  );
  const f = s.fetchImpl;
  try {
    const res = await f(url, { method, headers, redirect: "manual", signal: controller.signal });
    return { res, url, controller };
  } catch (e) {
    throw toNetworkError(e, controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

const ABSOLUTE = /^([a-z][a-z0-9+.-]*:)?\/\//i;

/**
 * Sends a request and follows redirects: all of them (`"all"`, for downloads) or only relative ones
 * (`"relative"`, as huggingface_hub's HEAD does, so the CDN redirect's X-Linked-* headers stay readable).
 * The Authorization header is dropped once a redirect leaves the original host.
 */
export async function send(
  s: Settings,
  method: "HEAD" | "GET",
  url: string,
  headers: Record<string, string>,
  follow: "relative" | "all",
): Promise<Opened> {
  const origin = new URL(url).host;
  const h = { ...headers };
  for (let hop = 0; hop <= 10; hop++) {
    const o = await once(s, method, url, h);
    const location = o.res.headers.get("location");
    if (o.res.status < 300 || o.res.status > 399 || !location) return o;
    if (follow === "relative" && ABSOLUTE.test(location)) return o;
    await discard(o.res);
    const next = new URL(location, url);
    if (next.host !== origin) delete h.authorization;
    url = next.href;
  }
  throw new NetworkError("ETOOMANYREDIRECTS", `more than 10 redirects from ${url}`);
}

/** Reads a body chunk by chunk; a silence longer than readTimeoutMs aborts it as a NetworkError. */
export async function readBody(o: Opened, s: Settings, onChunk: (c: Uint8Array) => Promise<void>): Promise<void> {
  if (!o.res.body) return;
  const reader = o.res.body.getReader();
  try {
    for (;;) {
      const timer = setTimeout(
        () => o.controller.abort(new NetworkError("ETIMEDOUT", `no data for ${s.readTimeoutMs} ms`)),
        s.readTimeoutMs,
      );
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await reader.read();
      } catch (e) {
        throw toNetworkError(e, o.controller.signal);
      } finally {
        clearTimeout(timer);
      }
      if (r.done) return;
      await onChunk(r.value);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

export { discard };

function revisionText(t: Target): string {
  return `revision "${t.revision}"`;
}

/** One sentence for an HTTP error status, naming the repo (as the error's input), the file and revision. */
export function statusError(t: Target, res: Response): HubError {
  const code = res.headers.get("x-error-code");
  const detail = res.headers.get("x-error-message");
  const status = res.status;
  if (status === 401 || status === 403) {
    if (code === "GatedRepo") {
      return new HubError(
        t.repoId,
        `the repository is gated (HTTP ${status} for ${t.file}): accept its terms on ${t.endpoint}/${t.repoId} ` +
          `and set HF_TOKEN to a token of that account${t.token ? " (the token given has no access yet)" : ""}`,
      );
    }
    const what = code === "RepoNotFound" ? "was not found, or is gated or private" : "is gated or private";
    return new HubError(
      t.repoId,
      t.token
        ? `the repository ${what} and the token given was refused (HTTP ${status} for ${t.file}): ` +
            `set HF_TOKEN to a token that has access to it`
        : `the repository ${what} (HTTP ${status} for ${t.file}): set HF_TOKEN to a token that has access ` +
            `(\`huggingface-cli login\` stores one), or pass a local model folder`,
    );
  }
  if (status === 404) {
    if (code === "RepoNotFound") {
      return new HubError(
        t.repoId,
        `no such repository on ${t.endpoint} (HTTP 404): check the id, and set HF_TOKEN if it is private`,
      );
    }
    if (code === "RevisionNotFound") {
      return new HubError(t.repoId, `the repository has no ${revisionText(t)} (HTTP 404): check the branch, tag or commit`);
    }
    return new HubError(t.repoId, `the repository has no file "${t.file}" at ${revisionText(t)} (HTTP 404)`);
  }
  return new HubError(
    t.repoId,
    `the Hub answered HTTP ${status}${res.statusText ? ` ${res.statusText}` : ""} for "${t.file}" at ${revisionText(t)}` +
      `${detail ? ` (${detail})` : ""}: try again later, or pass a local model folder`,
  );
}

export function unreachable(t: Target, e: NetworkError): HubError {
  return new HubError(
    t.repoId,
    `the Hugging Face Hub at ${t.endpoint} could not be reached (${e.code}: ${e.message}) to fetch "${t.file}", ` +
      `and it is not in the cache: pass a local model folder instead, or set HF_HUB_OFFLINE=1 once the cache is filled`,
  );
}
