// One service: its checks' states, outputs and last changes follow the live room in place;
// the state changes list is redrawn; the history chart reads /history for the chosen span.
// Instances or checks that appear or vanish are not drawn here: a note offers a reload.
import uPlot from "../../vendor/uplot/dist/uPlot.esm.js";
import { el, setTime, tickTimes } from "./celery_common.js";
import { bindControls, follow, getJSON, setOutput, setState, stateBadge } from "./consul_common.js";

const page = document.getElementById("service-page");
const name = page.dataset.service;
const path = `/services/${encodeURIComponent(name)}`;
const COLORS = { passing: "#116329", warning: "#b35900", critical: "#a40e26" };
let plot = null;

function showChanged() {
  document.getElementById("changed-note").hidden = false;
}

function updateCheck(check) {
  const row = page.querySelector(`tr.check[data-key="${CSS.escape(`${check.node}/${check.check_id}`)}"]`);
  if (!row) return showChanged();
  row.dataset.state = check.status;
  setState(row.querySelector('[data-field="state"]'), check.status);
  row.querySelector('[data-field="name"]').textContent = check.name;
  setOutput(row.querySelector('[data-field="output"]'), check.output);
  setTime(row.querySelector('[data-field="changed_at"]'), check.changed_at);
  const flap = row.querySelector('[data-field="flapping"]');
  flap.hidden = !check.flapping;
  flap.title = `changed state ${check.flapping || 0} times in the last hour`;
}

function updateInstance(inst) {
  const section = page.querySelector(`section.instance[data-instance="${CSS.escape(`${inst.node}/${inst.service_id}`)}"]`);
  if (!section) return showChanged();
  section.dataset.state = inst.state;
  setState(section.querySelector('h2 [data-field="state"]'), inst.state);
  const maint = section.querySelector(".maintenance");
  maint.hidden = inst.maintenance === null;
  maint.querySelector('[data-field="maintenance"]').textContent = inst.maintenance || "";
  const shown = section.querySelectorAll("tr.check").length;
  const checks = [...inst.checks, ...inst.node_checks];
  if (checks.length !== shown) showChanged();
  for (const check of checks) updateCheck(check);
}

function transitionRow(t) {
  const tr = el("tr");
  const when = el("time");
  setTime(when, t.at);
  const from = t.from_status ? stateBadge(t.from_status) : el("span", "new", "hint");
  const output = el("div", null, "check-output");
  setOutput(output, t.output);
  for (const cell of [when, el("code", t.check_id), document.createTextNode(t.node), from, stateBadge(t.to_status), output]) {
    const td = el("td");
    td.append(cell);
    tr.append(td);
  }
  return tr;
}

async function reload() {
  let service;
  try {
    service = await getJSON(path);
  } catch (err) {
    if (err.status === 404) showChanged(); // its last instance is gone
    throw err;
  }
  setState(document.querySelector('.page-head > [data-field="state"]'), service.state);
  if (service.instances.length !== page.querySelectorAll("section.instance").length) showChanged();
  for (const inst of service.instances) updateInstance(inst);
  document.querySelector("#transitions tbody").replaceChildren(...service.transitions.map(transitionRow));
  const none = document.getElementById("no-transitions");
  if (none) none.hidden = service.transitions.length > 0;
}

async function chart(span) {
  const { series } = await getJSON(`${path}/history?span=${encodeURIComponent(span)}`);
  const holder = document.getElementById("history-chart");
  const xs = [...new Set(Object.values(series).flatMap((points) => points.map((p) => p.ts)))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const states = ["passing", "warning", "critical"];
  const data = [xs, ...states.map((state) => {
    const column = new Array(xs.length).fill(null);
    for (const p of series[state]) column[index.get(p.ts)] = p.value;
    return column;
  })];
  document.getElementById("history-note").textContent = xs.length ? "" : `No history in the last ${span} yet.`;
  if (plot) plot.destroy();
  plot = new uPlot({
    width: Math.max(320, holder.clientWidth || 800), height: 200,
    series: [{}, ...states.map((state) => ({ label: state, stroke: COLORS[state], width: 1.5, spanGaps: true,
      points: { show: false } }))],
    axes: [{}, { label: "checks", size: 50 }],
  }, data, holder);
}

for (const link of document.querySelectorAll("#history .spans a")) {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    for (const other of document.querySelectorAll("#history .spans a")) other.removeAttribute("aria-current");
    link.setAttribute("aria-current", "true");
    chart(link.dataset.span).catch((err) => console.warn("consul history:", err.message));
  });
}

follow((key, item) => key === "catalog" || (item && (item.service === name || item.service === "")) || item === null,
  reload);
chart("1h").catch((err) => console.warn("consul history:", err.message));
bindControls();
tickTimes();
