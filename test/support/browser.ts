import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium (scripts/ensure-deps.mjs installs it); IPNFLOW_CHROMIUM names another. */
export const CHROMIUM = process.env.IPNFLOW_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots of every page a browser test sees, for review (git-ignored). */
export const SCREENSHOTS = path.resolve(__dirname, '..', '..', 'test-output', 'screenshots');

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run node scripts/ensure-deps.mjs --browser (installs Debian's chromium)`);
  // Tests run as root in containers: Chromium's sandbox needs user namespaces they may not have.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
