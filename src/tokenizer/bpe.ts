/**
 * GPT-2 byte-level BPE as HF's slow tokenizer runs it: regex pre-split, UTF-8 bytes mapped to printable
 * characters, then merges applied lowest rank first.
 */

/** GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the rest to U+0100 upwards. */
function byteTable(): string[] {
  const table: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : next++);
  }
  return table;
}

export const BYTE_TO_CHAR: readonly string[] = byteTable();
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

// Python's `regex` module reads \s as the Unicode White_Space property; JS's \s differs (it adds U+FEFF
// and lacks U+0085), so the property is spelled out.
const PRE_TOKENIZE =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/** GPT-2 pre-tokenisation: the pieces BPE runs on, still as plain text. */
export function preTokenize(text: string): string[] {
  return text.match(PRE_TOKENIZE) ?? [];
}

const encoder = new TextEncoder();

/** A piece's UTF-8 bytes as byte-level characters (`Ġ` for space, ...). */
export function toByteChars(piece: string): string {
  let out = "";
  for (const b of encoder.encode(piece)) out += BYTE_TO_CHAR[b];
  return out;
}

// Bounded so untrusted text cannot grow it without limit; long pieces are rare and not worth keeping.
const CACHE_ENTRIES = 10_000;
const CACHE_PIECE_CHARS = 256;

export class BytePairEncoder {
  private readonly cache = new Map<string, string[]>();

  /** `ranks` maps `"left right"` to the merge's line number (byte-level symbols never contain a space). */
  constructor(private readonly ranks: ReadonlyMap<string, number>) {}

  /** Splits one byte-level piece into its BPE symbols. */
  encode(piece: string): string[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    const symbols = this.merge(Array.from(piece));
    if (piece.length <= CACHE_PIECE_CHARS) {
      if (this.cache.size >= CACHE_ENTRIES) this.cache.clear();
      this.cache.set(piece, symbols);
    }
    return symbols;
  }

  /**
   * Same result as the slow tokenizer's loop (each round merges every occurrence of the lowest-ranked pair,
   * left to right) but in O(n log n): a doubly linked list of symbols and a heap of candidate pairs ordered by
   * (rank, position). A round pops all pairs of one rank before merging, because a merge can create a
   * lower-ranked pair that the slow code only sees in the next round.
   */
  private merge(sym: string[]): string[] {
    const n = sym.length;
    if (n < 2) return sym;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const alive = new Uint8Array(n).fill(1);
    const heap = new PairHeap();
    const push = (left: number): void => {
      if (left < 0 || next[left] < 0) return;
      const right = next[left];
      const rank = this.ranks.get(`${sym[left]} ${sym[right]}`);
      if (rank !== undefined) heap.push({ rank, left, right, rightLength: sym[right].length });
    };
    for (let i = 0; i + 1 < n; i++) push(i);

    while (heap.size > 0) {
      const rank = heap.peek().rank;
      const round: Pair[] = [];
      while (heap.size > 0 && heap.peek().rank === rank) round.push(heap.pop());
      for (const p of round) {
        // Stale if either side has merged since the pair was queued (symbols only grow).
        if (!alive[p.left] || next[p.left] !== p.right || sym[p.right].length !== p.rightLength) continue;
        sym[p.left] += sym[p.right];
        alive[p.right] = 0;
        next[p.left] = next[p.right];
        if (next[p.left] >= 0) prev[next[p.left]] = p.left;
        push(prev[p.left]);
        push(p.left);
      }
    }
    const out: string[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(sym[i]);
    return out;
  }
}

interface Pair {
  rank: number;
  left: number;
  right: number;
  rightLength: number;
}

/** Binary min-heap on (rank, left position). */
class PairHeap {
  private readonly items: Pair[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Pair {
    return this.items[0];
  }

  push(p: Pair): void {
    const a = this.items;
    let i = a.length;
    a.push(p);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(p, a[parent])) break;
      a[i] = a[parent];
      i = parent;
    }
    a[i] = p;
  }

  pop(): Pair {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && less(a[child + 1], a[child])) child++;
        if (!less(a[child], last)) break;
        a[i] = a[child];
        i = child;
      }
      a[i] = last;
    }
    return top;
  }
}

function less(a: Pair, b: Pair): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.left < b.left);
}
