/**
 * A headless browser for UI tests: `playwright-core` driving Debian's Chromium (`/usr/bin/chromium`),
 * no browser downloads. Screenshots go to `test-artifacts/` (git-ignored).
 *
 *   const browser = await launchBrowser();
 *   try { const page = await browser.newPage(); ... await screenshot(page, 'approval-page.png'); }
 *   finally { await browser.close(); }
 *
 * Network: the browser only reaches loopback (every other host resolves to nothing), so a page
 * cannot silently load an external asset in a test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type LaunchOptions, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ARTIFACTS_DIR = path.resolve(__dirname, '..', '..', 'test-artifacts');

/** Why the browser cannot run here, or undefined when it can (for a clear skip/failure message). */
export function browserUnavailable(): string | undefined {
  if (!fs.existsSync(CHROMIUM_PATH))
    return `Chromium not found at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`;
  return undefined;
}

export async function launchBrowser(opts: LaunchOptions = {}): Promise<Browser> {
  const missing = browserUnavailable();
  if (missing) throw new Error(missing);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: 120_000, // a loaded CI machine can take a while to start Chromium
    ...opts,
    args: [
      '--no-sandbox', // CI containers run as root / without user namespaces
      '--disable-dev-shm-usage',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--metrics-recording-only',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
      ...(opts.args ?? []),
    ],
  });
}

/** Save a full-page screenshot as test-artifacts/<name>; returns the file path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const file = path.join(ARTIFACTS_DIR, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Run `fn` with a fresh browser, always closing it (so jest exits and no Chromium is left behind). */
export async function withBrowser<T>(fn: (browser: Browser) => Promise<T>, opts?: LaunchOptions): Promise<T> {
  const browser = await launchBrowser(opts);
  try {
    return await fn(browser);
  } finally {
    await browser.close().catch(() => undefined);
  }
}
