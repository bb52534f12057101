// The citizen's page end to end, in Debian's headless Chromium driven by playwright-core: sign in with the one-time
// code, see the QR code (decoded independently with zbarimg back to the code the page holds) and its colour,
// declare a fever, watch the code turn yellow with its reason, switch to English, save a screenshot under docs/, and
// when the platform sheds load, keep showing the last valid code and back off as Retry-After says.
// Run by scripts/e2e.sh, which starts the services and passes PAGE_URL, REDIS_URL, PREFIX, PHONE, SCREENSHOT.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch } from "./chromium.mjs";

const { PAGE_URL, REDIS_URL, PREFIX, PHONE, SCREENSHOT } = process.env;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fail = (why) => { throw new Error(why); };
const step = (what) => console.log(`e2e: ${what}`);

const browser = await launch();
const scratch = mkdtempSync(join(tmpdir(), "hc-e2e-"));
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, locale: "zh-CN" });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  step("open the page and ask for a one-time code");
  await page.goto(PAGE_URL);
  await page.fill("#phone", PHONE);
  await page.click("#send");
  await page.waitForSelector("#message:not([hidden])");
  let code = "";
  for (let i = 0; i < 50 && !code; i++) {
    code = execFileSync("redis-cli", ["-u", REDIS_URL, "GET", `${PREFIX}sms:dev:${PHONE}`]).toString().trim();
    if (!code) await sleep(100);
  }
  code || fail("no one-time code was sent");

  step("sign in and see the code");
  await page.fill("#otp", code);
  await page.click("#login");
  await page.waitForSelector("#code:not([hidden])");
  await page.waitForFunction(() => {
    const img = document.querySelector("#qr");
    return img.dataset.code?.startsWith("HCQ1:") && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 20000 });
  (await page.textContent("#colour-label")) === "绿码" || fail("a new citizen is not green");
  (await page.isVisible("#stale")) && fail("a fresh code is marked stale");

  step("the QR code on screen decodes (zbarimg) to the code the page holds");
  const shot = join(scratch, "qr.png");
  await page.locator("#qr").screenshot({ path: shot });
  const onScreen = execFileSync("zbarimg", ["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", shot]).toString().trim();
  const held = await page.getAttribute("#qr", "data-code");
  onScreen === held || fail(`the QR code on screen says ${onScreen}, the page holds ${held}`);

  step("declare a fever, and the code turns yellow with its reason");
  await page.check("input[name=symptoms][value=fever]");
  await page.fill("input[name=temperature]", "38.2");
  await page.check("input[name=commitment]");
  await page.click("#declare button[type=submit]");
  await page.waitForSelector("#message:has-text('申报成功')");
  let colour = "";
  for (let i = 0; i < 40 && colour !== "黄码"; i++) {
    await sleep(500);
    if (i % 4 === 3) await page.reload();
    colour = await page.textContent("#colour-label");
  }
  colour === "黄码" || fail(`after declaring a fever the code is ${colour}`);
  await page.waitForFunction(() => document.querySelector("#reasons li")?.textContent.includes("发热"), null, { timeout: 10000 })
    .catch(() => fail("the reason does not mention the fever"));
  await page.waitForFunction(() => document.querySelector("#qr").complete);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  step("switch to English");
  await page.click("#lang");
  (await page.textContent("#colour-label")) === "Yellow" || fail("the colour is not in English");
  await page.waitForSelector("h2:has-text('Daily health declaration')");

  errors.length === 0 || fail(`the page logged errors: ${errors.join("; ")}`);
  step("shed by the platform, the page keeps its last valid code and backs off as Retry-After says, with jitter");
  const shown = await page.getAttribute("#qr", "data-code");
  const asked = [];
  await page.route("**/v1/codes/me*", (route) => {
    asked.push(Date.now());
    route.fulfill({ status: 503, headers: { "Retry-After": "2", "Content-Type": "application/problem+json" },
                    body: JSON.stringify({ title: "Service Unavailable", status: 503 }) });
  });
  const shedAt = Date.now();
  await page.evaluate(() => refresh()); // what the page's own timer does when the code is due
  await page.waitForSelector("#message:has-text('last valid code')");
  (await page.isVisible("#qr")) || fail("the last valid code is hidden while the platform sheds load");
  (await page.getAttribute("#qr", "data-code")) === shown || fail("the code on screen changed while shedding");
  await sleep(6500);
  // Retry-After 2 s times [0.5, 1.5): at most one try per second, never at once; an impatient page would try ~100.
  asked.length >= 2 && asked.length <= 7 || fail(`the page asked ${asked.length} times in 6.5 s while shed`);
  const gaps = asked.slice(1).map((t, i) => t - asked[i]);
  gaps.every((g) => g >= 900 && g <= 3200) || fail(`the page retried after ${gaps.join(", ")} ms (Retry-After: 2)`);
  // Without jitter every gap would be Retry-After itself (2,000 ms, give or take the timer); with it, all of them
  // within 25 ms of that is a chance of 1 in 1,600 for two gaps. (Comparing the gaps with each other in 50 ms buckets
  // failed one run in 40, when two jittered gaps fell in the same bucket.)
  gaps.some((g) => Math.abs(g - 2000) > 25) || gaps.length < 2 || fail(`retries not jittered: ${gaps}`);
  asked[0] - shedAt < 1000 || fail("the first try came late");
  await page.unroute("**/v1/codes/me*");
  await page.evaluate(() => refresh());
  await page.waitForSelector("#message", { state: "hidden" });
  (await page.isVisible("#qr")) || fail("the code is not shown again once the platform answers");
  // Chromium logs each 503 answer as a console error; nothing else may appear.
  const unexpected = errors.filter((e) => !e.includes("503"));
  unexpected.length === 0 || fail(`the page logged errors: ${unexpected.join("; ")}`);

  step(`passed; screenshot in ${SCREENSHOT}`);
} finally {
  await browser.close();
  rmSync(scratch, { recursive: true, force: true });
}
