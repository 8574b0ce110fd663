// The Dask cluster page, live: the source's state, cluster totals, workers (those that left
// stay, marked gone), progress bars per task prefix and the newest erred tasks. Rows are
// clones of the page's <template>s (templates/dask/cluster.html), filled with textContent only.
import { subscribe } from "./live.js";
import { el, num, setTime, shorten, tickTimes } from "./celery_common.js";
import { bindActions } from "./celery_actions.js";
import { bytes } from "./dask_format.js";

const root = document.getElementById("dask");
const source = root.dataset.source;
const base = root.dataset.root;
const liveErred = document.getElementById("erred-section").dataset.live === "true";
const SEGMENTS = ["memory", "released", "erred", "processing", "waiting"];
// State -> [symbol, label] (dashboard/views/dask_pages.py ERRED_STATES agrees).
const ERRED_STATES = { erred: ["✕", "erred"], retried: ["↻", "retried"], memory: ["✓", "in memory"], forgotten: ["?", "forgotten"] };

function field(node, name) {
  return node.querySelector(`[data-field="${name}"]`);
}

function set(node, name, text) {
  const target = field(node, name);
  if (target) target.textContent = text;
}

function rowsOf(tableId, attr) {
  const map = new Map();
  for (const row of document.querySelectorAll(`#${tableId} tbody tr`)) map.set(row.dataset[attr], row);
  return map;
}

const workers = rowsOf("workers", "address");
const prefixes = rowsOf("prefixes", "prefix");
const erred = rowsOf("erred", "key");

function clone(templateId) {
  return document.getElementById(templateId).content.firstElementChild.cloneNode(true);
}

// Action forms inside a cloned row aim at the row's own target, and are bound once.
function aim(row, target) {
  for (const form of row.querySelectorAll("form.action")) form.dataset.target = target;
  bindActions({}, row);
}

// -- the source's state ------------------------------------------------------------------------
function showStatus(item) {
  if (!item) return;
  const box = document.getElementById("source-state");
  const state = ["up", "degraded", "down"].includes(item.state) ? item.state : "unknown";
  box.dataset.state = state;
  box.querySelector(".state-label").textContent = state;
  const error = field(box, "last_error");
  error.hidden = !(state === "down" || state === "degraded");
  error.textContent = `: ${item.last_error || ""}`;
  setTime(field(box, "updated_at"), item.updated_at);
}

// -- cluster ---------------------------------------------------------------------------------
function showCluster(c) {
  const box = document.getElementById("cluster");
  for (const node of box.querySelectorAll("[data-field]")) {
    const name = node.dataset.field;
    if (!(name in c)) continue;
    if (node.tagName === "TIME") setTime(node, c[name]);
    else node.textContent = "bytes" in node.dataset ? bytes(c[name]) : name === "address" || name === "version" ? c[name] || "–" : num(c[name]);
  }
  if (Array.isArray(c.present_workers)) {
    const present = new Set(c.present_workers);
    for (const [address, row] of workers) {
      if (!present.has(address) && row.dataset.gone !== "true") markGone(row, c.updated_at);
    }
  }
  if (Array.isArray(c.present_prefixes)) {
    const present = new Set(c.present_prefixes);
    for (const [name, row] of prefixes) {
      if (!present.has(name)) {
        row.remove();
        prefixes.delete(name);
      }
    }
  }
  countWorkers();
}

// -- workers ---------------------------------------------------------------------------------
function markGone(row, at) {
  row.dataset.gone = "true";
  const status = field(row, "status");
  status.dataset.status = "gone";
  status.textContent = "gone";
  field(row, "gone_at_text").hidden = false;
  setTime(field(row, "gone_at"), at);
  for (const name of ["executing", "ready", "in_memory"]) set(row, name, "0");
  for (const form of row.querySelectorAll("form.action")) form.remove();
}

function memoryBar(row, w) {
  const limit = Number(w.memory_limit) || Number(w.memory) || 1;
  for (const part of ["managed", "unmanaged", "spilled"]) {
    const seg = field(row, `bar_${part}`);
    if (seg) seg.style.width = `${Math.min(100, (100 * Number(w[part] || 0)) / limit).toFixed(1)}%`;
  }
}

function showWorker(w) {
  let row = workers.get(w.address);
  if (!row) {
    row = clone("worker-row");
    row.dataset.address = w.address;
    aim(row, w.address);
    workers.set(w.address, row);
    document.querySelector("#workers tbody").prepend(row);
  }
  if (w.gone) {
    markGone(row, w.gone_at);
  } else {
    row.dataset.gone = "false";
    const status = field(row, "status");
    status.dataset.status = w.status || "";
    status.textContent = w.status || "?";
    field(row, "gone_at_text").hidden = true;
  }
  set(row, "name", w.name ?? "");
  set(row, "address", w.address);
  set(row, "nthreads", num(w.nthreads));
  for (const name of ["memory", "memory_limit", "managed", "unmanaged", "spilled"]) set(row, name, bytes(w[name]));
  set(row, "cpu", `${Number(w.cpu || 0).toFixed(0)} %`);
  for (const name of ["executing", "ready", "in_memory"]) set(row, name, num(w[name]));
  setTime(field(row, "last_seen"), w.last_seen);
  memoryBar(row, w);
}

