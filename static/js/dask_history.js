// Dask history from /api/dask/<source>/history: tasks finished and erred (total and per prefix,
// from the rollups), duration percentiles per prefix, cluster memory and worker count.
import { align, draw } from "./charts.js";
import { el, secs } from "./celery_common.js";
import { bytes } from "./dask_format.js";

const root = document.getElementById("dask");
const span = document.getElementById("history-page").dataset.span;
const api = `${root.dataset.root}/api/dask/${encodeURIComponent(root.dataset.source)}`;
const count = (v) => Math.round(v).toLocaleString("en-US");
let body = null;

function note(id, text) {
  document.getElementById(id).textContent = text;
}

function points(series) {
  return (series || []).map((p) => [p.ts, p.value]);
}

function chart(id, noteId, series, axis, format) {
  if (!series.some((s) => s.points.length)) {
    note(noteId, "Nothing recorded in this span yet.");
    return;
  }
  note(noteId, "");
  draw(document.getElementById(id), series, align(series), axis, format, body.since, body.until);
}

function showPrefix() {
  const name = document.getElementById("prefix-choice").value;
  const per = (metric) => points(body.per_prefix[metric]?.[name]);
  const unit = body.count_step === 60 ? "tasks / min" : "tasks / h";
  chart("prefix-chart", "prefix-note", [
    { label: `${name} finished`, color: "#116329", points: per("tasks_completed") },
    { label: `${name} erred`, color: "#a40e26", points: per("tasks_failed") },
  ], unit, count);
  const minutes = body.durations.find((p) => p.prefix === name)?.minutes || [];
  const durations = [
    { label: "p50", color: "#0b5cad", points: minutes.filter((m) => m.p50 != null).map((m) => [m.ts, m.p50]) },
    { label: "p95", color: "#b35900", points: minutes.filter((m) => m.p95 != null).map((m) => [m.ts, m.p95]) },
  ];
  const durationEl = document.getElementById("duration-chart");
  durationEl.hidden = !durations[0].points.length;
  if (!durationEl.hidden) draw(durationEl, durations, align(durations), "duration", secs, body.since, body.until);
}

function prefixTable() {
  const rows = body.durations.map((p) => {
    const tr = el("tr");
    tr.dataset.prefix = p.prefix;
    tr.append(el("th", p.prefix), el("td", count(p.completed), "num"), el("td", count(p.erred), "num"),
      el("td", secs(p.mean), "num"), el("td", secs(p.p50), "num"), el("td", secs(p.p95), "num"));
    return tr;
  });
  document.querySelector("#prefix-table tbody").replaceChildren(...rows);
  const names = [...new Set([...Object.keys(body.per_prefix.tasks_completed || {}),
    ...Object.keys(body.per_prefix.tasks_failed || {}), ...body.durations.map((p) => p.prefix)])].sort();
  const select = document.getElementById("prefix-choice");
  select.replaceChildren(...names.map((n) => el("option", n)));
  if (names.length) showPrefix();
  else note("prefix-note", "No task finished in this span.");
}

async function load() {
  const response = await fetch(`${api}/history?span=${encodeURIComponent(span)}`, { credentials: "same-origin" });
  body = await response.json();
  if (!response.ok) {
    note("tasks-note", `Could not load the history: ${body.error || response.status}`);
    return;
  }
  note("count-unit", body.count_step === 60 ? "per minute" : "per hour");
  const unit = body.count_step === 60 ? "tasks / min" : "tasks / h";
  chart("tasks-chart", "tasks-note", [
    { label: "finished", color: "#116329", points: points(body.series.tasks_completed) },
    { label: "erred", color: "#a40e26", points: points(body.series.tasks_failed) },
  ], unit, count);
  prefixTable();
  chart("memory-chart", "memory-note", [
    { label: "used", points: points(body.series.memory_bytes) },
    { label: "managed", points: points(body.series.memory_managed) },
    { label: "spilled", points: points(body.series.memory_spilled) },
  ], "memory", bytes);
  chart("workers-chart", "workers-note", [{ label: "workers", points: points(body.series.workers) }], "workers", count);
}

document.getElementById("prefix-choice").addEventListener("change", showPrefix);
load();
