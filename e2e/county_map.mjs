// The public county map end to end, in Debian's headless Chromium driven by playwright-core: the province's counties
// on the grid in the five colours the seeded facts give them (scripts/seed_map.py), the table with each county's
// reasons and indices and their 14-day charts, no accessibility violation found by axe-core in either language,
// English on demand, and a screenshot under docs/. Run by scripts/e2e.sh, which starts the services, seeds the map
// and passes MAP_URL and SCREENSHOT.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { launch } from "./chromium.mjs";

const { MAP_URL, SCREENSHOT } = process.env;
const fail = (why) => { throw new Error(why); };
const step = (what) => console.log(`e2e map: ${what}`);
const axe = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const browser = await launch();
try {
  step("under the page's own content security policy: it loads and draws with no violation");
  const strict = await browser.newContext({ locale: "zh-CN" });
  const strictPage = await strict.newPage();
  const blocked = [];
  strictPage.on("console", (m) => { if (m.type() === "error") blocked.push(m.text()); });
  strictPage.on("pageerror", (e) => blocked.push(e.message));
  await strictPage.goto(MAP_URL);
  await strictPage.waitForFunction(() => document.querySelectorAll("#counties tbody tr").length === 90, null, { timeout: 20000 })
    .catch(() => fail("under its policy the page never drew the table"));
  blocked.length === 0 || fail(`the page broke its own policy: ${blocked.join("; ")}`);
  await strict.close();

  // axe-core is injected, which the page's policy forbids: the rest runs in a context that bypasses it.
  const context = await browser.newContext({ viewport: { width: 1100, height: 1200 }, locale: "zh-CN", bypassCSP: true });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  step("open the map: every county of Zhejiang on the grid and in the table");
  await page.goto(MAP_URL);
  await page.waitForFunction(() => document.querySelectorAll("#counties tbody tr").length === 90, null, { timeout: 20000 })
    .catch(() => fail("the table never listed Zhejiang's 90 counties"));
  (await page.locator("#map rect.cell").count()) === 90 || fail("the grid does not have 90 counties");
  (await page.textContent("#province")) === "浙江省" || fail("the province is not named");

  step("each county in the colour its facts give it");
  const expected = { "330110": "red", "330106": "red", "330782": "orange", "330212": "orange", "330302": "yellow",
                     "330681": "yellow", "330402": "blue", "331002": "blue", "330102": "green" };
  for (const [code, level] of Object.entries(expected)) {
    const cls = await page.getAttribute(`#map rect[data-region="${code}"]`, "class");
    cls === `cell ${level}` || fail(`${code} is drawn ${cls}, expected ${level}`);
  }
  const xihu = await page.textContent("#county-330106");
  xihu.includes("红色") && xihu.includes("近14天病例12例") && xihu.includes("近7天病例8例，多于此前7天的4例")
    || fail(`西湖区's row does not give its level and reasons: ${xihu}`);
  (await page.locator("#counties tbody tr").first().getAttribute("id")) === "county-330106"
    || (await page.locator("#counties tbody tr").first().getAttribute("id")) === "county-330110"
    || fail("the table does not start with the highest level");

  step("the indices, with a chart over the days that had data");
  const control = await page.textContent("#county-330106 td:nth-of-type(4)");
  /^\d+\.\d/.test(control) || fail(`西湖区's control index is ${control}`);
  const chart = await page.getAttribute("#county-330106 td:nth-of-type(4) svg.spark", "aria-label");
  chart && chart.split(",").length >= 7 || fail(`西湖区's control chart has too few days: ${chart}`);
  const flow = await page.textContent("#county-330782 td:nth-of-type(5)");
  /^\d+\.\d/.test(flow) || fail(`义乌市's flow index is ${flow}`);
  (await page.textContent("#county-330102 td:nth-of-type(4)")) === "无数据" || fail("a county without data shows a number");

  step("a grid square names its county and level for screen readers and links to its row");
  const label = await page.getAttribute(`#map a:has(rect[data-region="330782"])`, "aria-label");
  label === "义乌市：橙色（较高风险）" || fail(`the square of 义乌市 reads "${label}"`);
  await page.click(`#map a:has(rect[data-region="330782"])`);
  page.url().endsWith("#county-330782") || fail("the square does not link to the county's row");

  const audit = async (lang) => {
    await page.addScriptTag({ content: axe });
    const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    const found = result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.length} × ${v.nodes[0]?.target} ${v.nodes[0]?.html} ${v.nodes[0]?.failureSummary}`);
    found.length === 0 || fail(`axe-core found accessibility violations in ${lang}: ${found.join("; ")}`);
  };
  step("no accessibility violation (axe-core), in Chinese");
  await audit("Chinese");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: SCREENSHOT, fullPage: false });

  step("switch to English");
  await page.click("#lang");
  await page.waitForSelector("h2:has-text('Risk level by county')");
  (await page.textContent("#county-330106")).includes("12 cases in the last 14 days (at least 10)")
    || fail("the reasons are not in English");
  (await page.getAttribute("html", "lang")) === "en" || fail("the page's language is not English");
  await audit("English");

  errors.length === 0 || fail(`the page logged errors: ${errors.join("; ")}`);
  step(`passed; screenshot in ${SCREENSHOT}`);
} finally {
  await browser.close();
}
