/** One file of a Hub repo, the way huggingface_hub's hf_hub_download gets it into the cache. */
import { HubError } from "../errors.js";
import {
  COMMIT_HASH,
  blobPath,
  exists,
  linkPointer,
  lookup,
  markMissing,
  pointerPath,
  repoFolder,
  writeRef,
} from "./cache.js";
import { downloadBlob, normalizeEtag } from "./download.js";
import { NetworkError, discard, send, statusError, unreachable, type Target } from "./http.js";
import type { Settings } from "./options.js";
import { warn } from "./progress.js";
import { checkFileName, checkRepoId, checkRevision, fileUrl } from "./names.js";

export type Got = { path: string; commit: string } | { missing: true };

/** Shared by the files of one model: after the Hub proves unreachable once, the rest come from the cache. */
export interface Session {
  unreachable?: NetworkError;
}

export { checkFileName, checkRepoId, fileUrl, isRepoId } from "./names.js";

function offlineError(s: Settings, t: Target): HubError {
  return new HubError(
    t.repoId,
    `"${t.file}" (revision "${t.revision}") is not in the cache at ${s.cacheDir}, and offline mode is on ` +
      `(HF_HUB_OFFLINE=1): run once with network access to fill the cache, or pass a local model folder`,
  );
}

/** Returns the cached path of `file`, downloading it when needed; { missing } for an absent optional file. */
export async function getFile(
  repoId: string,
  file: string,
  s: Settings,
  optional: boolean,
  session: Session = {},
): Promise<Got> {
  checkRepoId(repoId);
  checkFileName(repoId, file);
  checkRevision(repoId, s.revision);
  try {
    new URL(s.endpoint);
  } catch {
    throw new HubError(s.endpoint, "is not a valid Hub endpoint URL (check HF_ENDPOINT)");
  }
  const storage = repoFolder(s.cacheDir, repoId);
  const t: Target = { repoId, file, revision: s.revision, endpoint: s.endpoint, token: s.token };

  // A commit never changes: when it is cached, no request is needed (as in huggingface_hub and transformers).
  if (COMMIT_HASH.test(s.revision)) {
    const hit = await lookup(storage, s.revision, file);
    if (hit && "path" in hit) return hit;
    if (hit && optional) return { missing: true };
  }
  if (s.offline || session.unreachable) {
    const hit = await lookup(storage, s.revision, file);
    if (hit && "path" in hit) return hit;
    if (optional) return { missing: true };
    throw session.unreachable ? unreachable(t, session.unreachable) : offlineError(s, t);
  }

  const url = fileUrl(s.endpoint, repoId, s.revision, file);
  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (s.token) headers.authorization = `Bearer ${s.token}`;

  // Falls back to the cache when the Hub cannot answer, as huggingface_hub does.
  const fromCache = async (reason: string, error: HubError | NetworkError): Promise<Got> => {
    const hit = await lookup(storage, s.revision, file);
    if (hit && "path" in hit) {
      if (error instanceof NetworkError && !session.unreachable) {
        session.unreachable = error;
        warn(`${reason}; using the cached ${repoId} (commit ${hit.commit.slice(0, 10)})`);
      } else if (!(error instanceof NetworkError)) {
        warn(`${reason}; using the cached "${file}" of ${repoId}`);
      }
      return hit;
    }
    throw error instanceof NetworkError ? unreachable(t, error) : error;
  };

  let head;
  try {
    head = await send(s, "HEAD", url, headers, "relative");
  } catch (e) {
    if (!(e instanceof NetworkError)) throw e;
    return fromCache(`the Hugging Face Hub at ${s.endpoint} could not be reached (${e.code})`, e);
  }
  const res = head.res;
  await discard(res);
  const commitHeader = res.headers.get("x-repo-commit") ?? undefined;
  if (res.status === 404) {
    const code = res.headers.get("x-error-code");
    const repoLevel = code === "RepoNotFound" || code === "RevisionNotFound";
    if (!repoLevel && commitHeader && COMMIT_HASH.test(commitHeader)) {
      await markMissing(storage, commitHeader, file);
      await writeRef(storage, s.revision, commitHeader);
    }
    if (optional && !repoLevel) return { missing: true };
    throw statusError(t, res);
  }
  if (res.status >= 400) {
    return fromCache(`the Hub answered HTTP ${res.status} for "${file}"`, statusError(t, res));
  }

  const commit = commitHeader;
  const etag = normalizeEtag(res.headers.get("x-linked-etag") ?? res.headers.get("etag"));
  const sizeHeader = res.headers.get("x-linked-size") ?? res.headers.get("content-length");
  const expectedSize = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined;
  const location = res.headers.get("location");
  const downloadUrl = res.status >= 300 && location ? new URL(location, head.url).href : head.url;
  // The etag names the blob file: anything path-like would be unsafe.
  const badEtag = etag === undefined || !/^[\w.-]+$/.test(etag) || /^\.+$/.test(etag);
  if (commit === undefined || !COMMIT_HASH.test(commit) || etag === undefined || badEtag) {
    return fromCache(
      `the server at ${s.endpoint} sent no commit hash or ETag for "${file}"`,
      new HubError(
        repoId,
        `the server at ${s.endpoint} sent no commit hash or ETag for "${file}": it does not look like a ` +
          `Hugging Face Hub (check HF_ENDPOINT and any proxy)`,
      ),
    );
  }

  await writeRef(storage, s.revision, commit);
  const pointer = pointerPath(storage, commit, file);
  if (await exists(pointer)) return { path: pointer, commit };
  const blob = blobPath(storage, etag);
  if (!(await exists(blob))) {
    const getHeaders = { ...headers };
    // The token is for the Hub only, not for the CDN it redirects to.
    if (new URL(downloadUrl).host !== new URL(url).host) delete getHeaders.authorization;
    try {
      await downloadBlob(s, { url: downloadUrl, headers: getHeaders, blob, etag, expectedSize, target: t });
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      throw new HubError(
        repoId,
        `downloading "${file}" failed (${e.code}: ${e.message}) after ${s.retries} retries: ` +
          `run again to resume it, or pass a local model folder`,
      );
    }
  }
  await linkPointer(blob, pointer);
  return { path: pointer, commit };
}
