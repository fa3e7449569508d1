/** A decoded image: rows top to bottom, RGB interleaved, 8 bits per channel (HWC uint8). */
export interface RgbImage {
  width: number;
  height: number;
  /** Length width * height * 3. */
  data: Uint8Array;
}

/** A file path, the bytes of an encoded image file, or an already decoded image. */
export type ImageInput = string | Uint8Array | RgbImage;
