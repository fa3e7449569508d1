import { CheckpointFormatError } from "../errors.js";

/**
 * A restricted unpickler: it builds plain values (null, boolean, number, bigint, string, Uint8Array, frozen arrays
 * for tuples, arrays for lists, Map for dicts) and never executes anything. GLOBAL / STACK_GLOBAL resolve only names the
 * caller allows; calling them (REDUCE, NEWOBJ) runs the caller's own JS function for that name.
 */

/** A value the caller allows a pickle to name; `call` is what REDUCE / NEWOBJ do with it. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call?: (args: unknown[]) => unknown,
  ) {}
}

export interface UnpickleOptions {
  /** For error messages (the file and entry). */
  input: string;
  /** Allowed globals by "module.name". Anything else is refused. */
  globals: ReadonlyMap<string, PyGlobal>;
  /** BINPERSID: turns a persistent id into a value. */
  persistentLoad?: (pid: unknown) => unknown;
  /** BUILD (setstate) on a value the pickle created; return false to refuse it. Defaults to allowing dicts only. */
  build?: (obj: unknown, state: unknown) => boolean;
}

/** Caps against hostile input; real state-dict pickles stay far below them. */
export const MAX_STACK = 1 << 20;
export const MAX_MARKS = 1 << 12;
export const MAX_MEMO = 1 << 22;
const MAX_LONG_BYTES = 64;
const MAX_GLOBAL_LINE = 256;

const OPNAMES: Record<number, string> = {
  0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES",
  0x47: "BINFLOAT", 0x4a: "BININT", 0x4b: "BININT1", 0x4d: "BININT2", 0x4e: "NONE", 0x51: "BINPERSID", 0x52: "REDUCE",
  0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x58: "BINUNICODE", 0x5d: "EMPTY_LIST", 0x61: "APPEND", 0x62: "BUILD",
  0x63: "GLOBAL", 0x64: "DICT", 0x65: "APPENDS", 0x68: "BINGET", 0x6a: "LONG_BINGET", 0x6c: "LIST", 0x71: "BINPUT",
  0x72: "LONG_BINPUT", 0x73: "SETITEM", 0x74: "TUPLE", 0x75: "SETITEMS", 0x7d: "EMPTY_DICT", 0x29: "EMPTY_TUPLE",
  0x80: "PROTO", 0x81: "NEWOBJ", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE",
  0x8a: "LONG1", 0x8b: "LONG4", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8", 0x93: "STACK_GLOBAL",
  0x94: "MEMOIZE", 0x95: "FRAME",
};

/** Opcodes that exist in the pickle format but are refused here (they import or call arbitrary objects). */
const REFUSED: Record<number, string> = {
  0x69: "INST", 0x6f: "OBJ", 0x50: "PERSID", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x92: "NEWOBJ_EX",
  0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
};

