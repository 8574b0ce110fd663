// Queues page: queue depth over the chosen span, and per-minute outcomes and runtime percentiles,
// drawn with uPlot from /api/celery/<source>/queues and /stats. Names come from the watched
// system: uPlot writes series labels with textContent, and so does this script.
import { align, draw as drawChart } from "./charts.js";
import { subscribe } from "./live.js";
import { api, now, secs, source } from "./celery_common.js";

const page = document.getElementById("queues-page");
// The span stays as chosen; its end follows the clock on every refresh.
const span = Number(page.dataset.until) - Number(page.dataset.since);
let until = Number(page.dataset.until);
let since = until - span;
const REFRESH_MS = 10000;
let stats = [];

function draw(el, series, data, axisLabel, valueFormat, integer = false) {
  drawChart(el, series, data, axisLabel, valueFormat, since, until, integer);
}

function note(id, text) {
  document.getElementById(id).textContent = text;
}

async function getJson(path) {
  const response = await fetch(`${api}${path}`, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

async function depth() {
  const body = await getJson(`/queues?since=${since}&until=${until}`);
  const series = body.queues.map((q) => ({ label: q.queue, points: q.series.map((p) => [p.ts, p.value]) }));
  if (!series.some((s) => s.points.length)) {
    note("depth-note", "No depth sample in this span yet.");
    return;
  }
  note("depth-note", "");
  draw(document.getElementById("depth-chart"), series, align(series), "messages", (v) => Math.round(v).toLocaleString("en-US"), true);
}

function outcomes() {
  const name = document.getElementById("stats-name").value;
  const rows = name ? stats.filter((r) => r.key === name) : stats;
  const perMinute = new Map();
  for (const r of rows) {
    const m = perMinute.get(r.ts) || { succeeded: 0, failed: 0 };
    m.succeeded += r.succeeded;
    m.failed += r.failed;
    perMinute.set(r.ts, m);
  }
  const minutes = [...perMinute.keys()].sort((a, b) => a - b);
  if (!minutes.length) {
    note("stats-note", "No task finished in this span.");
    return;
  }
  note("stats-note", name ? "" : "Runtime percentiles are per task name: choose one to see them.");
  const outcomeSeries = [{ label: "succeeded", color: "#116329" }, { label: "failed", color: "#a40e26" }];
  draw(document.getElementById("outcome-chart"), outcomeSeries,
    [minutes, ...outcomeSeries.map((s) => minutes.map((t) => perMinute.get(t)[s.label]))],
    "tasks / min", (v) => Math.round(v).toLocaleString("en-US"), true);
  const runtimeEl = document.getElementById("runtime-chart");
  if (!name) {
    runtimeEl.hidden = true;
    return;
  }
  runtimeEl.hidden = false;
  const series = [
    { label: "p50", color: "#0b5cad", points: rows.filter((r) => r.runtime_p50 != null).map((r) => [r.ts, r.runtime_p50]) },
    { label: "p95", color: "#b35900", points: rows.filter((r) => r.runtime_p95 != null).map((r) => [r.ts, r.runtime_p95]) },
  ];
  draw(runtimeEl, series, align(series), "runtime", secs);
}

async function load() {
  try {
    await depth();
  } catch (err) {
    note("depth-note", `Could not load the depth history: ${err.message}`);
  }
  try {
    stats = (await getJson(`/stats?by=name&since=${since}&until=${until}`)).stats;
    outcomes();
  } catch (err) {
    note("stats-note", `Could not load the statistics: ${err.message}`);
  }
}

document.getElementById("stats-name").addEventListener("change", outcomes);
load();

// Live: the room's activity shows on the connection indicator; the charts are re-read on a
// steady beat (depth is sampled every poll, outcomes every minute), not on every event.
subscribe(`celery/${source}`, () => {}, () => {});
setInterval(() => {
  until = now();
  since = until - span;
  load();
}, REFRESH_MS);
