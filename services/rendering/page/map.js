// The public county map (Zhejiang's "one map, one code, one index"): the province's counties on a schematic grid
// in their five colours, and a table of every county's level, reasons and control and flow indices with a small
// chart of each over 14 days. Plain JavaScript, no build step; it reads only scoring's public GET /v1/map.
"use strict";

const api = document.body.dataset;
const LEVELS = ["red", "orange", "yellow", "blue", "green"];
const TEXT = {
  zh: {
    title: "五色图 · 一图一码一指数", map: "县（市、区）风险等级", table: "各县等级与指数",
    grid: "示意网格：每格一个县（市、区），按所属地级市分组、大致按地理方位排列；不是行政边界。",
    explain: "控制指数：场所查验、隔离人员每日申报、密接及时检测的比例；流动指数：人均场所核验、跨县流动、绿码比例。0–100，越高越好。折线为近14天。",
    caption: "按等级从高到低排列", county: "县（市、区）", city: "地级市", level: "等级", reasons: "原因",
    control: "控制指数", flow: "流动指数", updated: "数据版本", rules: "公布的规则", switch: "English",
    red: "红色（高风险）", orange: "橙色（较高风险）", yellow: "黄色（中风险）", blue: "蓝色（较低风险）", green: "绿色（低风险）",
    none: "无", nodata: "无数据", failed: "无法载入地图，稍后自动重试", legend: "图例", overridden: "（人工调整）",
    days: "近14天", mapsummary: (n, c) => `共${n}个县（市、区）：${c}`, count: (l, n) => `${l} ${n}个`,
  },
  en: {
    title: "Five-colour map · one map, one code, one index", map: "Risk level by county", table: "Levels and indices by county",
    grid: "Schematic grid: one square per county, grouped by prefecture-level city and placed roughly by direction; not administrative boundaries.",
    explain: "Control index: shares of venue checks, daily declarations in quarantine, and contacts tested in time. Flow index: venue check-ins per resident, travel between counties, share green. 0–100, higher is better. Lines show 14 days.",
    caption: "Highest level first", county: "County", city: "City", level: "Level", reasons: "Reasons",
    control: "Control index", flow: "Flow index", updated: "Data version", rules: "Published rules", switch: "中文",
    red: "Red (high)", orange: "Orange (elevated)", yellow: "Yellow (medium)", blue: "Blue (guarded)", green: "Green (low)",
    none: "None", nodata: "no data", failed: "The map could not be loaded; retrying by itself", legend: "Legend", overridden: " (set by an official)",
    days: "last 14 days", mapsummary: (n, c) => `${n} counties: ${c}`, count: (l, n) => `${l}: ${n}`,
  },
};
// Where each prefecture-level city's block sits on the grid, roughly by direction (Zhejiang); other provinces'
// cities are laid out in code order.
const PLACES = {
  "330500": [1, 0], "330400": [2, 0], "330100": [1, 1], "330600": [2, 1], "330200": [3, 1], "330900": [4, 1],
  "330800": [0, 2], "330700": [1, 2], "331000": [2, 2], "331100": [1, 3], "330300": [2, 3],
};
const CELL = 34, PER_ROW = 4, GAP = 18, LABEL = 16;
let lang = localStorage.getItem("lang") === "en" ? "en" : "zh";
let map = null;
const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[lang][key];
const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text) {
  const e = name.startsWith("svg:") ? document.createElementNS(SVG, name.slice(4)) : document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function reasonText(county) {
  const reasons = county.reasons.map((r) => r[lang]);
  return reasons.length ? reasons : [t("none")];
}

function levelName(county) {
  return t(county.level) + (county.overridden ? t("overridden") : "");
}

function drawMap(counties) {
  const cities = new Map();
  for (const c of counties) {
    if (!cities.has(c.prefecture)) cities.set(c.prefecture, { name: c.prefecture_name, counties: [] });
    cities.get(c.prefecture).counties.push(c);
  }
  const blockW = PER_ROW * CELL, rows = (city) => Math.ceil(city.counties.length / PER_ROW);
  let i = 0;
  const blocks = [...cities.entries()].map(([code, city]) => {
    const at = PLACES[code] || [i % 5, Math.floor(i / 5)];
    i += 1;
    return { code, city, col: at[0], row: at[1] };
  });
  // Each row of blocks is as tall as its tallest block.
  const tops = [0];
  for (let r = 0; r <= Math.max(...blocks.map((b) => b.row)); r++) {
    const tallest = Math.max(0, ...blocks.filter((b) => b.row === r).map((b) => rows(b.city)));
    tops.push(tops[r] + LABEL + tallest * CELL + GAP);
  }
  const placed = blocks.map((b) => ({ ...b, x: b.col * (blockW + GAP), y: tops[b.row] }));
  const width = Math.max(...placed.map((p) => p.x)) + blockW, height = tops[tops.length - 1] - GAP;
  const counts = LEVELS.map((l) => [l, counties.filter((c) => c.level === l).length]).filter(([, n]) => n > 0);
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "group",
    "aria-label": t("mapsummary")(counties.length, counts.map(([l, n]) => t("count")(t(l), n)).join("，")) });
  for (const p of placed) {
    svg.append(el("svg:text", { x: p.x, y: p.y + 12, class: "city" }, p.city.name));
    p.city.counties.forEach((c, k) => {
      const x = p.x + (k % PER_ROW) * CELL, y = p.y + LABEL + Math.floor(k / PER_ROW) * CELL;
      const a = el("svg:a", { href: `#county-${c.region}`, "aria-label": `${c.name}：${levelName(c)}` });
      a.append(el("svg:rect", { x, y, width: CELL, height: CELL, rx: 4, class: `cell ${c.level}`, "data-region": c.region }));
      // The square's name is its aria-label; the short name drawn over it (outside the link) is decoration.
      svg.append(a, el("svg:text", { x: x + CELL / 2, y: y + CELL / 2 + 4, "text-anchor": "middle",
        class: `on-${c.level}`, "aria-hidden": "true" }, c.name.slice(0, 2)));
    });
  }
  $("map").replaceChildren(svg);
  const legend = $("legend");
  legend.setAttribute("aria-label", t("legend"));
  legend.replaceChildren(...LEVELS.slice().reverse().map((l) => {
    const li = el("li");
    li.append(el("span", { class: `swatch ${l}`, "aria-hidden": "true" }), `${t(l)} · ${counties.filter((c) => c.level === l).length}`);
    return li;
  }));
}

