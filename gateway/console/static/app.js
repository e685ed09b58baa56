// CellSafe console: the page's whole logic, plain JavaScript, no build step.
// Data: GET /api/state once, then the server-sent events of /api/stream ("state", "event").
// Actions: POST with the session's CSRF token in X-CSRF-Token (see /api/openapi.json).
"use strict";

const $ = (id) => document.getElementById(id);
const HIGH = new Set(["high", "critical"]);
let text = {};
let me = null;
let state = null;
let stream = null;
let audio = null;
let bannerSeen = new Set();
let signatures = {};
let chart = null;
let chartPoint = "";
let pending = null;     // the action waiting for the password (POST /api/reauth)
let lastActivity = 0;   // Date.now() of the last gesture reported to the gateway
let countTimer = null;  // the sign-in page's poll of /api/alarm-count
let lastCount = 0;

function T(key) { return text[key] || key; }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (me) headers["X-CSRF-Token"] = me.csrf;
  }
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  return { status: response.status, data };
}

async function loadText(lang) {
  const { data } = await api("GET", "/api/i18n" + (lang ? "?lang=" + lang : ""));
  text = data.text || {};
  document.documentElement.lang = data.lang === "zh" ? "zh-CN" : "en";
  $("lang").value = data.lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = T(node.dataset.t);
  document.title = T("title");
}

function toast(message, bad) {
  const box = $("toast");
  box.textContent = message;
  box.className = bad ? "toast bad" : "toast";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

// -- sound: a WebAudio beep, started by the first click (browsers need a gesture) ------

function unlockAudio() {
  if (audio || !window.AudioContext) return;
  audio = new AudioContext();
}

function beep() {
  if (!audio) return;
  if (audio.state === "suspended") audio.resume();
  window.cellsafeBeeps = (window.cellsafeBeeps || 0) + 1;  // for tests: the sound was started
  const start = audio.currentTime;
  for (let i = 0; i < 3; i++) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "square";
    osc.frequency.value = 880;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(audio.destination);
    osc.start(start + i * 0.35);
    osc.stop(start + i * 0.35 + 0.2);
  }
}

// -- views -----------------------------------------------------------------------------

function show(view) {
  const name = me ? (view || "overview") : "signin-view";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== name;
  for (const link of document.querySelectorAll("#nav a"))
    link.classList.toggle("active", link.getAttribute("href") === "#" + name);
  $("nav").hidden = !me;
  if (name === "events") loadEvents();
  if (name === "trends") loadTrendPoints();
}

function route() { show(location.hash.slice(1)); }

function fmt(value, unit) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return (Math.round(value * 100) / 100) + (unit ? " " + unit : "");
  return String(value);
}

function renderTiles() {
  const tiles = $("tiles");
  tiles.replaceChildren(...state.zones.map((zone) => el("div", {
      class: "tile" + (zone.worst ? " p-" + zone.worst : "") + (zone.unacked ? " unacked" : ""),
      "data-zone": zone.name, "data-worst": zone.worst || "normal",
    },
    el("h3", {}, zone.name),
    el("p", { class: "desc" }, zone.description),
    el("div", { class: "readings" }, zone.readings.map((r) =>
      el("div", { class: "reading" + (r.quality === "good" ? "" : " bad"), "data-kind": r.kind },
        el("span", {}, T(r.kind) + (r.name !== r.kind ? " · " + r.name : "")),
        el("b", {}, fmt(r.value, r.unit))))),
    el("p", {}, zone.worst ? T("p_" + zone.worst) + ": " + zone.alarms.join(", ") : T("normal")),
  )));
}

// An id may wrap after its dots (a <wbr> each; the text stays the same): a narrow screen
// then keeps the action buttons of a row in view.
function breakable(id) {
  return String(id).split(".").flatMap((part, i) => (i ? [".", el("wbr"), part] : [part]));
}

function may(command) { return me && me.allowed.includes(command); }

async function act(path, body, command) {
  const { status, data } = await api("POST", path, body);
  if (status === 401 && data.reason === "reauth") return askPassword({ path, body, command });
  if (status === 401) return signedOut();
  if (data.ok) toast(T("done") + ": " + command);
  else toast(T("refused") + ": " + (data.error || status), true);
}

