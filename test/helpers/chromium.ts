/** Debian's Chromium driven by playwright-core (no downloaded browser), as every browser test launches it. */
import { existsSync, mkdirSync } from "node:fs";
import { after, before } from "node:test";
import { chromium, type Browser } from "playwright-core";
import type { Served } from "./serve.js";

export const CHROMIUM = "/usr/bin/chromium";
/** Skipped on a machine without Chromium, but never in CI (.ci/run installs it). */
export const skipWithoutChromium = existsSync(CHROMIUM) || process.env.CI ? false : `${CHROMIUM} is not installed (apt-get install chromium, as .ci/run does)`;

/** Headless, as root, with the background-networking flags this closed network needs. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * For a describe block of page tests: Chromium launched before them (and `outDir` made for their screenshots),
 * closed after them with every server they pushed to `servers`.
 */
export function chromiumForSuite(outDir: string): { readonly browser: Browser; servers: Served[] } {
  const suite = { browser: undefined as unknown as Browser, servers: [] as Served[] };
  before(async () => {
    mkdirSync(outDir, { recursive: true });
    suite.browser = await launchChromium();
  });
  after(async () => {
    await suite.browser?.close();
    for (const s of suite.servers) s.kill();
  });
  return suite;
}
