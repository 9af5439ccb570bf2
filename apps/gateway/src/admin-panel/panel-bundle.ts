import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** The panel's TypeScript entry (in the source tree; `npm run build` bundles it into dist/). */
export const PANEL_UI_ENTRY = join(__dirname, 'ui', 'main.ts');

/** The bundle's files: the panel's code and the chart library's stylesheet. */
export const PANEL_BUNDLE_FILES = ['app.js', 'app.css'] as const;
export type PanelBundleFile = (typeof PANEL_BUNDLE_FILES)[number];

/**
 * Bundles the panel (its modules, uPlot and uPlot's CSS) into one ES module and one stylesheet
 * with esbuild. esbuild is loaded only here: a built gateway serves the files `npm run build`
 * wrote and never calls this.
 */
export async function bundlePanel(entry = PANEL_UI_ENTRY): Promise<Map<PanelBundleFile, Buffer>> {
  const { build } = await import('esbuild');
  const r = await build({
    entryPoints: { app: entry },
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    minify: true,
    legalComments: 'none',
    write: false,
    outdir: 'out',
    logLevel: 'silent',
  });
  const out = new Map<PanelBundleFile, Buffer>();
  for (const f of r.outputFiles) {
    const name = basename(f.path) as PanelBundleFile;
    if (PANEL_BUNDLE_FILES.includes(name)) out.set(name, Buffer.from(f.contents));
  }
  for (const name of PANEL_BUNDLE_FILES) if (!out.has(name)) throw new Error(`panel bundle lacks ${name}`);
  return out;
}

/** Writes the bundle into `dir` (the build step: dist/…/admin-panel/static). */
export async function writePanelBundle(dir: string, entry = PANEL_UI_ENTRY): Promise<string[]> {
  const files = await bundlePanel(entry);
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, body] of files) {
    await writeFile(join(dir, name), body);
    written.push(join(dir, name));
  }
  return written;
}
