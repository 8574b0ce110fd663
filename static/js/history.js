// History page: every chart and table drawn from /api/history (the same answers its CSV links give).
// The address holds the range and every choice, so a copied link shows the same view. Names come
// from the watched systems: they are only ever set with textContent (uPlot's legend does the same).
import uPlot from "../../vendor/uplot/dist/uPlot.esm.js";
import { secs } from "./celery_common.js";

const root = document.getElementById("history");
const API = root.dataset.api;
const UTC_KEY = `jobdash.history.utc.${root.dataset.user}`;
const COLORS = ["#0b5cad", "#b35900", "#116329", "#8250df", "#a40e26", "#1b7c83", "#6e7781", "#bf8700"];
const OUTCOME_COLORS = { succeeded: "#116329", failed: "#a40e26", retried: "#b35900" };
const charts = [];
const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

const $ = (id) => document.getElementById(id);
const params = () => new URLSearchParams(window.location.search);
const utc = () => localStorage.getItem(UTC_KEY) === "1";
const zoneName = () => (utc() ? "UTC" : localZone);

// -- the address is the state --------------------------------------------------------------------
function setParams(changes) {
  const p = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === "" || v === false) p.delete(k);
    else p.set(k, v === true ? "1" : v);
  }
  window.history.pushState(null, "", `${window.location.pathname}?${p}`);
  load();
}

function rangeQuery(extra = {}) {
  const p = params();
  const q = new URLSearchParams();
  for (const k of ["range", "from", "until", "compare"]) if (p.get(k)) q.set(k, p.get(k));
  for (const [k, v] of Object.entries(extra)) {
    if (Array.isArray(v)) for (const item of v) q.append(k, item);
    else q.set(k, v);
  }
  return q;
}

function url(path, extra = {}, csv = false) {
  const q = rangeQuery(extra);
  if (csv) q.set("format", "csv");
  return `${API}${path}?${q}`;
}

async function getJson(path, extra) {
  const response = await fetch(url(path, extra), { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// -- formatting ---------------------------------------------------------------------------------
function fmtTime(ts) {
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: utc() ? "UTC" : undefined, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit",
  }).format(new Date(ts * 1000));
}

function toInput(ts) {
  const d = new Date(ts * 1000);
  const parts = utc()
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes()];
  const p2 = (n) => String(n).padStart(2, "0");
  return `${parts[0]}-${p2(parts[1])}-${p2(parts[2])}T${p2(parts[3])}:${p2(parts[4])}`;
}

function fromInput(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi] = m.slice(1).map(Number);
  return (utc() ? Date.UTC(y, mo - 1, d, h, mi) : new Date(y, mo - 1, d, h, mi).getTime()) / 1000;
}

const count = (v) => (v == null ? "–" : Math.round(v).toLocaleString("en-US"));
const pct = (v) => (v == null ? "–" : `${(v * 100).toFixed(1)} %`);

// "1 h", "2 h 5 min", "10 min 3 s": two units at most, a zero second unit left out.
function duration(s) {
  if (s == null) return "–";
  const pair = (big, bigUnit, small, smallUnit) => (small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return pair(Math.floor(s / 60), "min", Math.round(s % 60), "s");
  if (s < 86400) return pair(Math.floor(s / 3600), "h", Math.round((s % 3600) / 60), "min");
  return pair(Math.floor(s / 86400), "d", Math.round((s % 86400) / 3600), "h");
}

function unitFormat(unit) {
  if (unit === "s") return secs;
  if (unit === "bytes") {
    return (v) => {
      if (v == null) return "–";
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
      return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
    };
  }
  return (v) => (v == null ? "–" : Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 }));
}

// -- charts -------------------------------------------------------------------------------------
// A readable tooltip: the bucket's time and every series' value at the cursor.
function tooltip(fmts) {
  let tip;
  return {
    hooks: {
      init: (u) => {
        tip = document.createElement("div");
        tip.className = "chart-tip";
        tip.hidden = true;
        u.over.appendChild(tip);
      },
      setCursor: (u) => {
        const i = u.cursor.idx;
        if (i == null) { tip.hidden = true; return; }
        const lines = [fmtTime(u.data[0][i])];
        u.series.forEach((s, k) => {
          if (k && s.show) lines.push(`${s.label}: ${fmts[k - 1](u.data[k][i])}`);
        });
        tip.textContent = lines.join("\n");
        tip.hidden = false;
        tip.style.left = `${Math.min(u.cursor.left + 12, u.over.clientWidth - 160)}px`;
        tip.style.top = `${Math.max(0, u.cursor.top - 20)}px`;
      },
    },
  };
}

