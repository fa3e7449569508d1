import { open, type FileHandle } from "node:fs/promises";
import { CheckpointFormatError } from "../errors.js";
import { PyGlobal, unpickle } from "./pickle.js";
import { readAt } from "./safetensors.js";
import { DTYPE_BYTES, type DType, type TensorEntry, type TensorSource } from "./tensors.js";
import { readStoredEntry, readZipDirectory, requireStored, type ZipEntry } from "./zip.js";

/** data.pkl of a real checkpoint is well under 1 MB; this only stops absurd allocations. */
export const MAX_PICKLE_BYTES = 256 * 1024 * 1024;
const MAX_DIMS = 64; // PyTorch's own limit

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: "F32", DoubleStorage: "F64", HalfStorage: "F16", BFloat16Storage: "BF16", LongStorage: "I64",
  IntStorage: "I32", ShortStorage: "I16", CharStorage: "I8", ByteStorage: "U8", BoolStorage: "BOOL", UntypedStorage: "U8",
};

const DTYPES: Record<string, DType> = {
  float32: "F32", float: "F32", float64: "F64", double: "F64", float16: "F16", half: "F16", bfloat16: "BF16",
  int64: "I64", long: "I64", int32: "I32", int: "I32", int16: "I16", short: "I16", int8: "I8", uint8: "U8", bool: "BOOL",
};

/** A storage (zip entry `<prefix>/data/<key>`) as referenced by a persistent id. */
class Storage {
  constructor(readonly key: string, readonly entry: ZipEntry, readonly dtype: DType, readonly bytes: number) {}
}

/** A tensor rebuilt from a pickle: a view (offset, shape, strides in elements) over a storage. */
class TensorView {
  constructor(
    readonly storage: Storage,
    readonly dtype: DType,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly numel: number,
  ) {}
}

/** A view that is not one contiguous run of bytes: readBytes gathers it. */
interface Strided {
  /** Absolute file offset of element index 0 of the view (storage data + storage_offset). */
  base: number;
  shape: number[];
  stride: number[];
  elsize: number;
  /** Bytes from `base` covering every element of the view. */
  span: number;
}

/**
 * A PyTorch `torch.save` zip checkpoint (`pytorch_model.bin`), read by positional reads: the pickle is parsed by a
 * restricted unpickler that only rebuilds tensors, and each tensor is a view over a stored zip entry.
 *
 * Contiguous tensors are TensorEntry rows whose `offset` points at their bytes in the file, so they can be used in
 * place. Non-contiguous (strided) views have `offset` -1 and `isInPlace(name)` false; `readBytes` gathers them.
 */