export function unpickle(data: Uint8Array, opts: UnpickleOptions): unknown {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const fail = (msg: string) => new CheckpointFormatError(opts.input, `invalid pickle: ${msg}`);
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const latin1 = new TextDecoder("latin1");
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let op = 0;
  let opAt = 0;

  const need = (n: number) => {
    if (n > data.length - pos)
      throw fail(`truncated: ${OPNAMES[op] ?? "opcode"} at byte ${opAt} needs ${n} more bytes, ${data.length - pos} left`);
  };
  const u8 = () => (need(1), data[pos++]);
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    // Any length beyond the remaining input is refused by `need` before allocating.
    return v > BigInt(data.length) ? data.length + 1 : Number(v);
  };
  const bytes = (n: number) => (need(n), (pos += n), data.subarray(pos - n, pos));
  const text = (n: number) => {
    try {
      return utf8.decode(bytes(n));
    } catch (e) {
      if (e instanceof CheckpointFormatError) throw e;
      throw fail(`string at byte ${opAt} is not valid UTF-8`);
    }
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0 || end - pos > MAX_GLOBAL_LINE) throw fail(`GLOBAL at byte ${opAt} has no name line`);
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const push = (v: unknown) => {
    if (stack.length >= MAX_STACK) throw fail(`stack deeper than ${MAX_STACK}`);
    stack.push(v);
  };
  const pop = (): unknown => {
    const base = marks.length ? marks[marks.length - 1] : 0;
    if (stack.length <= base) throw fail(`${OPNAMES[op]} at byte ${opAt} pops an empty stack`);
    return stack.pop();
  };
  const top = (): unknown => {
    const base = marks.length ? marks[marks.length - 1] : 0;
    if (stack.length <= base) throw fail(`${OPNAMES[op]} at byte ${opAt} needs a value on the stack`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) throw fail(`${OPNAMES[op]} at byte ${opAt} without a MARK`);
    return stack.splice(m);
  };
  const put = (i: number) => {
    if (!memo.has(i) && memo.size >= MAX_MEMO) throw fail(`more than ${MAX_MEMO} memo entries`);
    memo.set(i, top());
  };
  const get = (i: number) => {
    if (!memo.has(i)) throw fail(`memo key ${i} read at byte ${opAt} was never stored`);
    push(memo.get(i));
  };
  const resolve = (module: string, name: string) => {
    const g = opts.globals.get(`${module}.${name}`);
    if (!g) throw fail(`refused to load global "${module}.${name}": only state-dict types are allowed, nothing is executed`);
    push(g);
  };
  const call = (f: unknown, args: unknown) => {
    if (!(f instanceof PyGlobal) || !f.call) throw fail(`${OPNAMES[op]} at byte ${opAt} calls a value that is not callable`);
    if (!Array.isArray(args)) throw fail(`${OPNAMES[op]} at byte ${opAt}: arguments of ${f.module}.${f.name} are not a tuple`);
    push(f.call(args));
  };
  const asMap = (v: unknown): Map<unknown, unknown> => {
    if (!(v instanceof Map)) throw fail(`${OPNAMES[op]} at byte ${opAt} targets a value that is not a dict`);
    return v;
  };
  const asList = (v: unknown): unknown[] => {
    if (!Array.isArray(v) || Object.isFrozen(v)) throw fail(`${OPNAMES[op]} at byte ${opAt} targets a value that is not a list`);
    return v;
  };
  const setItems = (d: Map<unknown, unknown>, kv: unknown[]) => {
    if (kv.length % 2) throw fail(`SETITEMS at byte ${opAt} has an odd number of items`);
    for (let i = 0; i < kv.length; i += 2) d.set(kv[i], kv[i + 1]);
  };

  while (true) {
    if (pos >= data.length) throw fail(`truncated: ended at byte ${pos} without STOP`);
    opAt = pos;
    op = data[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) throw fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: // FRAME: a size hint only
        need(u64());
        break;
      case 0x2e: // STOP
        if (marks.length) throw fail(`STOP at byte ${opAt} inside an open MARK`);
        if (stack.length !== 1) throw fail(`STOP at byte ${opAt} with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        if (marks.length >= MAX_MARKS) throw fail(`MARKs nested deeper than ${MAX_MARKS}`);
        marks.push(stack.length);
        break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: need(4); push(dv.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: push(long(bytes(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = u32();
        if (n > MAX_LONG_BYTES) throw fail(`LONG4 at byte ${opAt} of ${n} bytes is too large`);
        push(long(bytes(n)));
        break;
      }
      case 0x47: need(8); push(dv.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x58: push(text(u32())); break; // BINUNICODE
      case 0x8c: push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: push(text(u64())); break; // BINUNICODE8
      case 0x54: push(latin1.decode(bytes(u32()))); break; // BINSTRING (Python 2 str)
      case 0x55: push(latin1.decode(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x42: push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: push(bytes(u64()).slice()); break; // BINBYTES8
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x29: push(tuple([])); break; // EMPTY_TUPLE
      case 0x7d: push(new Map()); break; // EMPTY_DICT
      case 0x6c: push(popMark()); break; // LIST
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x85: push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(tuple([a, b, c])); break; } // TUPLE3
      case 0x64: { const d = new Map(); setItems(d, popMark()); push(d); break; } // DICT
      case 0x61: { const v = pop(); asList(top()).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); const l = asList(top()); for (const v of items) l.push(v); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); asMap(top()).set(k, v); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(asMap(top()), kv); break; } // SETITEMS
      case 0x71: put(u8()); break; // BINPUT
      case 0x72: put(u32()); break; // LONG_BINPUT
      case 0x94: put(memo.size); break; // MEMOIZE
      case 0x68: get(u8()); break; // BINGET
      case 0x6a: get(u32()); break; // LONG_BINGET
      case 0x63: { const m = line(); const n = line(); resolve(m, n); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const n = pop();
        const m = pop();
        if (typeof m !== "string" || typeof n !== "string") throw fail(`STACK_GLOBAL at byte ${opAt} needs two strings`);
        resolve(m, n);
        break;
      }
      case 0x52: { const args = pop(); call(pop(), args); break; } // REDUCE
      case 0x81: { const args = pop(); call(pop(), args); break; } // NEWOBJ
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        const ok = opts.build ? opts.build(obj, state) : obj instanceof Map;
        if (!ok) throw fail(`BUILD at byte ${opAt} sets the state of an unsupported object`);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) throw fail(`persistent id at byte ${opAt} but none are expected`);
        push(opts.persistentLoad(pid));
        break;
      }
      default:
        if (REFUSED[op]) throw fail(`opcode ${REFUSED[op]} at byte ${opAt} is not allowed`);
        throw fail(`unknown opcode 0x${op.toString(16).padStart(2, "0")} at byte ${opAt}`);
    }
  }
}

/** Tuples are frozen arrays: APPEND on one is refused, and a validated tuple cannot change afterwards. */
function tuple(items: unknown[]): readonly unknown[] {
  return Object.freeze(items);
}

/** Little-endian two's-complement integer; a number when it is safe, else a bigint. */
function long(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