function alarmActions(alarm) {
  const base = "/api/alarms/" + encodeURIComponent(alarm.id) + "/";
  const reason = el("input", { placeholder: T("reason"), "aria-label": T("reason"), name: "reason" });
  const minutes = el("input", { class: "num", type: "number", min: "1", max: "480", value: "60",
    "aria-label": T("minutes"), name: "minutes" });
  const buttons = [];
  if (alarm.state === "unack" || alarm.state === "rtn_unack")
    buttons.push(el("button", { class: "act", "data-action": "ack", disabled: !may("ack"),
      onclick: () => act(base + "ack", {}, T("ack")) }, T("ack")));
  if (alarm.state === "latched")
    buttons.push(el("button", { "data-action": "reset", disabled: !may("reset"),
      onclick: () => act(base + "reset", {}, T("reset")) }, T("reset")));
  if (alarm.state === "shelved")
    buttons.push(el("button", { "data-action": "unshelve", disabled: !may("unshelve"),
      onclick: () => act(base + "unshelve", {}, T("unshelve")) }, T("unshelve")));
  else
    buttons.push(reason, minutes, el("button", { "data-action": "shelve", disabled: !may("shelve"),
      onclick: () => {
        if (!reason.value.trim()) return toast(T("reason_needed"), true);
        act(base + "shelve", { reason: reason.value, duration: Number(minutes.value) * 60 }, T("shelve"));
      } }, T("shelve")));
  return el("div", { class: "actions" }, buttons);
}

function changed(name, value) {
  const signature = JSON.stringify(value);
  if (signatures[name] === signature) return false;
  signatures[name] = signature;
  return true;
}

function renderAlarms() {
  if (!changed("alarms", [state.alarms, text.ack, me && me.role])) return;
  const list = $("alarm-list");
  if (!state.alarms.length) return list.replaceChildren(el("p", { class: "card" }, T("no_alarms")));
  list.replaceChildren(el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, ["alarm", "priority", "state", "value", "message", ""].map((k) =>
      el("th", {}, k ? T(k) : "")))),
    el("tbody", {}, state.alarms.map((a) => el("tr", {
        class: "p-" + a.priority, "data-alarm": a.id, "data-state": a.state },
      el("td", {}, breakable(a.id)), el("td", { class: "nowrap" }, T("p_" + a.priority)),
      el("td", { class: "state" }, T("s_" + a.state)), el("td", {}, fmt(a.value)),
      el("td", {}, a.message), el("td", {}, alarmActions(a))))))));
}

function renderRelays() {
  const relays = state.relays.map((r) => ({ ...r,
    override: r.override && { ...r.override, remaining: Math.ceil(r.override.remaining / 60) } }));
  if (!changed("relays", [relays, text.on, me && me.role])) return;
  $("relay-list").replaceChildren(el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, ["relay", "state", "override", ""].map((k) => el("th", {}, k ? T(k) : "")))),
    el("tbody", {}, relays.map((r) => {
      const base = "/api/relays/" + encodeURIComponent(r.name) + "/";
      const reason = el("input", { placeholder: T("reason"), "aria-label": T("reason") });
      const minutes = el("input", { class: "num", type: "number", min: "1", max: "480", value: "30",
        "aria-label": T("minutes") });
      const target = el("select", {}, el("option", { value: "on" }, T("on")), el("option", { value: "off" }, T("off")));
      const override = () => {
        if (!reason.value.trim()) return toast(T("reason_needed"), true);
        act(base + "override", { state: target.value, reason: reason.value,
          duration: Number(minutes.value) * 60 }, T("override"));
      };
      return el("tr", { "data-relay": r.name },
        el("td", {}, r.name),
        el("td", {}, T(r.state) + (r.faulted ? " · " + T("faulted") : "")),
        el("td", {}, r.override ? T(r.override.state) + " · " + r.override.remaining + " " + T("minutes")
          + " · " + T("by") + " " + (r.override.by.name || "") + (r.override.by.reason ? " · " + r.override.by.reason : "") : "—"),
        el("td", {}, el("div", { class: "actions" },
          r.override ? el("button", { disabled: !may("end_override"),
            onclick: () => act(base + "end-override", { reason: "" }, T("end_override")) }, T("end_override"))
          : [target, reason, minutes, el("button", { class: "act", disabled: !may("override"), onclick: override }, T("override"))])));
    })))));
}

function renderMatrix() {
  if (!changed("matrix", [state.matrix, text.row, me && me.role])) return;
  $("matrix-list").replaceChildren(el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, ["row", "state", "votes", ""].map((k) => el("th", {}, k ? T(k) : "")))),
    el("tbody", {}, state.matrix.map((row) => {
      const base = "/api/matrix/" + encodeURIComponent(row.name) + "/";
      const words = ["tripped", "latched", "aborted"].filter((k) => row[k]).map(T);
      return el("tr", { "data-row": row.name, class: row.tripped ? "p-high" : "" },
        el("td", {}, row.name), el("td", {}, words.join(", ") || T("normal")),
        el("td", {}, row.votes.join(", ")),
        el("td", {}, el("div", { class: "actions" },
          row.tripped && !row.aborted ? el("button", { disabled: !may("abort"),
            onclick: () => act(base + "abort", { reason: "" }, T("abort")) }, T("abort")) : null,
          row.aborted ? el("button", { disabled: !may("resume"),
            onclick: () => act(base + "resume", { reason: "" }, T("resume")) }, T("resume")) : null,
          row.latched ? el("button", { disabled: !may("reset_row"),
            onclick: () => act(base + "reset", { reason: "" }, T("reset_row")) }, T("reset_row")) : null)));
    })))));
}

