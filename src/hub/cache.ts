/**
 * The huggingface_hub cache layout, so that caches filled by Python and by this package are shared:
 *   {cache}/models--{org}--{name}/blobs/{etag}
 *   {cache}/models--{org}--{name}/snapshots/{commit}/{file} -> ../../blobs/{etag}
 *   {cache}/models--{org}--{name}/refs/{revision}            (holds the commit hash)
 *   {cache}/models--{org}--{name}/.no_exist/{commit}/{file}   (the file is known to be absent)
 */
import { copyFile, mkdir, readFile, rename, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";

export const COMMIT_HASH = /^[0-9a-f]{40}$/;

export function repoFolder(cacheDir: string, repoId: string): string {
  return join(cacheDir, `models--${repoId.split("/").join("--")}`);
}

export function blobPath(storage: string, etag: string): string {
  return join(storage, "blobs", etag);
}

export function pointerPath(storage: string, commit: string, file: string): string {
  return join(storage, "snapshots", commit, ...file.split("/"));
}

function noExistPath(storage: string, commit: string, file: string): string {
  return join(storage, ".no_exist", commit, ...file.split("/"));
}

/** True when `p` exists, following symlinks (a dangling link counts as missing, as in Python). */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The commit a revision points to in the cache, or undefined. */
export async function cachedCommit(storage: string, revision: string): Promise<string | undefined> {
  if (COMMIT_HASH.test(revision)) return revision;
  try {
    const c = (await readFile(join(storage, "refs", revision), "utf8")).trim();
    return c === "" ? undefined : c;
  } catch {
    return undefined;
  }
}

/** Records revision -> commit, like huggingface_hub (no trailing newline, only when it changed). */
export async function writeRef(storage: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const ref = join(storage, "refs", revision);
  if ((await cachedCommit(storage, revision)) === commit) return;
  await mkdir(dirname(ref), { recursive: true });
  await writeFile(ref, commit);
}

export type CacheHit = { path: string; commit: string } | { missing: true; commit: string } | undefined;

/** Looks up `file` at `revision` without network: the file, a recorded absence, or undefined. */
export async function lookup(storage: string, revision: string, file: string): Promise<CacheHit> {
  const commit = await cachedCommit(storage, revision);
  if (commit === undefined) return undefined;
  const p = pointerPath(storage, commit, file);
  if (await exists(p)) return { path: p, commit };
  if (await exists(noExistPath(storage, commit, file))) return { missing: true, commit };
  return undefined;
}

export async function markMissing(storage: string, commit: string, file: string): Promise<void> {
  try {
    const p = noExistPath(storage, commit, file);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, "");
  } catch {
    // Only a shortcut for later offline runs: not worth failing over.
  }
}

/** Points snapshots/{commit}/{file} at the blob with a relative symlink, or a copy where symlinks fail. */
export async function linkPointer(blob: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  const target = relative(dirname(pointer), blob);
  try {
    await symlink(target, pointer);
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") {
      if (await exists(pointer)) return;
      try {
        await unlink(pointer); // a dangling link left by a removed blob
        await symlink(target, pointer);
        return;
      } catch {
        // fall back to a copy
      }
    }
  }
  // Copy through a temporary name so the pointer never holds a partial file.
  const tmp = `${pointer}.${process.pid}.tmp`;
  await copyFile(blob, tmp);
  await rename(tmp, pointer);
}
