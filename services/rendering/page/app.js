// The citizen's page: sign in with a one-time code, show the code in its colour (refreshed before it expires),
// the reasons and what to do, and the daily declaration. Plain JavaScript, no build step; every call goes to the
// platform's public APIs with the citizen's own access token.
"use strict";

const api = document.body.dataset;
const TEXT = {
  zh: {
    title: "健康码", signin: "登录", phone: "手机号", send: "获取验证码", otp: "验证码", login: "登录",
    stale: "状态未能更新，显示最后已知状态", refresh: "自动刷新，有效期至", reasons: "原因", todo: "转绿码需要",
    declare: "每日健康申报", region: "当前所在地区代码", temperature: "体温 (°C)", symptoms: "症状", fever: "发热",
    cough: "咳嗽", fatigue: "乏力", sore_throat: "咽痛", loss_of_smell_or_taste: "嗅觉或味觉减退",
    contact: "接触过确诊病例", commitment: "本人承诺以上信息真实", submit: "提交申报", signout: "退出登录",
    green: "绿码", yellow: "黄码", orange: "橙码", red: "红码", none: "无", sent: "验证码已发送",
    declared: "申报成功", switch: "English", failed: "出错了：",
    busy: "系统繁忙：仍显示您最近的有效码，将自动重试，无需刷新", expired: "码已过期，正在自动重试，请勿反复刷新",
  },
  en: {
    title: "Health code", signin: "Sign in", phone: "Phone", send: "Send code", otp: "One-time code", login: "Sign in",
    stale: "Status could not be refreshed: last known status shown", refresh: "Refreshes by itself; valid until",
    reasons: "Why", todo: "To turn green", declare: "Daily health declaration", region: "Region code where you are now",
    temperature: "Temperature (°C)", symptoms: "Symptoms", fever: "Fever", cough: "Cough", fatigue: "Fatigue",
    sore_throat: "Sore throat", loss_of_smell_or_taste: "Loss of smell or taste", contact: "Contact with a confirmed case",
    commitment: "I confirm the above is true", submit: "Submit", signout: "Sign out",
    green: "Green", yellow: "Yellow", orange: "Orange", red: "Red", none: "None", sent: "Code sent",
    busy: "The service is busy: your last valid code is still shown and refreshes by itself; no need to reload",
    expired: "Your code has expired; retrying by itself, no need to reload",
    declared: "Declaration received", switch: "中文", failed: "Something went wrong: ",
  },
};
let lang = localStorage.getItem("lang") === "en" ? "en" : "zh";
let token = sessionStorage.getItem("token");
let phone = "";
let refreshTimer = null;
let last = { payload: null, status: null };
// Failed refreshes in a row: the backoff grows with them (when the server names no Retry-After).
let failures = 0;
const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[lang][key] || key;

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  $("lang").textContent = t("switch");
  document.title = t("title");
  if (last.payload) showPayload(last.payload);
  if (last.status) showStatus(last.status);
}

function say(text) {
  const m = $("message");
  m.textContent = text;
  m.hidden = !text;
}

async function call(base, path, options = {}) {
  const headers = Object.assign({ "Content-Type": "application/json" }, options.headers || {});
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(base + path, Object.assign({}, options, { headers }));
  if (response.status === 401 && token) {
    signOut();
    throw new Error("401");
  }
  if (!response.ok) {
    let detail = response.status + "";
    try { const p = await response.json(); detail = p.detail || p.title || detail; } catch (_) { /* not JSON */ }
    const error = new Error(detail);
    error.status = response.status;
    error.retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw error;
  }
  return response;
}

function show(view) {
  $("signin").hidden = view !== "signin";
  $("code").hidden = view !== "code";
}

function signOut() {
  token = null;
  sessionStorage.removeItem("token");
  clearTimeout(refreshTimer);
  show("signin");
}

async function sendCode() {
  phone = $("phone").value.trim();
  try {
    await call(api.identity, "/v1/auth/otp", { method: "POST", body: JSON.stringify({ phone }) });
    say(t("sent"));
  } catch (e) { say(t("failed") + e.message); }
}

