/**
 * Debian's Chromium (playwright-core, no downloaded browser) on the bridgetower/web test page, with the Hub
 * imitation behind a CORS front, for the web tests and bench/web.ts. Everything closes with `close()`.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launchChromium } from "./chromium.js";
export { CHROMIUM, skipWithoutChromium } from "./chromium.js";
import { startHubServer, type HubServer } from "./hub-server.js";
import { startCorsFront, startPageServer, type CorsFront, type PageServer } from "./web-server.js";

export const REPO = "BridgeTower/e2e-fullvocab";

export interface WebEnv {
  browser: Browser;
  hub: HubServer;
  front: CorsFront;
  pages: PageServer;
  /** A fresh browser context (its own Cache Storage) on the test page, the bundle loaded. */
  open(options?: { url?: string }): Promise<{ context: BrowserContext; page: Page; console: string[] }>;
  /** Requests for weights the Hub imitation has answered (the resolve URL and its CDN redirect). */
  weightRequests(): number;
  close(): Promise<void>;
}

export async function startWebEnv(options: { models?: Record<string, string>; images?: string[]; isolated?: boolean } = {}): Promise<WebEnv> {
  const hub = await startHubServer();
  const front = await startCorsFront(hub.url);
  const pages = await startPageServer(options);
  const browser = await launchChromium();
  const contexts: BrowserContext[] = [];
  return {
    browser, hub, front, pages,
    async open({ url = pages.url } = {}) {
      const context = await browser.newContext();
      contexts.push(context);
      const page = await context.newPage();
      page.setDefaultTimeout(60_000);
      const console: string[] = [];
      page.on("console", (m) => console.push(`${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => console.push(`pageerror: ${e.message}`));
      await page.goto(url);
      await page.waitForFunction(() => (globalThis as { btReady?: boolean }).btReady === true);
      return { context, page, console };
    },
    weightRequests: () => hub.requests.filter((r) => /model\.safetensors|^\/cdn\//.test(r.path)).length,
    async close() {
      for (const c of contexts) await c.close().catch(() => {});
      await browser.close().catch(() => {});
      await Promise.all([pages.close(), front.close(), hub.close()]);
    },
  };
}

/**
 * Runs `fn` in the page with the bundle as its first argument (`bt`); a rejection comes back as
 * `{ error: { name, message, ours } }` (`ours`: an instance of the bundle's BridgeTowerError).
 */
export async function inPage<A, R>(page: Page, fn: (bt: any, arg: A) => Promise<R>, arg: A): Promise<R | { error: { name: string; message: string; ours: boolean } }> {
  return page.evaluate(
    async ({ src, arg }) => {
      const bt = (globalThis as any).bt;
      try {
        return await (0, eval)(`(${src})`)(bt, arg);
      } catch (e: any) {
        return { error: { name: e?.name ?? "Error", message: String(e?.message ?? e), ours: e instanceof bt.BridgeTowerError } };
      }
    },
    { src: fn.toString(), arg },
  );
}
