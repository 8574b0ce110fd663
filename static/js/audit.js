// The audit page, live (admins only: dashboard/audit_room.py): each new row is put in place by its
// time, if it matches the filter in force (the table's data-* attributes, as the server applied it).
// Rows already shown are known by data-key, so a snapshot after a reconnect only fills the gap.
import { subscribe } from "./live.js";

const table = document.getElementById("audit");
const body = table.querySelector("tbody");
const template = document.getElementById("audit-row");
const filter = table.dataset;
const inlineMax = Number(filter.paramsInlineMax);
const shown = new Set([...body.querySelectorAll("tr[data-key]")].map((tr) => tr.dataset.key));

function matches(row) {
  return (!filter.user || row.user === filter.user) && (!filter.action || row.action === filter.action)
    && (!filter.outcome || row.outcome === filter.outcome)
    && (filter.since === "" || row.ts >= Number(filter.since)) && (filter.until === "" || row.ts < Number(filter.until));
}

// As templates/audit.html: long parameters show their start and open in place to the whole text.
function params(text) {
  const pre = document.createElement("pre");
  pre.className = "params";
  pre.textContent = text;
  if (text.length <= inlineMax) return pre;
  const details = document.createElement("details");
  details.className = "params-long";
  const summary = document.createElement("summary");
  summary.textContent = `${text.slice(0, inlineMax - 1)}…`;
  details.append(summary, pre);
  return details;
}

function render(key, row) {
  const tr = template.content.firstElementChild.cloneNode(true);
  Object.assign(tr.dataset, { key, ts: row.ts, outcome: row.outcome });
  const cell = (name) => tr.querySelector(`[data-field="${name}"]`);
  for (const name of ["user", "role", "via", "action", "source", "target", "outcome", "error"]) {
    cell(name).textContent = row[name];
  }
  cell("time").textContent = row.time;
  cell("time").dateTime = row.time;
  cell("params").append(params(row.params_text));
  return tr;
}

function add(items) {
  for (const [key, row] of items) {
    if (!row || shown.has(key) || !matches(row)) continue;
    shown.add(key);
    const later = [...body.querySelectorAll("tr[data-ts]")].find((tr) => Number(tr.dataset.ts) < row.ts);
    body.insertBefore(render(key, row), later || null);
    document.getElementById("no-rows")?.remove();
  }
}

subscribe("audit", (items) => add(items), (items) => add(Object.entries(items)));
