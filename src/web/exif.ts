/**
 * Browsers turn JPEG and PNG images by their EXIF orientation whatever createImageBitmap is told; Pillow (and so
 * Node's decode) ignores it. Removing the EXIF block before decoding gives the stored pixels, as Pillow reads them.
 */

/** The file without its EXIF block (JPEG APP1 "Exif", PNG eXIf chunk), or the same bytes when it has none. */
export function withoutExif(b: Uint8Array): Uint8Array {
  if (b[0] === 0xff && b[1] === 0xd8) return cut(b, jpegExif(b));
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return cut(b, pngExif(b));
  return b;
}

function cut(b: Uint8Array, range: [number, number] | undefined): Uint8Array {
  if (!range) return b;
  const out = new Uint8Array(b.length - (range[1] - range[0]));
  out.set(b.subarray(0, range[0]));
  out.set(b.subarray(range[1]), range[0]);
  return out;
}

/** The APP1 segment holding EXIF, among the segments before the image data. */
function jpegExif(b: Uint8Array): [number, number] | undefined {
  let i = 2;
  while (i + 4 <= b.length && b[i] === 0xff) {
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // start of scan, end of image
    const end = i + 2 + ((b[i + 2] << 8) | b[i + 3]);
    const exif = marker === 0xe1 && String.fromCharCode(...b.subarray(i + 4, i + 10)) === "Exif\0\0";
    if (exif && end <= b.length) return [i, end];
    i = end;
  }
  return undefined;
}

/** The eXIf chunk (length, type, data, CRC). */
function pngExif(b: Uint8Array): [number, number] | undefined {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 8; i + 12 <= b.length; ) {
    const end = i + 12 + dv.getUint32(i);
    const type = String.fromCharCode(...b.subarray(i + 4, i + 8));
    if (type === "eXIf" && end <= b.length) return [i, end];
    if (type === "IDAT" || type === "IEND") return undefined; // eXIf must come before the image data
    i = end;
  }
  return undefined;
}
