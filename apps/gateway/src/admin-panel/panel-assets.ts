import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundlePanel, PANEL_BUNDLE_FILES, PANEL_UI_ENTRY, type PanelBundleFile } from './panel-bundle';

/**
 * The panel's static files: a fixed allow-list (names never reach the filesystem otherwise, so
 * there is no traversal to defend against), with each file's content type.
 */
export const PANEL_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'panel.css': 'text/css; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
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
 * `npm run build` writes the bundle, app.js and app.css, here too).
 */
export const PANEL_DIR = join(__dirname, 'static');

export interface PanelAsset {
  body: Buffer;
  contentType: string;
}

const isBundleFile = (name: string): name is PanelBundleFile => (PANEL_BUNDLE_FILES as readonly string[]).includes(name);

/**
 * Reads each allowed file once; files are small and immutable for the life of the process. Run
 * from the source tree (tests, `vitest`), where no build wrote the bundle, the bundle is made in
 * memory from the panel's TypeScript on first use.
 */
export class PanelAssets {
  private readonly cache = new Map<string, Promise<PanelAsset>>();
  private bundle: Promise<Map<PanelBundleFile, Buffer>> | null = null;

  constructor(
    private readonly dir = PANEL_DIR,
    private readonly uiEntry = PANEL_UI_ENTRY,
  ) {}

  /** undefined for any name not on the allow-list. */
  get(name: string): Promise<PanelAsset> | undefined {
    const contentType = Object.hasOwn(PANEL_FILES, name) ? PANEL_FILES[name] : undefined;
    if (!contentType) return undefined;
    let hit = this.cache.get(name);
    if (!hit) {
      hit = this.read(name).then((body) => ({ body, contentType }));
      // A failed read (file missing from a broken build) is retried on the next request.
      hit.catch(() => this.cache.delete(name));
      this.cache.set(name, hit);
    }
    return hit;
  }

  private async read(name: string): Promise<Buffer> {
    const path = join(this.dir, name);
    if (!isBundleFile(name) || existsSync(path) || !existsSync(this.uiEntry)) return readFile(path);
    this.bundle ??= bundlePanel(this.uiEntry);
    this.bundle.catch(() => {
      this.bundle = null;
    });
    return (await this.bundle).get(name)!;
  }
}
