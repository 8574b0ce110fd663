// A consumer group: its figures and partitions re-read from the API whenever the source's room
// says the group changed; a lag chart per topic over the chosen span; the offset reset, previewed
// per partition before the confirmation dialog; after a reset, Undo fills the form with the reset that
// puts the previous offsets back, to be previewed and confirmed in turn.
import uPlot from "../../vendor/uplot/dist/uPlot.esm.js";
import { subscribe } from "./live.js";
import { el, num, secs, setTime, tickTimes } from "./celery_common.js";
import { confirmDialog, postAction, showOutcome } from "./celery_actions.js";
import { api, getJson, rate, setStatus, source } from "./kafka_common.js";

const page = document.getElementById("group-page");
const group = page.dataset.group;
const groupPath = `/groups/${encodeURIComponent(group)}`;
let span = "1h";
let lastUpdate = null;
const charts = new Map(); // topic -> uPlot

function seconds(value, extrapolated) {
  if (value === null || value === undefined) return "–";
  return `${secs(value)}${extrapolated ? " ≈" : ""}`;
}

function set(scope, name, text) {
  const node = scope.querySelector(`[data-field="${name}"]`);
  if (node) node.textContent = text;
}

function showGroup(g) {
  setStatus(document.querySelector("#group-status [data-field=status]"), g.status, g.reason);
  set(document.getElementById("group-status"), "reason", g.reason || "");
  const facts = document.getElementById("facts");
  set(facts, "lag", num(g.lag));
  set(facts, "lag_seconds", seconds(g.lag_seconds, g.extrapolated));
  set(facts, "members", g.members === null || g.members === undefined ? "unknown" : String(g.members));
  set(facts, "consume_rate", rate(g.consume_rate));
  set(facts, "complete", `${Math.round(g.complete * 100)}% full`);
}

function showPartition(p) {
  const section = [...document.querySelectorAll("section.topic")].find((s) => s.dataset.topic === p.topic);
  const tr = section?.querySelector(`tr[data-partition="${p.partition}"]`);
  if (!tr) return false;
  set(tr, "committed", num(p.committed));
  set(tr, "end", num(p.end));
  set(tr, "lag", num(p.lag));
  set(tr, "lag_seconds", seconds(p.lag_seconds, p.extrapolated));
  set(tr, "reason", [p.reason, p.note].filter(Boolean).join(" · "));
  setStatus(tr.querySelector("[data-field=status]"), p.status, p.reason);
  setTime(tr.querySelector("[data-field=last_commit]"), p.last_commit);
  return true;
}

async function refresh() {
  try {
    const body = await getJson(groupPath);
    showGroup(body.group);
    // A partition the page does not show (a new topic or partition): reload to lay it out.
    if (!body.partitions.every(showPartition)) window.location.reload();
  } catch (err) {
    console.warn("kafka group:", err);
  }
}

subscribe(`kafka/${source}`, (items) => {
  if (items.has(`group:${group}`)) refresh();
}, (delta) => {
  const item = delta[`group:${group}`];
  if (item && item.updated_at !== lastUpdate) {
    lastUpdate = item.updated_at;
    refresh();
  }
});

// -- charts ------------------------------------------------------------------------------------

async function drawCharts() {
  const note = document.getElementById("chart-note");
  try {
    const body = await getJson(`${groupPath}/history?metric=lag&span=${span}`);
    let any = false;
    for (const holder of document.querySelectorAll(".lag-chart")) {
      const points = body.series[holder.dataset.topic] || [];
      any = any || points.length > 0;
      charts.get(holder.dataset.topic)?.destroy();
      const plot = new uPlot({
        width: Math.max(320, holder.clientWidth || 800), height: 160,
        scales: { x: { time: true, min: body.since, max: body.until } },
        series: [{}, { label: `lag of ${holder.dataset.topic}`, stroke: "#0b5cad", width: 1.5, spanGaps: true, points: { show: false } }],
        axes: [{}, { label: "messages", size: 70 }],
      }, [points.map((p) => p.ts), points.map((p) => p.value)], holder);
      charts.set(holder.dataset.topic, plot);
    }
    note.textContent = any ? "" : `No lag history in the last ${span} yet: it is recorded every history_interval (60 s by default).`;
  } catch (err) {
    note.textContent = `Lag history could not be read: ${err.message}`;
  }
}

