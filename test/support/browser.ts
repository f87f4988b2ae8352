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

/**
 * After a double click on a submit button: the form goes twice, and Chromium aborts whichever navigation the
 * other replaces. When the first answer's redirect has already begun, the wait sees that one aborted
 * (net::ERR_ABORTED); the second submission's own redirect then lands where the first would have.
 */
export async function waitForUrlAfterDoubleSubmit(page: Page, url: RegExp): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.waitForURL(url);
      return;
    } catch (err) {
      if (attempt >= 3 || !/ERR_ABORTED|frame was detached/.test(String(err))) throw err;
    }
  }
}