function renderHealth() {
  const now = Date.now() / 1000;
  $("health-list").replaceChildren(...state.health.map((d) => el("div", { class: "card", "data-device": d.device },
    el("h3", {}, d.device),
    el("p", {}, T("latency") + ": " + fmt(d.latency_ms) + " · " + T("polls") + ": " + d.polls
      + " · " + T("failures") + ": " + d.failures + " · " + T("bad_polls") + ": " + d.bad_polls),
    el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, ["point", "value", "quality", "last_good"].map((k) => el("th", {}, T(k))))),
      el("tbody", {}, d.points.map((p) => el("tr", {},
        el("td", {}, p.point), el("td", {}, fmt(p.value, p.unit)),
        el("td", { class: p.quality === "good" ? "" : "error" }, p.quality + (p.reason ? " · " + p.reason : "")),
        el("td", {}, p.last_good_ts ? Math.max(0, Math.round(now - p.last_good_ts)) + " " + T("ago") : T("never")))))))),
  ));
}

function renderBanner() {
  const high = state.alarms.filter((a) => HIGH.has(a.priority) && a.state === "unack");
  const banner = $("banner");
  banner.hidden = high.length === 0;
  $("banner-alarms").textContent = high.map((a) => a.id).join(", ");
  if (high.some((a) => !bannerSeen.has(a.id))) beep();
  bannerSeen = new Set(high.map((a) => a.id));
}

function render() {
  if (!state || !me) return;
  $("site").textContent = T("title") + " · " + state.site + "/" + state.gateway;
  renderBanner();
  renderTiles();
  renderAlarms();
  renderRelays();
  renderMatrix();
  renderHealth();
  if (chart && chartPoint) extendChart();
}

// -- event log -------------------------------------------------------------------------

async function loadEvents() {
  if (!me) return;
  const form = new FormData($("event-filter"));
  const query = new URLSearchParams();
  for (const [k, v] of form.entries()) if (v) query.set(k, v);
  const { status, data } = await api("GET", "/api/events?" + query);
  if (status === 401) return signedOut();
  const options = (select, values) => {
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, T("all")),
      ...values.map((v) => el("option", { value: v, selected: v === chosen }, v)));
  };
  options($("event-categories"), [...new Set(data.types.map((t) => t.split(".")[0]))]);
  options($("event-types"), data.types);
  $("event-list").replaceChildren(el("div", { class: "scroll" }, el("table", {},
    el("thead", {}, el("tr", {}, ["seq", "time", "type", "detail"].map((k) => el("th", {}, T(k))))),
    el("tbody", {}, data.events.map((e) => {
      const { event_id, seq, type, ts, site, gateway, ...body } = e;
      return el("tr", { "data-seq": seq }, el("td", {}, seq), el("td", {}, new Date(ts).toLocaleString()),
        el("td", {}, type), el("td", {}, el("pre", {}, JSON.stringify(body))));
    })))));
}

// -- trends ----------------------------------------------------------------------------

async function loadTrendPoints() {
  const { data } = await api("GET", "/api/trends");
  const select = $("trend-point");
  const current = select.value || chartPoint;
  select.replaceChildren(...(data.points || []).map((p) =>
    el("option", { value: p.point, selected: p.point === current }, p.point + (p.unit ? " (" + p.unit + ")" : ""))));
  if (select.value) drawChart(select.value);
}

async function drawChart(point) {
  const { status, data } = await api("GET", "/api/trends/" + encodeURIComponent(point));
  if (status !== 200 || !window.uPlot) return;
  chartPoint = point;
  const box = $("chart");
  box.replaceChildren();
  const width = Math.max(300, box.clientWidth || 800);
  chart = new uPlot({
    width, height: 320, title: point,
    series: [{}, { label: data.unit || point, stroke: "#1565c0", width: 2, spanGaps: false }],
    scales: { x: { time: true } },
  }, [data.ts, data.values], box);
}

function extendChart() {
  for (const device of state.health) for (const p of device.points) {
    if (p.point !== chartPoint || !p.ts) continue;
    const [xs, ys] = chart.data;
    if (xs.length && p.ts <= xs[xs.length - 1]) return;
    chart.setData([[...xs, p.ts].slice(-2000), [...ys, p.value].slice(-2000)]);
  }
}

// -- session and stream ----------------------------------------------------------------