async function signIn() {
  phone = $("phone").value.trim();
  try {
    const r = await call(api.identity, "/v1/auth/token", {
      method: "POST", body: JSON.stringify({ grant_type: "otp", phone, code: $("otp").value.trim() }),
    });
    token = (await r.json()).access_token;
    sessionStorage.setItem("token", token);
    say("");
    show("code");
    await refresh();
  } catch (e) { say(t("failed") + e.message); }
}

function showPayload(p) {
  const banner = $("banner");
  banner.className = p.colour;
  $("colour-label").textContent = t(p.colour);
  $("stale").hidden = !p.stale;
  $("expires").textContent = new Date(p.expires_at).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB");
  $("expires").dateTime = p.expires_at;
}

function list(id, items) {
  const ul = $(id);
  ul.replaceChildren();
  for (const item of items.length ? items : [{ zh: t("none"), en: t("none") }]) {
    const li = document.createElement("li");
    li.textContent = item[lang];
    ul.appendChild(li);
  }
}

function showStatus(s) {
  list("reasons", s.reasons || []);
  list("requirements", s.requirements || []);
}

// When the platform sheds load (503 or 429 with Retry-After) or fails, the page waits what the server asks, or a
// growing backoff, times a random factor in [0.5, 1.5): a crowd turned away at the same moment must not come back at
// the same moment. Meanwhile it keeps showing the last code while that code is valid (it is signed and short-lived,
// so a gate can still scan it), and says so, instead of a spinner that invites pressing reload.
function backoff(error) {
  const base = error.retryAfter ? error.retryAfter * 1000 : Math.min(60000, 2000 * 2 ** (failures - 1));
  return Math.round(Math.min(120000, base) * (0.5 + Math.random()));
}

function keepLastCode() {
  const valid = last.payload && new Date(last.payload.expires_at) > Date.now();
  $("qr").hidden = !valid;
  say(t(valid ? "busy" : "expired"));
}

// The payload says when the next code is due; the SVG is fetched with the token and shown from a blob URL.
async function refresh() {
  clearTimeout(refreshTimer);
  let wait = 30000;
  try {
    const payload = await (await call("", "/v1/codes/me?format=payload")).json();
    last.payload = payload;
    showPayload(payload);
    const svg = await (await call("", "/v1/codes/me?format=svg")).blob();
    const img = $("qr");
    const old = img.src;
    img.src = URL.createObjectURL(svg);
    img.dataset.code = payload.code;
    img.alt = t(payload.colour);
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    wait = Math.max(5000, new Date(payload.refresh_after) - Date.now() + 1000);
    img.hidden = false;
    if (failures > 0) say("");
    failures = 0;
    last.status = await (await call(api.scoring, "/v1/status/me")).json();
    showStatus(last.status);
  } catch (e) {
    if (e.message !== "401") {
      failures += 1;
      wait = backoff(e);
      keepLastCode();
    }
  }
  if (token) refreshTimer = setTimeout(refresh, wait);
}

async function declare(event) {
  event.preventDefault();
  const form = event.target;
  const body = {
    current_region: form.current_region.value.trim(),
    temperature: Number(form.temperature.value),
    symptoms: [...form.querySelectorAll("input[name=symptoms]:checked")].map((c) => c.value),
    contact_with_case: form.contact_with_case.checked,
    commitment: form.commitment.checked,
  };
  try {
    await call(api.declaration, "/v1/declarations", {
      method: "POST", body: JSON.stringify(body), headers: { "Idempotency-Key": crypto.randomUUID() },
    });
    say(t("declared"));
    setTimeout(refresh, 1500);
  } catch (e) { say(t("failed") + e.message); }
}

$("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("lang", lang);
  applyLanguage();
});
$("send").addEventListener("click", sendCode);
$("login").addEventListener("click", signIn);
$("declare").addEventListener("submit", declare);
$("signout").addEventListener("click", signOut);
applyLanguage();
if (token) { show("code"); refresh(); } else { show("signin"); }
