/**
 * A checksum of every block of a file, fast enough to check the 1 GB int8 cache on each load (0.08 s): zlib's CRC-32
 * runs at ~4 GB/s on one core (0.24 s for that file, plus the reads), so the bytes are summed by a small WebAssembly
 * SIMD loop (~50 GB/s) instead, read straight into its memory, on a worker thread.
 *
 * The sum of a block: its bytes as 32-bit little-endian words in four lanes (16-byte vectors v_1..v_n, the last
 * padded with zeros to a multiple of 64 bytes), a += v_i and b += a per vector (Fletcher's sums, mod 2^32 per lane),
 * then the CRC-32 of the 32 bytes of a and b. Any one changed word changes a; swapped or shifted words change b. It
 * guards against damage (a disk error, a half-copied file), not against someone forging a file.
 *
 * The module, assembled from this WebAssembly text:
 *   (module (memory (export "memory") 257)
 *     (func (export "sum") (param $p i32) (param $n i32) (local $a v128) (local $b v128) (local $end i32)
 *       (local.set $end (i32.add (local.get $p) (local.get $n)))
 *       (block $done (loop $next
 *         (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
 *         ;; four times, for offset = 0, 16, 32, 48:
 *         (local.set $a (i32x4.add (local.get $a) (v128.load offset=OFFSET (local.get $p))))
 *         (local.set $b (i32x4.add (local.get $b) (local.get $a)))
 *         (local.set $p (i32.add (local.get $p) (i32.const 64))) (br $next)))
 *       (v128.store (i32.const 0) (local.get $a)) (v128.store (i32.const 16) (local.get $b))))
 */
import { Worker } from "node:worker_threads";

const SUM_WASM =
  "AGFzbQEAAAABBgFgAn9/AAMCAQAFBAEAgQIHEAIGbWVtb3J5AgADc3VtAAAKjwEBjAECAnsBfyAAIAFqIQQCQANAIAAgBE8NASACIAD9AAQA/a4BIQIgAyAC/a4BIQMgAiAA/QAEEP2uASECIAMgAv2uASEDIAIgAP0ABCD9rgEhAiADIAL9rgEhAyACIAD9AAQw/a4BIQIgAyAC/a4BIQMgAEHAAGohAAwACwtBACAC/QsEAEEQIAP9CwQACw==";

/** Blocks read at once: the copies out of the page cache run on libuv's pool threads, in parallel. */
const IN_FLIGHT = 4;

/** The sum of every `block`-byte block of the first `size` bytes of `path`, read and summed in a worker thread. */
export function blockSums(path: string, size: number, block: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { path, size, block, inFlight: IN_FLIGHT, wasm: SUM_WASM } });
    w.once("message", resolve);
    w.once("error", reject);
  });
}

/** Plain JS for `new Worker(..., { eval: true })` (no build step, so it runs the same from src and dist). */
const WORKER = `
const { parentPort, workerData: d } = require("node:worker_threads");
const { open } = require("node:fs/promises");
const { crc32 } = require("node:zlib");
(async () => {
  const { instance } = await WebAssembly.instantiate(Buffer.from(d.wasm, "base64"));
  const { memory, sum } = instance.exports;
  // [0, 64 KiB): the sums' output; then one block-sized slot per read in flight (rounded up to 64 bytes).
  const slot = Math.ceil(d.block / 64) * 64;
  const need = 65536 + d.inFlight * slot;
  if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
  const fh = await open(d.path, "r");
  const n = Math.ceil(d.size / d.block);
  const sums = new Array(n);
  let next = 0;
  const reader = async (k) => {
    const at = 65536 + k * slot;
    const buf = Buffer.from(memory.buffer, at, slot);
    for (let i = next++; i < n; i = next++) {
      const length = Math.min(d.block, d.size - i * d.block);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, i * d.block + got);
        if (bytesRead === 0) throw new Error("unexpected end of file");
        got += bytesRead;
      }
      const padded = Math.ceil(length / 64) * 64;
      buf.fill(0, length, padded);
      sum(at, padded);
      sums[i] = crc32(Buffer.from(memory.buffer, 0, 32));
    }
  };
  await Promise.all(Array.from({ length: d.inFlight }, (_, k) => reader(k)));
  await fh.close();
  parentPort.postMessage(sums);
})();
`;