function grid(w) {
  const xs = [];
  for (let t = w.since; t < w.until; t += w.step) xs.push(t);
  return xs;
}

// lines: [{label, color, dash, values: Map(ts -> value)}]; missing buckets are `fill` (0 for counts, null for gaps).
function draw(el, w, lines, yLabel, fmt, fill = null) {
  const old = charts.findIndex((c) => c.el === el);
  if (old >= 0) { charts[old].plot.destroy(); charts.splice(old, 1); }
  el.replaceChildren();
  // The axes are drawn on the canvas: say them to screen readers (and tests) too.
  el.dataset.what = el.dataset.what || el.getAttribute("aria-label") || "";
  el.setAttribute("aria-label", `${el.dataset.what}; y axis: ${yLabel}; x axis: time (${zoneName()})`);
  const xs = grid(w);
  const data = [xs, ...lines.map((l) => xs.map((x) => (l.values.has(x) ? l.values.get(x) : fill)))];
  const plot = new uPlot({
    width: Math.max(320, el.clientWidth || 800), height: 220,
    tzDate: utc() ? (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC") : (ts) => new Date(ts * 1e3),
    scales: { x: { time: true, min: w.since, max: w.until } },
    series: [{ label: "time", value: (_u, v) => (v == null ? "–" : fmtTime(v)) },
      ...lines.map((l, i) => ({
        label: l.label, stroke: l.color || COLORS[i % COLORS.length], width: 1.5, dash: l.dash, spanGaps: false,
        points: { show: false }, value: (_u, v) => fmt(v),
      }))],
    axes: [{ label: `time (${zoneName()})` }, { label: yLabel, values: (_u, ticks) => ticks.map(fmt), size: 80 }],
    plugins: [tooltip(lines.map(() => fmt))],
  }, data, el);
  charts.push({ el, plot });
}

// Current rows, and the previous period's moved onto the same buckets, as lines.
function linesOf(body, keyOf, valueOf, styleOf) {
  const lines = new Map();
  const add = (rows, shift, previous) => {
    for (const r of rows) {
      for (const [name, v] of valueOf(r)) {
        const label = `${previous ? "previous: " : ""}${keyOf(r, name)}`;
        if (!lines.has(label)) lines.set(label, { label, ...styleOf(keyOf(r, name), lines.size), dash: previous ? [5, 4] : undefined, values: new Map() });
        const line = lines.get(label);
        line.values.set(r.ts + shift, (line.values.get(r.ts + shift) || 0) + v);
      }
    }
  };
  add(body.rows, 0, false);
  if (body.previous) add(body.previous.rows, body.shift, true);
  return [...lines.values()];
}

function note(id, text) {
  const el = $(id);
  if (el) el.textContent = text;
}

function cell(row, text, numeric = false) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  row.appendChild(td);
}

// -- sections -----------------------------------------------------------------------------------
async function celery() {
  const select = $("celery-source");
  if (!select) return;
  const p = params();
  if (p.get("celery")) select.value = p.get("celery");
  $("celery-by").value = p.get("by") || "total";
  const by = $("celery-by").value;
  const base = `/celery/${encodeURIComponent(select.value)}`;
  $("outcomes-csv").href = url(`${base}/outcomes`, { by }, true);
  $("failure-csv").href = url(`${base}/outcomes`, { by }, true);
  $("runtimes-csv").href = url(`${base}/runtimes`, {}, true);
  $("names-csv").href = url(`${base}/runtimes`, { part: "names" }, true);
  const outcomes = await getJson(`${base}/outcomes`, { by });
  const w = outcomes.window;
  const split = by !== "total";
  const style = (key, i) => ({ color: split ? COLORS[i % COLORS.length] : OUTCOME_COLORS[key] });
  const perBucket = w.step === 60 ? "tasks / min" : w.step === 3600 ? "tasks / hour" : `tasks / ${duration(w.step)}`;
  draw($("outcomes-chart"), w, linesOf(outcomes, (r, name) => (split ? r.key : name),
    (r) => (split ? [["all", r.succeeded + r.failed + r.retried]] : [["succeeded", r.succeeded], ["failed", r.failed], ["retried", r.retried]]),
    style), perBucket, count, 0);
  const rates = linesOf(outcomes, (r) => (split ? r.key : "failure rate"),
    (r) => (r.failure_rate == null ? [] : [["rate", r.failure_rate]]), (key, i) => ({ color: split ? COLORS[i % COLORS.length] : "#a40e26" }));
  draw($("failure-chart"), w, rates, "failed / finished", pct);
  const runtimes = await getJson(`${base}/runtimes`);
  draw($("runtimes-chart"), w, linesOf(runtimes, (r, q) => `${r.name} ${q}`,
    (r) => [["p50", r.p50], ["p95", r.p95]].filter(([, v]) => v != null), (key, i) => ({ color: COLORS[Math.floor(i / 2) % COLORS.length] })),
  "runtime (seconds)", secs);
  const tbody = $("names").tBodies[0];
  tbody.replaceChildren();
  for (const n of runtimes.names) {
    const row = document.createElement("tr");
    row.dataset.name = n.name;
    cell(row, n.name);
    cell(row, count(n.succeeded), true);
    cell(row, count(n.failed), true);
    cell(row, count(n.retried), true);
    cell(row, pct(n.failure_rate), true);
    cell(row, secs(n.p50), true);
    cell(row, secs(n.p95), true);
    tbody.appendChild(row);
  }
  note("celery-note", outcomes.rows.length ? "" : "No task finished in this range.");
}

