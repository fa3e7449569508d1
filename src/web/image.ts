/**
 * Images in the page, decoded by the browser (createImageBitmap with no colour-space conversion, no alpha
 * premultiplication, the EXIF block removed: as Pillow's `Image.open(f).convert("RGB")`) and read back as RGB bytes
 * (through WebGL where the page has it, else a 2D canvas); the Pillow-exact resize and the rest happen in
 * src/image/ as in Node.
 */
import { ImageError } from "../errors.js";
import { decodeBmp, isBmp } from "../image/bmp.js";
import { checkRgbImage, isRgbImage, type RgbImage } from "../image/types.js";
import { withoutExif } from "./exif.js";

/**
 * What the page accepts as an image: a Blob or File, a decoded image or canvas, ImageData, a URL, or RGB bytes.
 * Files (Blob, File, URL) decode as Pillow reads them; an <img>, ImageBitmap or canvas is taken as the browser
 * decoded it, turned by its EXIF orientation.
 */
export type WebImageInput = Blob | ImageBitmap | ImageData | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | string | URL | RgbImage;

/** Pillow's decompression-bomb limit, Node's default `maxPixels` (image/decode.ts). */
const MAX_PIXELS = 178956970;
const DECODE: ImageBitmapOptions = { colorSpaceConversion: "none", premultiplyAlpha: "none" };

export async function loadWebImage(input: WebImageInput, label = "image"): Promise<RgbImage> {
  if (typeof input === "string" || input instanceof URL) return fromBlob(await fetchImage(String(input)), String(input));
  if (typeof Blob !== "undefined" && input instanceof Blob) return fromBlob(input, input instanceof File ? input.name : label);
  if (typeof ImageData !== "undefined" && input instanceof ImageData) return fromRgba(input.data, input.width, input.height);
  if (isRgbImage(input)) return checkRgbImage(input, label);
  if (typeof HTMLImageElement !== "undefined" && input instanceof HTMLImageElement) {
    try {
      await input.decode();
    } catch (e) {
      throw new ImageError(input.currentSrc || label, `cannot be decoded as an image (${(e as Error).message})`, { cause: e });
    }
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(input as ImageBitmapSource, DECODE);
  } catch (e) {
    throw new ImageError(label, `cannot be read as an image (${(e as Error).message})`, { cause: e });
  }
  return fromBitmap(bitmap, label);
}

async function fetchImage(url: string): Promise<Blob> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new ImageError(url, `could not be fetched (${(e as Error).message})`, { cause: e });
  }
  if (!res.ok) throw new ImageError(url, `could not be fetched (HTTP ${res.status})`);
  return res.blob();
}

async function fromBlob(blob: Blob, label: string): Promise<RgbImage> {
  // BMP goes through Node's decoder, which follows Pillow's rules (and refusals) exactly.
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (isBmp(bytes)) return decodeBmp(bytes, label, MAX_PIXELS);
  const stored = withoutExif(bytes);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(stored === bytes ? blob : new Blob([stored as Uint8Array<ArrayBuffer>]), DECODE);
  } catch (e) {
    throw new ImageError(label, `cannot be decoded as an image (${(e as Error).message}): the browser reads PNG, JPEG, GIF, WebP, BMP and AVIF`, { cause: e });
  }
  return fromBitmap(bitmap, label);
}

function fromBitmap(bitmap: ImageBitmap, label: string): RgbImage {
  const { width, height } = bitmap;
  try {
    if (width * height > MAX_PIXELS) throw new ImageError(label, `${width}x${height} is over the ${MAX_PIXELS}-pixel limit (Pillow's decompression-bomb limit, as in Node)`);
    const rgba = viaWebGl(bitmap) ?? via2d(bitmap);
    return fromRgba(rgba, width, height);
  } finally {
    bitmap.close();
  }
}

let gl: WebGL2RenderingContext | null | undefined;

/**
 * The bitmap's bytes as decoded: a WebGL texture read back keeps the colour of (semi-)transparent pixels, which a
 * 2D canvas (premultiplied) loses. Undefined where WebGL2 is missing or the image exceeds its texture size.
 */
function viaWebGl(bitmap: ImageBitmap): Uint8Array | undefined {
  if (gl === undefined) gl = typeof OffscreenCanvas === "undefined" ? null : new OffscreenCanvas(1, 1).getContext("webgl2", { premultipliedAlpha: false, antialias: false });
  if (!gl || gl.isContextLost()) return undefined;
  const { width, height } = bitmap;
  const max = gl.getParameter(gl.MAX_TEXTURE_SIZE) as number;
  if (width > max || height > max) return undefined;
  const tex = gl.createTexture();
  const fb = gl.createFramebuffer();
  try {
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
    gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.NONE);
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, gl.RGBA, gl.UNSIGNED_BYTE, bitmap);
    gl.bindFramebuffer(gl.FRAMEBUFFER, fb);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, tex, 0);
    if (gl.checkFramebufferStatus(gl.FRAMEBUFFER) !== gl.FRAMEBUFFER_COMPLETE) return undefined;
    const px = new Uint8Array(width * height * 4);
    gl.pixelStorei(gl.PACK_ALIGNMENT, 1);
    gl.readPixels(0, 0, width, height, gl.RGBA, gl.UNSIGNED_BYTE, px);
    return gl.getError() === gl.NO_ERROR ? px : undefined;
  } finally {
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    gl.deleteFramebuffer(fb);
    gl.deleteTexture(tex);
  }
}

function via2d(bitmap: ImageBitmap): Uint8ClampedArray {
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true, colorSpace: "srgb" }) as OffscreenCanvasRenderingContext2D | null;
  if (!ctx) throw new ImageError("image", "this browser gives no canvas to read pixels from");
  ctx.drawImage(bitmap, 0, 0);
  return ctx.getImageData(0, 0, width, height, { colorSpace: "srgb" }).data;
}

/** RGBA to RGB, dropping alpha as Pillow's convert("RGB") does (no compositing). */
function fromRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; j < data.length; i += 4, j += 3) {
    data[j] = rgba[i];
    data[j + 1] = rgba[i + 1];
    data[j + 2] = rgba[i + 2];
  }
  return { width, height, data };
}