function spark(days, key) {
  const points = days.filter((d) => d[key] !== null && d[key] !== undefined);
  const latest = points.length ? points[points.length - 1][key] : null;
  const cell = el("td");
  cell.append(latest === null ? t("nodata") : latest.toFixed(1));
  if (points.length > 1) {
    const svg = el("svg:svg", { class: "spark", viewBox: "0 0 84 24", role: "img",
      "aria-label": `${t(key)} ${t("days")}: ${points.map((d) => d[key].toFixed(0)).join(", ")}` });
    const step = 80 / (points.length - 1);
    svg.append(el("svg:polyline", { points: points.map((d, k) => `${2 + k * step},${22 - d[key] / 5}`).join(" ") }));
    cell.append(svg);
  }
  return cell;
}

function drawTable(counties) {
  const rank = (c) => LEVELS.indexOf(c.level);
  const rows = counties.slice().sort((a, b) => rank(a) - rank(b) || a.region.localeCompare(b.region)).map((c) => {
    const tr = el("tr", { id: `county-${c.region}` });
    tr.append(el("th", { scope: "row" }, c.name), el("td", {}, c.prefecture_name));
    const level = el("td", { class: "level" });
    level.append(el("span", { class: `swatch ${c.level}`, "aria-hidden": "true" }), levelName(c));
    const reasons = el("td");
    const ul = el("ul");
    ul.append(...reasonText(c).map((r) => el("li", {}, r)));
    reasons.append(ul);
    tr.append(level, reasons, spark(c.indices, "control"), spark(c.indices, "flow"));
    return tr;
  });
  document.querySelector("#counties tbody").replaceChildren(...rows);
}

function draw() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-t]").forEach((e) => { e.textContent = t(e.dataset.t); });
  $("lang").textContent = t("switch");
  $("lang").setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
  document.title = t("title");
  if (!map) return;
  $("province").textContent = map.name;
  $("generation").textContent = map.generation;
  drawMap(map.counties);
  drawTable(map.counties);
}

async function load() {
  try {
    const response = await fetch(`${api.scoring}/v1/map?province=${encodeURIComponent(api.province)}`);
    if (!response.ok) throw new Error(String(response.status));
    const fresh = await response.json();
    $("message").textContent = "";
    // Unchanged: keep the page as it is (a redraw would lose the reader's place and focus).
    if (map && fresh.generation === map.generation) return;
    map = fresh;
    draw();
  } catch (err) {
    $("message").textContent = t("failed");
  }
}

$("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("lang", lang);
  draw();
});
draw();
load();
// The map changes at most once a minute; the browser revalidates with the ETag.
setInterval(load, 60000);
