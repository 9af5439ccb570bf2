import type { CV, Mat } from '@techstark/opencv-js';

export type { CV, Mat };

/**
 * OpenCV's WebAssembly build: the same contour, rotated-rectangle and warp primitives
 * PaddleOCR's Python pipeline calls (cv2.findContours, minAreaRect, warpPerspective, resize).
 * 5.x resolves a Promise and, unlike the 4.x builds, installs no process-wide
 * 'unhandledRejection'/'uncaughtException' handlers (which would abort a serving process).
 * Loaded with a plain require, not an import: the module's value is that Promise, and ESM
 * interop layers (vitest's, esbuild's __toESM) expose its `then` on the namespace object,
 * which an `await import()` then calls on the wrong receiver.
 */
let ready: Promise<CV> | undefined;

export function loadOpenCv(): Promise<CV> {
  ready ??= (async () => {
    const loaded = await (require('@techstark/opencv-js') as Promise<CV> | CV);
    if (typeof loaded.Mat !== 'function') throw new Error('@techstark/opencv-js did not initialise (no cv.Mat)');
    return loaded;
  })();
  return ready;
}

/**
 * Mats live in the WebAssembly heap and are not garbage-collected: everything made for one
 * request is tracked here and deleted in one `finally`.
 */
export class MatScope {
  private readonly mats: { delete(): void; isDeleted(): boolean }[] = [];

  track<T extends { delete(): void; isDeleted(): boolean }>(m: T): T {
    this.mats.push(m);
    return m;
  }

  /** Deletes one tracked object now (large intermediates), keeping the rest. */
  release(m: { delete(): void; isDeleted(): boolean }): void {
    const i = this.mats.indexOf(m);
    if (i >= 0) this.mats.splice(i, 1);
    if (!m.isDeleted()) m.delete();
  }

  free(): void {
    for (const m of this.mats.splice(0)) if (!m.isDeleted()) m.delete();
  }
}

/** OpenCV throws C++ exceptions as heap pointers (numbers): turn one into an Error with its message. */
export function opencvError(cv: CV, e: unknown): unknown {
  if (typeof e !== 'number') return e;
  let msg = `exception pointer ${e}`;
  try {
    const ex: unknown = cv.exceptionFromPtr(e);
    if (typeof ex === 'object' && ex !== null && typeof (ex as { msg?: unknown }).msg === 'string') msg = (ex as { msg: string }).msg;
  } catch {
    // keep the pointer text
  }
  return new Error(`opencv: ${msg}`);
}
