// Debian's headless Chromium with the flags both end-to-end tests run it with; among them, nothing that reaches out
// of the machine on its own (updates, sync, background requests).
import { chromium } from "playwright-core";

export const launch = () => chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