function countWorkers() {
  const rows = [...workers.values()];
  document.getElementById("worker-count").textContent = String(rows.filter((r) => r.dataset.gone !== "true").length);
  document.getElementById("gone-count").textContent = String(rows.filter((r) => r.dataset.gone === "true").length);
  document.getElementById("no-workers").hidden = rows.length > 0;
}

// -- progress per prefix -------------------------------------------------------------------------
function drawBar(row) {
  const segs = [...row.querySelectorAll("[data-seg]")];
  const total = segs.reduce((sum, s) => sum + Number(s.dataset.n || 0), 0) || 1;
  for (const s of segs) s.style.width = `${((100 * Number(s.dataset.n || 0)) / total).toFixed(2)}%`;
}

function showPrefix(p) {
  let row = prefixes.get(p.prefix);
  if (!row) {
    row = clone("prefix-row");
    row.dataset.prefix = p.prefix;
    set(row, "prefix", p.prefix);
    aim(row, p.prefix);
    prefixes.set(p.prefix, row);
    const body = document.querySelector("#prefixes tbody");
    const after = [...body.children].find((r) => r.dataset.prefix > p.prefix);
    body.insertBefore(row, after || null);
  }
  for (const s of SEGMENTS) {
    row.querySelector(`[data-seg="${s}"]`).dataset.n = String(p[s] ?? 0);
    set(row, s, num(p[s] ?? 0));
  }
  drawBar(row);
  document.getElementById("no-prefixes").hidden = prefixes.size > 0;
}

// -- erred tasks ---------------------------------------------------------------------------------
function setErredState(row, state) {
  const [symbol, label] = ERRED_STATES[state] || ["?", String(state)];
  row.dataset.state = state;
  const badge = field(row, "state");
  badge.dataset.state = state;
  badge.querySelector(".state-symbol").textContent = symbol;
  badge.querySelector(".state-label").textContent = label;
}

function showErred(t) {
  let row = erred.get(t.key);
  if (!row) {
    if (!liveErred || !t.prefix) return; // older pages stay as they were read
    row = clone("erred-row");
    row.dataset.key = t.key;
    const link = field(row, "key");
    link.textContent = t.key;
    link.href = `${base}/dask/${encodeURIComponent(source)}/erred/${encodeURIComponent(t.key)}`;
    const box = row.querySelector("input.pick-box");
    if (box) {
      box.value = t.key;
      box.setAttribute("aria-label", `select ${t.key}`);
    }
    aim(row, t.key);
    erred.set(t.key, row);
    row.classList.add("fresh");
    document.querySelector("#erred tbody").prepend(row);
    document.getElementById("no-erred").hidden = true;
    const total = document.getElementById("erred-total");
    if (/^\d+$/.test(total.textContent)) total.textContent = String(Number(total.textContent) + 1);
  }
  if (t.prefix !== undefined) set(row, "prefix", t.prefix);
  if (t.worker !== undefined) set(row, "worker", t.worker || "");
  if (t.exception !== undefined) set(row, "exception", shorten(t.exception || "", 160));
  if (t.traceback !== undefined) {
    set(row, "traceback", t.traceback || "");
    row.querySelector("details.traceback").hidden = !t.traceback;
  }
  if (t.erred_at !== undefined) setTime(field(row, "erred_at"), t.erred_at);
  if (t.state) setErredState(row, t.state);
}

// -- wiring ----------------------------------------------------------------------------------
function apply(entries) {
  for (const [key, item] of entries) {
    if (!item) continue;
    if (key === "cluster") showCluster(item);
    else if (key.startsWith("worker:")) showWorker(item);
    else if (key.startsWith("prefix:")) showPrefix(item);
    else if (key.startsWith("erred:")) showErred(item);
  }
  countWorkers();
}

for (const row of prefixes.values()) drawBar(row);

subscribe("overview", (items) => showStatus(items.get(`dask/${source}`)),
  (delta) => showStatus(delta[`dask/${source}`]));
subscribe(`dask/${source}`, (items) => apply(items.entries()), (delta) => apply(Object.entries(delta)));

function selectedKeys() {
  return [...document.querySelectorAll("#erred input.pick-box:checked")].map((b) => b.value);
}

document.getElementById("erred").addEventListener("change", () => {
  const count = document.getElementById("selected-count");
  if (count) count.textContent = String(selectedKeys().length);
});

bindActions({
  "dask.retry_selected": (request) => {
    const keys = selectedKeys();
    if (!keys.length) throw new Error("select erred tasks first");
    request.params.keys = keys;
    request.confirmText = `Retry ${keys.length} erred task${keys.length === 1 ? "" : "s"}?`;
  },
});
tickTimes();