// A gesture on the page keeps the window for actions open (at most one report in 30 s);
// once the window has lapsed only the password reopens it (docs/console.md).
function reportActivity() {
  if (!me || Date.now() - lastActivity < 30000) return;
  lastActivity = Date.now();
  api("POST", "/api/activity", {});
}

// The action stays pending, the page and its live stream stay as they are.
function askPassword(action) {
  pending = action;
  $("reauth-user").textContent = me.name;
  $("reauth-action").textContent = action.command + " · "
    + decodeURIComponent(action.path.split("/")[3] || "");
  $("reauth-error").hidden = true;
  $("reauth").hidden = false;
  $("reauth-form").elements.password.focus();
}

function closeReauth() {
  pending = null;
  $("reauth-form").reset();
  $("reauth").hidden = true;
}

async function reauth(e) {
  e.preventDefault();
  const password = $("reauth-form").elements.password.value;
  const { status, data } = await api("POST", "/api/reauth", { password });
  if (status === 200) {
    const action = pending;
    closeReauth();
    me = { ...me, ...data };
    lastActivity = Date.now();
    if (action) act(action.path, action.body, action.command);
  } else if (status === 401 && data.reason !== "password") {
    closeReauth();
    signedOut();
  } else {
    $("reauth-error").textContent = T(status === 429 ? "signin_throttled" : "reauth_failed");
    $("reauth-error").hidden = false;
  }
}

// Signed out, the page still tells how many high-priority alarms are up (a count, no more).
async function pollAlarmCount() {
  clearTimeout(countTimer);
  if (me) return;
  const { status, data } = await api("GET", "/api/alarm-count");
  if (me) return;
  const n = status === 200 ? data.high : 0;
  const box = $("signin-alarms");
  box.hidden = !n;
  box.textContent = T("signin_alarms").replace("{n}", n);
  if (n > lastCount) beep();
  lastCount = n;
  countTimer = setTimeout(pollAlarmCount, 5000);
}

function connect() {
  if (stream) stream.close();
  stream = new EventSource("/api/stream");
  stream.addEventListener("state", (m) => { state = JSON.parse(m.data); $("offline").hidden = true; render(); });
  stream.addEventListener("event", () => {
    if (location.hash === "#events") { clearTimeout(connect.timer); connect.timer = setTimeout(loadEvents, 300); }
  });
  stream.onerror = async () => {
    $("offline").hidden = false;
    const { status } = await api("GET", "/api/me");
    if (status === 401) signedOut();
    // A refused stream (503: too many pages live) is closed for good: try again later.
    else if (stream && stream.readyState === EventSource.CLOSED) setTimeout(() => { if (me) connect(); }, 5000);
  };
}

function signedOut() {
  me = null;
  if (stream) stream.close();
  stream = null;
  $("banner").hidden = true;
  $("user").textContent = "";
  $("signout").hidden = true;
  closeReauth();
  show();
  lastCount = 0;
  pollAlarmCount();
}

function signedIn(user) {
  me = user;
  clearTimeout(countTimer);
  $("signin-alarms").hidden = true;
  lastActivity = 0;
  signatures = {};
  $("user").textContent = me.name + " · " + T(me.role);
  $("user").dataset.role = me.role;
  $("signout").hidden = false;
  connect();
  route();
}

async function init() {
  document.addEventListener("click", unlockAudio, { once: false });
  document.addEventListener("pointerdown", reportActivity);
  document.addEventListener("keydown", reportActivity);
  $("reauth-form").addEventListener("submit", reauth);
  $("reauth-cancel").addEventListener("click", closeReauth);
  await loadText("");
  $("lang").addEventListener("change", async (e) => {
    if (me) await api("POST", "/api/language", { lang: e.target.value });
    await loadText(e.target.value);
    signatures = {};
    if (me) { $("user").textContent = me.name + " · " + T(me.role); render(); route(); }
  });
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    unlockAudio();
    const form = new FormData(e.target);
    const { status, data } = await api("POST", "/api/signin",
      { name: form.get("name"), password: form.get("password") });
    $("signin-error").hidden = status === 200;
    $("signin-error").textContent = T(status === 429 ? "signin_throttled" : "signin_failed");
    if (status === 200) {
      e.target.reset();
      await loadText("");
      signedIn(data);
    }
  });
  $("signout").addEventListener("click", async () => { await api("POST", "/api/signout", {}); signedOut(); });
  $("banner-go").addEventListener("click", () => { location.hash = "#alarms"; });
  $("event-filter").addEventListener("input", () => loadEvents());
  $("trend-point").addEventListener("change", (e) => drawChart(e.target.value));
  window.addEventListener("hashchange", route);
  const { status, data } = await api("GET", "/api/me");
  if (status === 200) { await loadText(""); signedIn(data); } else signedOut();
}

init();
