/**
 * Writes the corpus of bad inputs in this folder (run once: `node --import tsx test/corpus/make.ts`; the
 * outputs are committed). Each file is one way real files go wrong; corpus.test.ts runs every one through
 * every CLI command that reads that kind of file.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateRawSync } from "node:zlib";
import { crc32 } from "../../src/io/zip.js";
import { makeZip, Pk, statePickle, torchZip } from "../helpers/craft.js";
import { fixture } from "../helpers/fixtures.js";

const here = dirname(fileURLToPath(import.meta.url));
const out = (kind: string, name: string, bytes: Uint8Array | string) => {
  mkdirSync(join(here, kind), { recursive: true });
  writeFileSync(join(here, kind, name), bytes);
};

/** safetensors bytes from a header (object or raw text) and data. */
function st(header: unknown, data = new Uint8Array(16), raw?: string, claimedLength?: bigint): Buffer {
  const h = Buffer.from(raw ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(claimedLength ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}
const t = (dtype: string, shape: number[], o: [number, number]) => ({ dtype, shape, data_offsets: o });

out("safetensors", "empty.safetensors", "");
out("safetensors", "header-length-huge.safetensors", st({}, undefined, undefined, 1n << 60n));
out("safetensors", "header-past-end.safetensors", st({}, new Uint8Array(0), "{}", 4096n));
out("safetensors", "header-not-json.safetensors", st(null, undefined, "{\"a\": [1, 2"));
out("safetensors", "overlapping.safetensors", st({ a: t("F32", [2], [0, 8]), b: t("F32", [2], [4, 12]) }));
out("safetensors", "out-of-range.safetensors", st({ a: t("F32", [64], [0, 256]) }));
out("safetensors", "unknown-dtype.safetensors", st({ a: t("F4", [2], [0, 1]) }));
out("safetensors", "size-mismatch.safetensors", st({ a: t("F32", [3], [0, 8]) }));
out("safetensors", "duplicate-name.safetensors", st(null, undefined, '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'));
const real = readFileSync(fixture("tiny-default", "model.safetensors"));
out("safetensors", "truncated.safetensors", real.subarray(0, 8 + Number(real.readBigUInt64LE(0)) + 100)); // header intact, data cut

const six = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
const spec = [{ name: "w", key: "0", numel: 6, size: [2, 3], stride: [3, 1] }];
out("bin", "not-a-zip.bin", "PK? no, just text pretending to be a checkpoint");
out("bin", "hostile-os-system.bin", torchZip(new Pk().proto().global("os", "system").str("touch /tmp/bridgetower-pwned").op(0x85).reduce().stop().bytes(), {}));
out("bin", "hostile-builtins-eval.bin", torchZip(new Pk().proto().stackGlobal("builtins", "eval").str("__import__('os').system('touch /tmp/bridgetower-pwned')").op(0x85).reduce().stop().bytes(), {}));
const pkl = statePickle(spec);
out("bin", "truncated-pickle.bin", torchZip(pkl.subarray(0, pkl.length - 20), { "0": six }));
out("bin", "storage-shorter-than-view.bin", torchZip(statePickle([{ ...spec[0], numel: 4 }]), { "0": six.subarray(0, 16) }));
{
  // A zip whose storage entry is deflated (torch writes them stored; a deflated storage cannot be read in place).
  out("bin", "compressed-storage.bin", makeZip([
    { name: "archive/data.pkl", data: pkl },
    { name: "archive/data/0", data: six, method: 8 },
  ]));
}
const good = Buffer.from(torchZip(pkl, { "0": six }));
const eocd = good.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
const broken = Buffer.from(good);
broken.writeUInt32LE(0xfffffff0, eocd + 16); // central directory offset far outside the file
out("bin", "broken-central-directory.bin", broken);

/** A PNG from chunks (CRCs correct), for header-level problems. */
function png(chunks: [string, Uint8Array][]): Buffer {
  const parts = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])];
  for (const [type, data] of chunks) {
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const c = Buffer.alloc(body.length + 8);
    c.writeUInt32BE(data.length, 0);
    body.copy(c, 4);
    c.writeUInt32BE(crc32(body), body.length + 4);
    parts.push(c);
  }
  return Buffer.concat(parts);
}
const ihdr = (w: number, h: number) => {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(w, 0);
  b.writeUInt32BE(h, 4);
  b[8] = 8; // bit depth
  b[9] = 2; // RGB
  return b;
};
out("images", "empty.png", "");
out("images", "not-an-image.jpg", "<html>this is a web page saved with a .jpg name</html>");
out("images", "bomb-100000x100000.png", png([["IHDR", ihdr(100000, 100000)], ["IDAT", deflateRawSync(Buffer.alloc(1000))], ["IEND", new Uint8Array(0)]]));
const chelsea = readFileSync(fixture("image-processor", "images", "chelsea.png"));
out("images", "truncated.png", chelsea.subarray(0, 2000));
const rocket = readFileSync(fixture("image-processor", "images", "rocket.jpg"));
out("images", "truncated.jpg", rocket.subarray(0, 600));

out("config", "not-json.json", "{ \"model_type\": \"bridgetower\", ");
out("config", "wrong-model-type.json", JSON.stringify({ model_type: "clip" }));
out("config", "crashes-upstream-share-link.json", JSON.stringify({ ...JSON.parse(readFileSync(fixture("e2e-fullvocab", "config.json"), "utf8")), share_link_tower_layers: true }));
out("config", "hidden-size-string.json", JSON.stringify({ ...JSON.parse(readFileSync(fixture("e2e-fullvocab", "config.json"), "utf8")), hidden_size: "64" }));
