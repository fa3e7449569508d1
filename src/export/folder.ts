/**
 * The output folder, written whole or not at all: everything goes into a temporary sibling, renamed into place at
 * the end. With `force`, an existing folder is moved aside first and removed only once the new one is in place.
 */
import { randomBytes } from "node:crypto";
import { constants, existsSync, realpathSync } from "node:fs";
import { copyFile, link, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { InputError } from "../errors.js";

/** Refuses what must not be written or replaced (exit code 2), before anything is written. */
export async function checkOutDir(out: string, force: boolean, keep: string[]): Promise<void> {
  const target = resolve(out);
  const s = await stat(target).catch(() => undefined);
  if (s && !s.isDirectory()) throw new InputError(out, "exists and is not a folder");
  if (s && !force && (await readdir(target)).length > 0) throw new InputError(out, "is not empty (pass --force to replace it)");
  if (!s) return;
  // --force replaces the folder: never one that holds the model being exported (or its int8 cache).
  const real = realpathSync(target);
  for (const k of keep.filter((p) => existsSync(p))) {
    const r = relative(real, realpathSync(k));
    if (!(r === ".." || r.startsWith(`..${sep}`) || isAbsolute(r)))
      throw new InputError(out, `holds ${k}, which the export reads: choose another --out`);
  }
}

/** A fresh temporary folder beside `out` (same filesystem, so the final rename is atomic). */
export async function stagingDir(out: string): Promise<string> {
  const target = resolve(out);
  await mkdir(dirname(target), { recursive: true });
  const dir = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  await mkdir(dir);
  return dir;
}

/** Moves the finished staging folder to `out`; with `force`, replacing what was there (else only an empty folder). */
export async function publish(staging: string, out: string, force: boolean): Promise<void> {
  const target = resolve(out);
  const old = force ? await stat(target).then(() => `${staging}.old`, () => undefined) : undefined;
  if (old) await rename(target, old);
  try {
    await rename(staging, target);
  } catch (e) {
    if (old) await rename(old, target).catch(() => {});
    // Filled by someone else while we wrote (it was checked empty at the start).
    if (["ENOTEMPTY", "EEXIST"].includes((e as NodeJS.ErrnoException).code ?? "")) throw new InputError(out, "is not empty (pass --force to replace it)");
    throw e;
  }
  if (old) await rm(old, { recursive: true, force: true });
}

/**
 * `dst` with the bytes of `src`: a hard link when both are on one filesystem (no copy of gigabytes; the files are
 * never written in place, by us or the Hugging Face cache), else a copy (a reflink where the filesystem can).
 */
export async function linkOrCopy(src: string, dst: string): Promise<"linked" | "copied"> {
  try {
    await link(realpathSync(src), dst);
    return "linked";
  } catch {
    await copyFile(src, dst, constants.COPYFILE_FICLONE);
    return "copied";
  }
}
