import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface HubProgress {
  file: string;
  downloaded: number;
  total: number | undefined;
}

export interface HubOptions {
  /** Branch, tag or commit hash; default "main". */
  revision?: string;
  /** Default: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Default: HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default: HF_TOKEN, then HUGGING_FACE_HUB_TOKEN, then the token file ($HF_TOKEN_PATH or $HF_HOME/token). "" sends no token. */
  token?: string;
  /** Cache only, no network. Default: HF_HUB_OFFLINE=1 or TRANSFORMERS_OFFLINE=1. */
  offline?: boolean;
  /** Called as bytes arrive; without it, files over 10 MB print progress on stderr. */
  onProgress?: (p: HubProgress) => void;
  /** For tests. */
  fetchImpl?: typeof fetch;
  /** Time allowed to connect and get response headers, in ms. Default: HF_HUB_ETAG_TIMEOUT (s), else 10 s. */
  timeoutMs?: number;
  /** Longest silence while reading a body, in ms. Default: HF_HUB_DOWNLOAD_TIMEOUT (s), else 10 s. */
  readTimeoutMs?: number;
  /** How many times an interrupted download resumes before giving up. Default 5. */
  retries?: number;
  /** Pause before resuming, in ms. Default 1000. */
  retryDelayMs?: number;
}

/** Options with every default filled in from the environment, as huggingface_hub reads it. */
export interface Settings {
  revision: string;
  cacheDir: string;
  endpoint: string;
  token: string | undefined;
  offline: boolean;
  onProgress: ((p: HubProgress) => void) | undefined;
  fetchImpl: typeof fetch;
  timeoutMs: number;
  readTimeoutMs: number;
  retries: number;
  retryDelayMs: number;
}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === "" ? undefined : v;
}

function truthy(name: string): boolean {
  return ["1", "ON", "YES", "TRUE"].includes((env(name) ?? "").toUpperCase());
}

function seconds(name: string, fallback: number): number {
  const v = Number(env(name));
  return Number.isFinite(v) && v > 0 ? v * 1000 : fallback;
}

export function hfHome(): string {
  return env("HF_HOME") ?? join(env("XDG_CACHE_HOME") ?? join(homedir(), ".cache"), "huggingface");
}

export function defaultCacheDir(): string {
  return env("HF_HUB_CACHE") ?? env("HUGGINGFACE_HUB_CACHE") ?? join(hfHome(), "hub");
}

export function defaultToken(): string | undefined {
  const fromEnv = env("HF_TOKEN") ?? env("HUGGING_FACE_HUB_TOKEN");
  if (fromEnv !== undefined) return fromEnv.trim();
  try {
    const t = readFileSync(env("HF_TOKEN_PATH") ?? join(hfHome(), "token"), "utf8").trim();
    return t === "" ? undefined : t;
  } catch {
    return undefined;
  }
}

export function settings(o: HubOptions = {}): Settings {
  const token = o.token !== undefined ? o.token : defaultToken();
  return {
    revision: o.revision ?? "main",
    cacheDir: o.cacheDir ?? defaultCacheDir(),
    endpoint: (o.endpoint ?? env("HF_ENDPOINT") ?? "https://huggingface.co").replace(/\/+$/, ""),
    token: token === "" ? undefined : token,
    offline: o.offline ?? (truthy("HF_HUB_OFFLINE") || truthy("TRANSFORMERS_OFFLINE")),
    onProgress: o.onProgress,
    fetchImpl: o.fetchImpl ?? fetch,
    timeoutMs: o.timeoutMs ?? seconds("HF_HUB_ETAG_TIMEOUT", 10_000),
    readTimeoutMs: o.readTimeoutMs ?? seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10_000),
    retries: o.retries ?? 5,
    retryDelayMs: o.retryDelayMs ?? 1000,
  };
}
