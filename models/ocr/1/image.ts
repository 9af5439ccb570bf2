import { InputError } from '@tandem/sdk';
import sharp from 'sharp';
import { DET, LIMITS } from './limits';
import type { CV, Mat, MatScope } from './opencv';

/** A decoded image: 8-bit RGB, row-major, no padding. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Four corners, clockwise from top-left, in source-image pixels. */
export type Quad = [[number, number], [number, number], [number, number], [number, number]];

/**
 * PNG or JPEG bytes to RGB with sharp (libvips): EXIF orientation applied, transparency
 * flattened onto white (dark text on a transparent PNG would otherwise vanish into black),
 * grey and CMYK converted to sRGB. Size is checked from the header before any pixel is decoded.
 */
export async function decodeImage(bytes: Uint8Array): Promise<RgbImage> {
  if (bytes.length === 0) throw new InputError('image is empty');
  if (bytes.length > LIMITS.maxImageBytes) throw new InputError(`image is ${bytes.length} bytes; at most ${LIMITS.maxImageBytes} are accepted`);
  let format: string;
  let width: number;
  let height: number;
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    format = meta.format;
    width = meta.autoOrient.width;
    height = meta.autoOrient.height;
  } catch (e) {
    throw new InputError(`image is not a PNG or JPEG (${(e as Error).message})`);
  }
  if (format !== 'png' && format !== 'jpeg') throw new InputError(`image is ${format}; send a PNG or JPEG`);
  if (!(width > 0 && height > 0)) throw new InputError('image has no pixels');
  if (width * height > LIMITS.maxPixels) {
    throw new InputError(`image is ${width}×${height} pixels; at most ${LIMITS.maxPixels} pixels are accepted`);
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: LIMITS.maxPixels, autoOrient: true })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' }) // 16-bit PNGs too
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    throw new InputError(`cannot decode the ${format} image: ${(e as Error).message}`);
  }
}

/** The image as an OpenCV Mat (copied into the WebAssembly heap). */
export function toMat(cv: CV, scope: MatScope, img: RgbImage): Mat {
  return scope.track(cv.matFromArray(img.height, img.width, cv.CV_8UC3, img.data));
}

/**
 * The detector's input (DetResizeForTest, limit_type 'max'): the longer side scaled down to
 * DET.limitSideLen, each side rounded to a multiple of 32, ImageNet-normalised, BGR, CHW.
 */
export function detInput(cv: CV, scope: MatScope, src: Mat): { data: Float32Array; width: number; height: number } {
  const ratio = Math.max(src.rows, src.cols) > DET.limitSideLen ? DET.limitSideLen / Math.max(src.rows, src.cols) : 1;
  const height = Math.max(Math.round(Math.trunc(src.rows * ratio) / 32) * 32, 32);
  const width = Math.max(Math.round(Math.trunc(src.cols * ratio) / 32) * 32, 32);
  const resized = scope.track(new cv.Mat());
  cv.resize(src, resized, new cv.Size(width, height), 0, 0, cv.INTER_LINEAR);
  const px = resized.data;
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    // Tensor channel c is BGR channel c: the RGB pixel's channel 2 - c.
    const scale = 1 / (255 * DET.std[c]!);
    const shift = DET.mean[c]! / DET.std[c]!;
    for (let i = 0, o = c * plane; i < plane; i++, o++) data[o] = px[i * 3 + 2 - c]! * scale - shift;
  }
  scope.release(resized);
  return { data, width, height };
}

const dist = (a: readonly [number, number], b: readonly [number, number]): number => Math.hypot(a[0] - b[0], a[1] - b[1]);

/**
 * One text box cut out and straightened (get_rotate_crop_image): a perspective warp of the
 * quad onto an upright rectangle, bicubic, edges replicated; a box at least 1.5× taller than
 * wide is vertical text and is turned 90° counter-clockwise.
 */
export function cropLine(cv: CV, scope: MatScope, src: Mat, box: Quad): Mat {
  const w = Math.trunc(Math.max(dist(box[0], box[1]), dist(box[2], box[3])));
  const h = Math.trunc(Math.max(dist(box[0], box[3]), dist(box[1], box[2])));
  const from = scope.track(cv.matFromArray(4, 1, cv.CV_32FC2, box.flat()));
  const to = scope.track(cv.matFromArray(4, 1, cv.CV_32FC2, [0, 0, w, 0, w, h, 0, h]));
  const m = scope.track(cv.getPerspectiveTransform(from, to));
  const out = scope.track(new cv.Mat());
  cv.warpPerspective(src, out, m, new cv.Size(w, h), cv.INTER_CUBIC, cv.BORDER_REPLICATE, new cv.Scalar());
  scope.release(from);
  scope.release(to);
  scope.release(m);
  if (h / w >= 1.5) cv.rotate(out, out, cv.ROTATE_90_COUNTERCLOCKWISE);
  return out;
}

/**
 * Line crops as one [n, 3, height, width] batch (resize_norm_img): each resized to `height`
 * keeping its aspect ratio (squeezed if wider than `width`), scaled to [-1, 1], BGR, and
 * right-padded with zeros.
 */
export function packLines(cv: CV, scope: MatScope, crops: readonly Mat[], height: number, width: number): Float32Array {
  const plane = height * width;
  const data = new Float32Array(crops.length * 3 * plane);
  const resized = scope.track(new cv.Mat());
  crops.forEach((crop, n) => {
    const w = Math.min(width, Math.ceil((height * crop.cols) / crop.rows));
    cv.resize(crop, resized, new cv.Size(w, height), 0, 0, cv.INTER_LINEAR);
    const px = resized.data;
    for (let c = 0; c < 3; c++) {
      const base = (n * 3 + c) * plane;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < w; x++) data[base + y * width + x] = px[(y * w + x) * 3 + 2 - c]! / 127.5 - 1;
      }
    }
  });
  scope.release(resized);
  return data;
}

/** Width of a crop once resized to `height` (before bucketing). */
export function scaledWidth(crop: Mat, height: number): number {
  return Math.ceil((height * crop.cols) / crop.rows);
}