async function metrics(index) {
  const box = $("metrics");
  for (const { el, plot } of charts.filter((c) => box.contains(c.el))) { plot.destroy(); charts.splice(charts.findIndex((c) => c.el === el), 1); }
  box.replaceChildren();
  note("metrics-note", index.metrics.length ? "" : "No metric was recorded in this range.");
  await Promise.all(index.metrics.map(async (m) => {
    const [kind, name] = m.source.split("/");
    const path = `/metrics/${encodeURIComponent(kind)}/${encodeURIComponent(name)}/${encodeURIComponent(m.metric)}`;
    const head = document.createElement("h3");
    head.textContent = `${m.source} · ${m.metric}${m.unit ? ` (${m.unit})` : ""}`;
    const link = document.createElement("a");
    link.className = "csv";
    link.href = url(path, {}, true);
    link.textContent = "CSV";
    head.appendChild(link);
    const el = document.createElement("div");
    el.className = "chart";
    el.dataset.metric = `${m.source}/${m.metric}`;
    el.setAttribute("role", "img");
    el.setAttribute("aria-label", `${m.metric} of ${m.source} over time`);
    box.append(head, el);
    if (m.labels_not_drawn) {
      const more = document.createElement("p");
      more.className = "hint";
      more.textContent = `${m.labels.length} series with the highest peak in the range are drawn; ${m.labels_not_drawn} more series of this metric are not drawn (this chart's CSV has every series).`;
      box.appendChild(more);
    }
    // Only the labels the catalog draws are fetched; the CSV link above asks for none, so it has them all.
    const body = await getJson(path, m.labels_not_drawn ? { label: m.labels } : {});
    // Each series comes as arrays (ts, mean, sum, ...): as rows, linesOf draws it as every other chart.
    // A count (tasks completed since the last poll) is drawn as its sum per bucket, any other metric as its mean.
    const field = body.value || "mean";
    const asRows = (part) => ({ rows: part.series.flatMap((s) => s.ts.map((ts, i) => ({ label: s.label, ts, value: s[field][i] }))) });
    const points = { ...asRows(body), previous: body.previous && asRows(body.previous), shift: body.shift };
    const fmt = unitFormat(m.unit);
    // A series without a label is the metric's total: beside labelled ones (tasks per prefix) it is "all".
    const unlabelled = m.labels.some((l) => l) ? "all" : m.metric;
    draw(el, body.window, linesOf(points, (r) => r.label || unlabelled, (r) => [[field, r.value]], (key, i) => ({ color: COLORS[i % COLORS.length] })),
      `${m.metric}${m.unit ? ` (${m.unit})` : ""}`, fmt);
  }));
}