for (const button of document.querySelectorAll("#spans button")) {
  button.addEventListener("click", () => {
    span = button.dataset.span;
    for (const b of document.querySelectorAll("#spans button")) b.setAttribute("aria-pressed", String(b === button));
    drawCharts();
  });
}
drawCharts();

// -- reset offsets -------------------------------------------------------------------------------

const form = document.getElementById("reset-form");
let planned = null;

function resetParams() {
  const data = new FormData(form);
  const params = { topic: data.get("topic"), to: data.get("to") };
  const value = String(data.get("value") || "").trim();
  const partitions = String(data.get("partitions") || "").trim();
  if (value) params.value = /^[+-]?\d+$/.test(value) ? Number.parseInt(value, 10) : value;
  if (partitions) params.partitions = partitions;
  return params;
}

function showPreview(plan) {
  const rows = plan.partitions.map((p) => {
    const tr = el("tr");
    tr.dataset.partition = String(p.partition);
    for (const value of [p.partition, p.current ?? "none", p.current_lag ?? "–", p.resulting, p.resulting_lag]) {
      tr.append(el("td", typeof value === "number" ? num(value) : String(value), "num"));
    }
    return tr;
  });
  document.querySelector("#preview-table tbody").replaceChildren(...rows);
  const refused = document.getElementById("preview-refused");
  refused.hidden = !plan.refused;
  refused.textContent = plan.refused || "";
  document.getElementById("reset-button").disabled = Boolean(plan.refused);
  document.getElementById("preview").hidden = false;
}

// Fill the form with a reset's params (e.g. an undo) and preview it; nothing is sent before the confirmation.
function fillForm(params) {
  const { topic, to, value, partitions } = form.elements;
  topic.value = params.topic;
  to.value = params.to;
  value.value = params.value === undefined || params.value === null ? "" : String(params.value);
  partitions.value = params.partitions || "";
  form.requestSubmit();
}

// After a reset: an Undo button for details.undo, and the partitions it cannot put back (Kafka cannot uncommit).
function offerUndo(result, details) {
  const parts = [];
  if (details.undo && typeof details.undo === "object") {
    const p = el("p", null, "undo");
    const button = el("button", "Undo", "undo-button");
    button.type = "button";
    button.id = "undo-button";
    button.addEventListener("click", () => fillForm(details.undo));
    const value = String(details.undo.value);
    const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
    p.append(button, document.createTextNode(` previews the reset that puts back the previous offsets (${shown}).`));
    parts.push(p);
  } else if (details.undo_note) {
    parts.push(el("p", `No undo: ${details.undo_note}.`, "hint undo"));
  }
  if (Array.isArray(details.undo_skipped) && details.undo_skipped.length) {
    parts.push(el("p", `Partitions ${details.undo_skipped.join(", ")} had no committed offset before; Kafka cannot `
      + "uncommit them, so Undo leaves them where this reset put them.", "hint undo-skipped"));
  }
  result.append(...parts);
}

if (form) {
  const result = document.getElementById("reset-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    planned = null;
    document.getElementById("preview").hidden = true;
    const params = resetParams();
    const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
    const response = await fetch(`${api}${groupPath}/reset-preview?${query}`, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) {
      showOutcome(result, { outcome: "refused", error: body.error || `HTTP ${response.status}` });
      return;
    }
    result.replaceChildren();
    planned = params;
    showPreview(body);
  });
  document.getElementById("reset-button").addEventListener("click", async () => {
    if (!planned) return;
    const what = `kafka.reset_offsets on ${source}: group ${group}, topic ${planned.topic}, to ${planned.to}`;
    if (!(await confirmDialog("Reset these committed offsets as previewed?", what))) {
      showOutcome(result, { outcome: "cancelled", error: "cancelled: nothing was sent" });
      return;
    }
    const body = await postAction("kafka.reset_offsets", source, group, { ...planned, confirm: true });
    showOutcome(result, body);
    if (body.ok) {
      // The preview's "current" column is now the past: hide it, so the same reset is not sent twice by mistake.
      planned = null;
      document.getElementById("preview").hidden = true;
      if (body.details) offerUndo(result, body.details);
    }
    refresh();
  });
}

tickTimes();
