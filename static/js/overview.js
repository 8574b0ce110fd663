// Overview: keep the server-rendered source cards up to date from the "overview" room.
// Everything in an item comes from a watched system: it is written with textContent only.
import { subscribe } from "./live.js";
import { refreshSoon } from "./overview_attention.js";

const STATES = { up: "●", degraded: "▲", down: "✕", unknown: "?" };
const ERROR_INLINE_MAX = 100; // dashboard/views/pages.py agrees
const cardsEl = document.getElementById("cards");
const template = document.getElementById("card-template");
const cards = new Map(); // key -> <article>
// Server clock minus browser clock, so that ages do not depend on the browser's clock.
const skew = Number(document.body.dataset.serverNow) - Date.now() / 1000 || 0;
const numberFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2, minimumFractionDigits: 2 });

for (const el of cardsEl.querySelectorAll("article.card")) cards.set(el.dataset.key, el);

function ago(ts, now = Date.now() / 1000 + skew) {
  if (ts === null || ts === undefined || ts === "") return "never";
  const age = Math.max(0, Math.floor(now - Number(ts)));
  if (age < 60) return `${age} s ago`;
  if (age < 3600) return `${Math.floor(age / 60)} min ago`;
  if (age < 86400) return `${Math.floor(age / 3600)} h ago`;
  return `${Math.floor(age / 86400)} d ago`;
}

// A headline value, short: 1,203 / 0.50 / 51.2M (dashboard/views/pages.py agrees).
function formatNumber(value) {
  if (value === null) return "–";
  if (typeof value === "object") return JSON.stringify(value);
  if (typeof value !== "number") return String(value);
  if (Math.abs(value) >= 100000) {
    for (const [unit, scale] of [["T", 1e12], ["G", 1e9], ["M", 1e6], ["k", 1e3]]) {
      if (Math.abs(value) < scale) continue;
      const short = value / scale;
      return short.toFixed(Math.abs(short) >= 100 ? 0 : Math.abs(short) >= 10 ? 1 : 2) + unit;
    }
  }
  return Number.isInteger(value) ? value.toLocaleString("en-US") : numberFormat.format(value);
}

function iso(ts) {
  if (ts === null || ts === undefined) return "";
  const date = new Date(ts * 1000);
  return Number.isNaN(date.getTime()) ? `impossible time ${ts}` : date.toISOString().replace(/\.\d+Z$/, "Z");
}

function setTime(el, ts) {
  el.dataset.ts = ts ?? "";
  el.dateTime = iso(ts);
  el.title = iso(ts);
  el.textContent = ago(ts);
}

function field(card, name) {
  return card.querySelector(`[data-field="${name}"]`);
}

function fillHeadline(el, headline) {
  const json = JSON.stringify(headline || {});
  if (el.dataset.json === json) return; // unchanged: leave the DOM (and any selection) alone
  el.dataset.json = json;
  el.replaceChildren(...Object.entries(headline || {}).map(([name, value]) => {
    const row = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = formatNumber(value);
    dd.title = String(value);
    row.append(dt, dd);
    return row;
  }));
}

// An error followed by a success is history, not the source's state: it says so.
function fillError(el, text, at, lastSuccess) {
  el.hidden = !text;
  const now = at != null && (lastSuccess == null || at >= lastSuccess);
  el.dataset.current = String(now);
  el.querySelector(".error-label").textContent = now ? "last error" : "earlier error, recovered since";
  setTime(field(el, "last_error_at"), at);
  const current = el.querySelector(".error-text");
  if ((current ? current.textContent : null) === (text || null)) return; // keep a <details> as the user left it
  const old = el.querySelector("details, pre.error-text");
  const wasOpen = Boolean(old && old.open);
  if (old) old.remove();
  if (!text) return;
  const pre = document.createElement("pre");
  pre.className = "error-text";
  pre.textContent = text;
  if (text.length <= ERROR_INLINE_MAX && !text.includes("\n")) {
    el.append(pre);
    return;
  }
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  const first = text.split("\n")[0];
  summary.textContent = first.length > ERROR_INLINE_MAX ? first.slice(0, ERROR_INLINE_MAX - 1) + "…" : first;
  details.open = wasOpen;
  details.append(summary, pre);
  el.append(details);
}

function fillCard(card, item) {
  const state = item.state in STATES ? item.state : "unknown";
  card.dataset.state = state;
  field(card, "kind").textContent = item.kind;
  field(card, "name").textContent = item.name;
  field(card, "name").title = item.name;
  const stateEl = field(card, "state");
  stateEl.querySelector(".state-symbol").textContent = STATES[state];
  stateEl.querySelector(".state-label").textContent = state;
  fillHeadline(field(card, "headline"), item.headline);
  setTime(field(card, "last_success_at"), item.last_success_at);
  setTime(field(card, "updated_at"), item.updated_at);
  field(card, "last_poll_ms").textContent = item.last_poll_ms == null ? "–" : `${item.last_poll_ms} ms`;
  fillError(field(card, "last_error"), item.last_error, item.last_error_at, item.last_success_at);
}

function upsert(key, item) {
  let card = cards.get(key);
  if (!card) {
    card = template.content.firstElementChild.cloneNode(true);
    card.dataset.key = key;
    cards.set(key, card);
    cardsEl.append(card);
  }
  fillCard(card, item);
}

function remove(key) {
  const card = cards.get(key);
  if (card) card.remove();
  cards.delete(key);
}

function summarize() {
  const counts = { total: cards.size, up: 0, degraded: 0, down: 0, unknown: 0 };
  for (const card of cards.values()) counts[card.dataset.state] += 1;
  for (const [name, count] of Object.entries(counts)) {
    document.querySelector(`#summary [data-count="${name}"]`).textContent = count;
  }
  document.getElementById("empty").hidden = cards.size > 0;
  document.title = (counts.down ? `(${counts.down} down) ` : "") + "Overview · jobdash";
}

subscribe(
  "overview",
  (items) => {
    for (const key of [...cards.keys()]) if (!items.has(key)) remove(key);
    for (const [key, item] of items) upsert(key, item);
    summarize();
    refreshSoon();
  },
  (delta) => {
    for (const [key, item] of Object.entries(delta)) {
      if (item === null) remove(key);
      else upsert(key, item);
    }
    summarize();
    refreshSoon();
  },
);

setInterval(() => {
  for (const el of document.querySelectorAll("time[data-ts]")) el.textContent = ago(el.dataset.ts);
}, 1000);