async function availability() {
  $("availability-csv").href = url("/availability", {}, true);
  $("incidents-csv").href = url("/availability", { part: "incidents" }, true);
  const body = await getJson("/availability");
  const box = $("availability");
  box.replaceChildren();
  for (const a of body.sources) {
    const head = document.createElement("h3");
    const share = ["up", "degraded", "down", "unknown"].map((s) => `${s} ${a.percent[s].toFixed(2)} %`).join(" · ");
    head.textContent = `${a.source}: ${share}`;
    const strip = document.createElement("div");
    strip.className = "strip";
    strip.dataset.source = a.source;
    strip.setAttribute("role", "img");
    strip.setAttribute("aria-label", `${a.source} state over the range: ${share}`);
    for (const s of a.segments) {
      const seg = document.createElement("span");
      seg.className = `s-${s.state}`;
      seg.style.flexGrow = String(s.until - s.from);
      seg.title = `${s.state} from ${fmtTime(s.from)} to ${fmtTime(s.until)} (${duration(s.until - s.from)})`;
      strip.appendChild(seg);
    }
    box.append(head, strip);
  }
  const tbody = $("incidents").tBodies[0];
  tbody.replaceChildren();
  for (const i of body.incidents) {
    const row = document.createElement("tr");
    cell(row, i.source);
    cell(row, i.state);
    cell(row, fmtTime(i.from));
    cell(row, `${duration(i.seconds)}${i.ongoing ? " (still going on)" : ""}`, true);
    cell(row, i.error || "");
    tbody.appendChild(row);
  }
  note("availability-note", body.sources.length ? (body.incidents.length ? "" : "No incident in this range.") : "No source is configured.");
}

async function summary() {
  const period = params().get("period") || "day";
  $("period").value = period;
  const extra = { period, tz: utc() ? "UTC" : localZone };
  $("summary-csv").href = url("/summary", extra, true);
  const body = await getJson("/summary", extra);
  const tbody = $("summary").tBodies[0];
  tbody.replaceChildren();
  for (const r of body.rows) {
    const row = document.createElement("tr");
    cell(row, `${period === "week" ? "week of " : ""}${r.period.slice(0, 10)}`);
    cell(row, count(r.tasks), true);
    cell(row, pct(r.failure_rate), true);
    cell(row, secs(r.p95_runtime), true);
    cell(row, count(r.peak_lag), true);
    cell(row, duration(r.downtime_seconds), true);
    tbody.appendChild(row);
  }
  note("summary-note", `Days start at midnight ${body.tz}.`);
}

// -- wiring -------------------------------------------------------------------------------------
function controls(index) {
  const p = params();
  const current = p.get("from") ? "custom" : p.get("range") || root.dataset.defaultRange;
  for (const a of $("ranges").querySelectorAll("a")) {
    if (a.dataset.range === current) a.setAttribute("aria-current", "true");
    else a.removeAttribute("aria-current");
  }
  $("compare").checked = p.get("compare") === "1";
  $("utc").checked = utc();
  $("tz-note").textContent = `Times shown in ${zoneName()}.`;
  const w = index.window;
  const res = w.stored === 60 ? "minute" : "hour";
  $("resolution").textContent = `One point per ${duration(w.step)}, from the ${res} rollups.`;
  const form = $("custom-range");
  form.elements.from.value = toInput(w.asked.from);
  form.elements.until.value = toInput(w.asked.until);
}

async function section(fn, noteId) {
  try {
    await fn();
  } catch (err) {
    note(noteId, `Could not load: ${err.message}`);
  }
}

async function load() {
  root.dataset.loaded = "";
  let index;
  try {
    index = await getJson("");
  } catch (err) {
    note("metrics-note", `Could not load the history: ${err.message}`);
    return;
  }
  controls(index);
  await Promise.all([section(celery, "celery-note"), section(() => metrics(index), "metrics-note"),
    section(availability, "availability-note"), section(summary, "summary-note")]);
  root.dataset.loaded = "1";
}

$("ranges").addEventListener("click", (e) => {
  const a = e.target.closest("a[data-range]");
  if (!a) return;
  e.preventDefault();
  setParams({ range: a.dataset.range, from: null, until: null });
});
$("custom-range").addEventListener("submit", (e) => {
  e.preventDefault();
  const since = fromInput(e.target.elements.from.value);
  const until = fromInput(e.target.elements.until.value);
  if (since == null) return;
  setParams({ range: null, from: String(since), until: until == null ? null : String(until) });
});
$("compare").addEventListener("change", (e) => setParams({ compare: e.target.checked }));
$("utc").addEventListener("change", (e) => {
  localStorage.setItem(UTC_KEY, e.target.checked ? "1" : "0");
  load();
});
$("period").addEventListener("change", (e) => setParams({ period: e.target.value === "day" ? null : e.target.value }));
if ($("celery-source")) {
  $("celery-source").addEventListener("change", (e) => setParams({ celery: e.target.value }));
  $("celery-by").addEventListener("change", (e) => setParams({ by: e.target.value === "total" ? null : e.target.value }));
}
window.addEventListener("popstate", load);
window.addEventListener("resize", () => {
  for (const { el, plot } of charts) plot.setSize({ width: Math.max(320, el.clientWidth || 800), height: 220 });
});
load();
