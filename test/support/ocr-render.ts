import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { distance } from 'fastest-levenshtein';
import { ARTIFACTS_DIR } from './browser';

export interface SheetLine {
  text: string;
  /** Drawn upside down (CSS rotate(180deg)): the direction classifier has to turn it back. */
  upsideDown?: boolean;
}

export interface Sheet {
  name: string;
  lines: SheetLine[];
  /** CSS font size in px (default 30). */
  fontSize?: number;
}

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Renders a sheet of text lines in Chromium (black Liberation Sans on white, one line per
 * row) and returns its PNG screenshot; a copy goes to test-artifacts/ocr/<name>.png.
 */
export async function renderSheet(browser: Browser, sheet: Sheet): Promise<Buffer> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 }, deviceScaleFactor: 1 });
  try {
    const rows = sheet.lines
      .map((l) =>
        l.upsideDown ? `<div><span style="display:inline-block;transform:rotate(180deg)">${escape(l.text)}</span></div>` : `<div>${escape(l.text)}</div>`,
      )
      .join('');
    const font = `${sheet.fontSize ?? 30}px 'Liberation Sans', 'DejaVu Sans', sans-serif`;
    await page.setContent(
      `<!doctype html><html><body style="margin:0;background:#fff">` +
        `<div id="sheet" style="display:inline-block;padding:28px 40px;background:#fff;color:#000;font:${font};line-height:2">${rows}</div>` +
        `</body></html>`,
    );
    const png = await page.locator('#sheet').screenshot({ type: 'png', animations: 'disabled' });
    const file = resolve(ARTIFACTS_DIR, 'ocr', `${sheet.name}.png`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, png);
    return png;
  } finally {
    await page.close();
  }
}

/** Text compared as the acceptance criterion says: whitespace dropped, case folded, full-width forms (NFKC) made plain. */
export function normaliseForCer(s: string): string {
  return s.normalize('NFKC').replace(/\s+/g, '').toLowerCase();
}

/** Character error rate: edit distance over the expected length, after normalisation. */
export function characterErrorRate(expected: string, got: string): number {
  const e = normaliseForCer(expected);
  return distance(e, normaliseForCer(got)) / Math.max(1, e.length);
}
