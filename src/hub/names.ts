/** Repo ids, file paths, revisions and resolve URLs of the Hub: the rules shared by Node (file.ts) and the page. */
import { HubError } from "../errors.js";

const NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

export function isRepoId(id: string): boolean {
  const parts = id.split("/");
  if (parts.length > 2 || id.includes("--") || id.includes("..") || id.endsWith(".git")) return false;
  return parts.every((p) => NAME.test(p)) && parts[parts.length - 1]!.length <= 96;
}

export function checkRepoId(id: string): void {
  if (isRepoId(id)) return;
  const pathLike = /^[.~/\\]/.test(id) || id.includes("\\") || id.split("/").length > 2;
  throw new HubError(
    id,
    pathLike
      ? "no such model folder (and it is not a Hub repo id either)"
      : "is neither an existing model folder nor a valid Hub repo id (expected org/name, e.g. " +
          "BridgeTower/bridgetower-large-itm-mlm-gaudi: letters, digits, '-', '_' and '.')",
  );
}

/** A path inside a repo: relative, "/"-separated, with no "." or ".." parts that could leave the snapshot. */
export function checkFileName(repoId: string, file: string): void {
  const parts = file.split("/");
  if (file === "" || file.includes("\\") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new HubError(repoId, `"${file}" is not a valid file path inside a repository`);
  }
}

/** Revisions name files under refs/, so they must not climb out of it either. */
export function checkRevision(repoId: string, revision: string): void {
  const parts = revision.split("/");
  if (revision.includes("\\") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new HubError(repoId, `"${revision}" is not a valid revision (a branch, tag or commit hash)`);
  }
}

/** Percent-encoding as Python's urllib.parse.quote (encodeURIComponent leaves !'()* alone). */
function quote(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function fileUrl(endpoint: string, repoId: string, revision: string, file: string): string {
  return `${endpoint}/${repoId}/resolve/${quote(revision)}/${file.split("/").map(quote).join("/")}`;
}
