// Debian's Chromium, driven by playwright-core (which never downloads a browser of its own), for the
// board's tests and its screenshot.

import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Without the background-networking flags Chromium keeps dialling out on a machine with no network. */
const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Whether the browser is installed: the board's tests say so and skip without it, except in CI. */
export const hasChromium = (): boolean => existsSync(CHROMIUM);

/** A headless Chromium, new for each call. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
}