export class TorchBinFile implements TensorSource {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly entries: ReadonlyMap<string, TensorEntry>,
    private readonly strided: ReadonlyMap<string, Strided>,
    /** State-dict keys whose values are not tensors (skipped). */
    readonly ignored: readonly string[],
  ) {}

  static async open(path: string): Promise<TorchBinFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, "r");
    } catch (e) {
      throw new CheckpointFormatError(path, `cannot open PyTorch checkpoint (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    try {
      const { entries, strided, ignored } = await load(fh, path);
      return new TorchBinFile(path, fh, entries, strided, ignored);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** True when the tensor's bytes lie contiguously in the file at `entries.get(name).offset`. */
  isInPlace(name: string): boolean {
    return this.entries.has(name) && !this.strided.has(name);
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointFormatError(this.path, `no tensor named "${name}"`);
    const s = this.strided.get(name);
    if (!s) return readAt(this.fh, this.path, e.offset, e.byteLength);
    return gather(await readAt(this.fh, this.path, s.base, s.span), s, e.byteLength);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function load(fh: FileHandle, path: string) {
  const size = (await fh.stat()).size;
  const magic = await readAt(fh, path, 0, Math.min(4, size));
  if (magic[0] === 0x80 || (magic[0] === 0x1f && magic[1] === 0x8b))
    throw new CheckpointFormatError(path, "legacy (before PyTorch 1.6) or non-zip torch.save format is not supported; re-save with a recent torch.save or use safetensors");
  const zip = await readZipDirectory(fh, path, size);

  const pkls = [...zip.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1)
    throw new CheckpointFormatError(path, pkls.length ? `several data.pkl records (${pkls.join(", ")})` : "not a PyTorch checkpoint: no <archive>/data.pkl entry");
  const prefix = pkls[0].slice(0, -"/data.pkl".length);

  const order = zip.get(`${prefix}/byteorder`);
  if (order) {
    const s = new TextDecoder().decode(await readStoredEntry(fh, path, order));
    if (s === "big") throw new CheckpointFormatError(path, "big-endian checkpoints are not supported");
    if (s !== "little") throw new CheckpointFormatError(path, `unknown byteorder record ${JSON.stringify(s.slice(0, 20))}`);
  }

  const pklEntry = zip.get(pkls[0])!;
  if (pklEntry.size > MAX_PICKLE_BYTES) throw new CheckpointFormatError(path, `data.pkl of ${pklEntry.size} bytes is too large`);
  const pkl = await readStoredEntry(fh, path, pklEntry);
  const input = `${path} (${pkls[0]})`;
  const bad = (msg: string) => new CheckpointFormatError(input, msg);

  const persistentLoad = (pid: unknown): Storage => {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== "storage")
      throw bad("persistent id is not a ('storage', type, key, location, numel) tuple");
    const [, type, key, , numel] = pid as unknown[];
    const dtype = type instanceof PyGlobal && type.module === "torch" ? STORAGE_DTYPES[type.name] : undefined;
    if (!dtype) throw bad(`persistent id names an unsupported storage type ${describe(type)}`);
    if (typeof key !== "string") throw bad("storage key is not a string");
    if (!isCount(numel)) throw bad(`storage "${key}" has an invalid size ${describe(numel)}`);
    const entry = zip.get(`${prefix}/data/${key}`);
    if (!entry) throw bad(`storage "${key}" has no zip entry ${prefix}/data/${key}`);
    requireStored(path, entry);
    const bytes = numel * DTYPE_BYTES[dtype];
    if (bytes > entry.size) throw bad(`storage "${key}" holds ${numel} x ${dtype} but its entry has only ${entry.size} bytes`);
    return new Storage(key, entry, dtype, bytes);
  };

  const rebuild = (fn: string, args: unknown[], dtypeAt?: number): TensorView => {
    const [storage, offset, size, stride] = args;
    if (!(storage instanceof Storage)) throw bad(`${fn}: first argument is not a storage`);
    let dtype = storage.dtype;
    if (dtypeAt !== undefined) {
      const d = args[dtypeAt];
      if (!(d instanceof PyGlobal) || d.module !== "torch" || !DTYPES[d.name]) throw bad(`${fn}: unsupported dtype ${describe(d)}`);
      dtype = DTYPES[d.name];
    }
    if (!isCount(offset)) throw bad(`${fn}: invalid storage offset ${describe(offset)}`);
    if (!Array.isArray(size) || size.length > MAX_DIMS || !size.every(isCount)) throw bad(`${fn}: invalid size ${describe(size)}`);
    if (!Array.isArray(stride) || stride.length !== size.length || !stride.every(isCount))
      throw bad(`${fn}: invalid stride ${describe(stride)} for size ${describe(size)}`);
    let numel = 1;
    let last = 0; // highest element index the view touches
    for (let i = 0; i < size.length; i++) {
      numel *= size[i];
      if (size[i] > 0) last += (size[i] - 1) * stride[i];
    }
    const el = DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(numel * el) || (numel > 0 && !Number.isSafeInteger((offset + last + 1) * el)))
      throw bad(`${fn}: tensor size ${describe(size)} is out of range`);
    if (numel > 0 && (offset + last + 1) * el > storage.bytes)
      throw bad(
        `tensor of size ${describe(size)}, stride ${describe(stride)}, offset ${offset} needs ${(offset + last + 1) * el} bytes ` +
          `but storage "${storage.key}" has ${storage.bytes}`,
      );
    return new TensorView(storage, dtype, offset, [...size], [...stride], numel);
  };

  const g = (module: string, name: string, call?: (args: unknown[]) => unknown) =>
    [`${module}.${name}`, new PyGlobal(module, name, call)] as const;
  const tensorArg = (fn: string, args: unknown[]) => {
    if (!(args[0] instanceof TensorView)) throw bad(`${fn}: first argument is not a tensor`);
    return args[0];
  };
  const globals = new Map<string, PyGlobal>([
    g("collections", "OrderedDict", (args) => {
      if (args.length) throw bad("OrderedDict called with arguments");
      return new Map();
    }),
    g("torch._utils", "_rebuild_tensor", (a) => rebuild("_rebuild_tensor", a)),
    g("torch._utils", "_rebuild_tensor_v2", (a) => rebuild("_rebuild_tensor_v2", a)),
    g("torch._utils", "_rebuild_tensor_v3", (a) => rebuild("_rebuild_tensor_v3", a, 6)),
    g("torch._utils", "_rebuild_parameter", (a) => tensorArg("_rebuild_parameter", a)),
    g("torch._utils", "_rebuild_parameter_with_state", (a) => tensorArg("_rebuild_parameter_with_state", a)),
    ...Object.keys(STORAGE_DTYPES).map((n) => g("torch", n)),
    ...Object.keys(DTYPES).map((n) => g("torch", n)),
  ]);

  // BUILD only sets attributes of a dict (the state dict's `_metadata`), which a reader ignores.
  const root = unpickle(pkl, { input, globals, persistentLoad, build: (obj) => obj instanceof Map });
  if (!(root instanceof Map)) throw bad("the pickle does not hold a state dict (a dict of tensors)");

  const entries = new Map<string, TensorEntry>();
  const strided = new Map<string, Strided>();
  const ignored: string[] = [];
  for (const [name, v] of root) {
    if (typeof name !== "string") throw bad(`state-dict key ${describe(name)} is not a string`);
    if (!(v instanceof TensorView)) {
      ignored.push(name);
      continue;
    }
    const el = DTYPE_BYTES[v.dtype];
    const byteLength = v.numel * el;
    const base = v.storage.entry.dataOffset + v.offset * el;
    if (v.numel === 0 || isContiguous(v.shape, v.stride)) {
      entries.set(name, { name, dtype: v.dtype, shape: v.shape, file: path, offset: v.numel ? base : v.storage.entry.dataOffset, byteLength });
      continue;
    }
    // Overlapping views (e.g. expanded, stride 0) could be far larger than the file; refuse those.
    if (byteLength > v.storage.bytes)
      throw bad(`tensor "${name}" is a strided view larger than its storage "${v.storage.key}"`);
    let last = 0;
    for (let i = 0; i < v.shape.length; i++) last += (v.shape[i] - 1) * v.stride[i];
    strided.set(name, { base, shape: v.shape, stride: v.stride, elsize: el, span: (last + 1) * el });
    entries.set(name, { name, dtype: v.dtype, shape: v.shape, file: path, offset: -1, byteLength });
  }
  return { entries, strided, ignored };
}

/** Row-major contiguity, ignoring the strides of size-1 dimensions as PyTorch does. */
function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** Copies a strided view out of `src` (bytes starting at element index 0) into row-major order. */
function gather(src: Uint8Array, s: Strided, byteLength: number): Uint8Array {
  const out = new Uint8Array(byteLength);
  const nd = s.shape.length;
  const e = s.elsize;
  // Innermost dimension as a run: one copy when it is unit-stride.
  const inner = s.shape[nd - 1];
  const innerStride = s.stride[nd - 1] * e;
  const idx = new Array<number>(nd - 1).fill(0);
  let o = 0;
  while (o < byteLength) {
    let p = 0;
    for (let d = 0; d < nd - 1; d++) p += idx[d] * s.stride[d];
    p *= e;
    if (innerStride === e) {
      out.set(src.subarray(p, p + inner * e), o);
      o += inner * e;
    } else {
      for (let j = 0; j < inner; j++, p += innerStride, o += e) out.set(src.subarray(p, p + e), o);
    }
    for (let d = nd - 2; d >= 0; d--) {
      if (++idx[d] < s.shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** A short description of a pickled value for error messages. */
function describe(v: unknown): string {
  if (v instanceof PyGlobal) return `${v.module}.${v.name}`;
  if (Array.isArray(v)) return `(${v.slice(0, 8).map((x) => (Array.isArray(x) ? "(...)" : describe(x))).join(", ")}${v.length > 8 ? ", ..." : ""})`;
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean" || v === null) return String(v);
  return v instanceof Map ? "a dict" : typeof v;
}
