import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The panel's static files: a fixed allow-list (names never reach the filesystem otherwise, so
 * there is no traversal to defend against), with each file's content type.
 */
export const PANEL_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'panel.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'dialog.js': 'text/javascript; charset=utf-8',
  'devices.js': 'text/javascript; charset=utf-8',
  'allocations.js': 'text/javascript; charset=utf-8',
  'models.js': 'text/javascript; charset=utf-8',
  'batches.js': 'text/javascript; charset=utf-8',
  'audit.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/** Only same-origin scripts, styles and API calls; no inline code, no framing, no plugins. */
export const PANEL_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Lives next to this file in the source tree and in dist/ (swc `--copy-files` copies html/css/svg;
 * the `.swcrc` in static/ keeps the browser modules ES modules when swc compiles the .js files).
 */
export const PANEL_DIR = join(__dirname, 'static');

export interface PanelAsset {
  body: Buffer;
  contentType: string;
}

/** Reads each allowed file once; files are small and immutable for the life of the process. */
export class PanelAssets {
  private readonly cache = new Map<string, Promise<PanelAsset>>();

  constructor(private readonly dir = PANEL_DIR) {}

  /** undefined for any name not on the allow-list. */
  get(name: string): Promise<PanelAsset> | undefined {
    const contentType = Object.hasOwn(PANEL_FILES, name) ? PANEL_FILES[name] : undefined;
    if (!contentType) return undefined;
    let hit = this.cache.get(name);
    if (!hit) {
      hit = readFile(join(this.dir, name)).then((body) => ({ body, contentType }));
      // A failed read (file missing from a broken build) is retried on the next request.
      hit.catch(() => this.cache.delete(name));
      this.cache.set(name, hit);
    }
    return hit;
  }
}
