import { ImageError } from "../errors.js";

/** A decoded image: rows top to bottom, RGB interleaved, 8 bits per channel (HWC uint8). */
export interface RgbImage {
  width: number;
  height: number;
  /** Length width * height * 3. */
  data: Uint8Array;
}

/** A file path, the bytes of an encoded image file, or an already decoded image. */
export type ImageInput = string | Uint8Array | RgbImage;

export function isRgbImage(x: unknown): x is RgbImage {
  return typeof x === "object" && x !== null && !(x instanceof Uint8Array) && "data" in x;
}

/** Throws ImageError unless `img` is a well-formed RgbImage. */
export function checkRgbImage(img: RgbImage, label = "<RgbImage>"): RgbImage {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError(label, `width and height must be positive integers, got ${width}x${height}`);
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * 3) {
    throw new ImageError(label, `data must be a Uint8Array of width*height*3 = ${width * height * 3} bytes`);
  }
  return img;
}
