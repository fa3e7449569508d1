/**
 * int8 weights kept in Cache Storage, so a later visit loads them with no weight request. Each part's files back to
 * back, in entries of 32 MB, and a manifest per model (repo + commit, or URL + file version) naming the entries and the
 * checkpoint's tensor list. New entries are written under a fresh generation key and only the manifest, written
 * last, makes them visible: a load that fails deletes what it wrote, so nothing is ever half-cached.
 */
import { StorageError } from "./errors.js";
import type { TensorEntry } from "../io/tensors.js";
import type { PartFile, Planned } from "./weights.js";

const CACHE = "bridgetower-int8";
const ROOT = "https://bridgetower.cache/";
const FORMAT = "bridgetower-web-int8-v2";
/** Chromium refuses single Cache Storage entries of a few hundred MB ("Unexpected internal error"). */
const CHUNK = 32 << 20;

interface CachedPart {
  plan: string;
  /** The part's bytes (its files back to back) in entries of CHUNK bytes. */
  urls: string[];
  /** Byte length of each file. */
  sizes: number[];
}

interface Manifest {
  format: string;
  entries: TensorEntry[];
  parts: Record<string, CachedPart>;
}

/** FNV-1a (64-bit) of a string, as hex: names a part's plan in the cache. */
export function hash(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < s.length; i++) h = BigInt.asUintN(64, (h ^ BigInt(s.charCodeAt(i))) * 0x100000001b3n);
  return h.toString(16).padStart(16, "0");
}

function storageError(model: string, what: string, e: unknown): StorageError {
  const name = (e as { name?: string })?.name;
  if (name === "QuotaExceededError")
    return new StorageError(model, `the browser's storage quota is full while ${what}: free some (e.g. clear this site's data) or load with { cache: false }`, { cause: e });
  return new StorageError(model, `Cache Storage failed while ${what} (${(e as Error)?.message ?? e}): load with { cache: false } to skip it`, { cause: e });
}

export class Int8Cache {
  private pending: string[] = [];
  private written: Record<string, CachedPart> = {};
  private readonly gen = `g${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

  private constructor(private readonly cache: Cache, private readonly model: string, private manifest: Manifest | undefined, private readonly version: string) {}

  /** The cache of one model; undefined where the page has no Cache Storage (not a secure context). */
  static async open(model: string, version: string): Promise<Int8Cache | undefined> {
    if (typeof caches === "undefined") return undefined;
    let cache: Cache;
    try {
      cache = await caches.open(CACHE);
    } catch (e) {
      throw storageError(model, "opening the int8 weight cache", e);
    }
    let manifest: Manifest | undefined;
    try {
      const res = await cache.match(Int8Cache.url(model, "manifest"));
      manifest = res ? ((await res.json()) as Manifest) : undefined;
    } catch {
      manifest = undefined; // unreadable: rebuilt as if absent
    }
    if (manifest?.format !== `${FORMAT}:${version}`) manifest = undefined;
    return new Int8Cache(cache, model, manifest, version);
  }

  private static url(model: string, ...rest: string[]): string {
    return ROOT + [model, ...rest].map(encodeURIComponent).join("/");
  }

  /** The checkpoint's tensor list as cached, so a cached load needs no header request. */
  get entries(): TensorEntry[] | undefined {
    return this.manifest?.entries;
  }

  /** Whether the manifest names this part, built from the same plan. */
  has(part: string, planned: Planned[]): boolean {
    const c = this.manifest?.parts[part];
    return !!c && c.plan === hash(JSON.stringify(planned)) && c.sizes.length === planned.length;
  }

  /** A part's files from the cache, or undefined when it is not there (or damaged). */
  async read(part: string, planned: Planned[]): Promise<PartFile[] | undefined> {
    const c = this.manifest?.parts[part];
    if (!c || !this.has(part, planned)) return undefined;
    try {
      const all = new Uint8Array(c.sizes.reduce((a, b) => a + b, 0));
      let at = 0;
      for (const url of c.urls) {
        const res = await this.cache.match(url);
        if (!res) return undefined;
        const chunk = new Uint8Array(await res.arrayBuffer());
        if (at + chunk.byteLength > all.byteLength) return undefined;
        all.set(chunk, at);
        at += chunk.byteLength;
      }
      if (at !== all.byteLength) return undefined;
      at = 0;
      return planned.map((p, i) => ({ path: p.loc, data: all.subarray(at, (at += c.sizes[i])) }));
    } catch {
      return undefined;
    }
  }

  /** Stores a part's files under this load's generation (invisible until `commit`). */
  async write(part: string, planned: Planned[], files: PartFile[]): Promise<void> {
    const urls: string[] = [];
    let slices: Uint8Array[] = [];
    let size = 0;
    const flush = async () => {
      const url = Int8Cache.url(this.model, this.gen, part, String(urls.length));
      urls.push(url);
      this.pending.push(url);
      try {
        await this.cache.put(url, new Response(new Blob(slices as Uint8Array<ArrayBuffer>[])));
      } catch (e) {
        throw storageError(this.model, `keeping the int8 weights of the ${part} part`, e);
      }
      slices = [];
      size = 0;
    };
    for (const f of files) {
      for (let at = 0; at < f.data.byteLength; ) {
        const n = Math.min(CHUNK - size, f.data.byteLength - at);
        slices.push(f.data.subarray(at, at + n));
        size += n;
        at += n;
        if (size === CHUNK) await flush();
      }
    }
    if (size > 0 || urls.length === 0) await flush();
    this.written[part] = { plan: hash(JSON.stringify(planned)), urls, sizes: files.map((f) => f.data.byteLength) };
  }

  /** Publishes what this load wrote (the manifest last), then drops entries no manifest names any more. */
  async commit(entries: TensorEntry[]): Promise<void> {
    if (this.pending.length === 0) return;
    const manifest: Manifest = { format: `${FORMAT}:${this.version}`, entries, parts: { ...this.manifest?.parts, ...this.written } };
    try {
      await this.cache.put(Int8Cache.url(this.model, "manifest"), new Response(JSON.stringify(manifest), { headers: { "content-type": "application/json" } }));
    } catch (e) {
      await this.abort();
      throw storageError(this.model, "keeping the int8 weights' manifest", e);
    }
    this.manifest = manifest;
    this.pending = [];
    const live = new Set(Object.values(manifest.parts).flatMap((p) => p.urls));
    const prefix = Int8Cache.url(this.model) + "/";
    for (const req of await this.cache.keys().catch(() => [] as readonly Request[]))
      if (req.url.startsWith(prefix) && !req.url.endsWith("/manifest") && !live.has(req.url)) await this.cache.delete(req).catch(() => {});
  }

  /** Deletes what this load wrote (a failed load leaves the cache as it found it). */
  async abort(): Promise<void> {
    for (const url of this.pending) await this.cache.delete(url).catch(() => false);
    this.pending = [];
    this.written = {};
  }
}

/** Deletes every int8 weight the page keeps (all models). */
export async function clearCache(): Promise<void> {
  if (typeof caches !== "undefined") await caches.delete(CACHE);
}
