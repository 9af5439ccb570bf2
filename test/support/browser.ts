import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium package (installed by .ci/run when missing). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export function launchChromium(): Promise<Browser> {
  // Fail loudly rather than skip: the panel's acceptance test must not pass by not running.
  if (!chromiumAvailable()) throw new Error(`Chromium not found at ${CHROMIUM_PATH}: apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-gpu',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
}

export const ARTIFACTS_DIR = resolve(process.cwd(), 'test-artifacts');

/** Committed screenshots (docs/screenshots) are rewritten only when asked: UPDATE_SCREENSHOTS=1. */
export const UPDATE_SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1';

/** Saves a PNG under test-artifacts/ (and, when given and asked for, the committed copy under docs/). */
export async function screenshot(page: Page, name: string, docsPath?: string): Promise<void> {
  const paths = [resolve(ARTIFACTS_DIR, 'admin-panel', `${name}.png`)];
  if (docsPath && UPDATE_SCREENSHOTS) paths.push(resolve(process.cwd(), docsPath));
  const png = await page.screenshot({ fullPage: false, animations: 'disabled', caret: 'hide' });
  for (const p of paths) {
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, png);
  }
}

/**
 * Collects uncaught page errors and console errors (CSP violations land there) so a test can
 * assert the panel ran clean. Chromium's "Failed to load resource" lines for 4xx answers the
 * test provokes on purpose are not errors of the panel.
 */
export function watchPage(page: Page): { errors: string[] } {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`);
  });
  return { errors };
}
