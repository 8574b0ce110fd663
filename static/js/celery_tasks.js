// Tasks page: page one follows the room `celery/<source>`. A delta updates a shown row in place
// (state, times) and puts a new matching task at its place in the order; where the page cannot
// judge the filter itself (text searches), it takes the row out and re-reads page one, so the list
// never shows a row that does not match. Keeps the user's selection, highlights new rows; and the
// retry controls. Rows are built from <template id="task-row"> with textContent.
import { rereader, subscribe } from "./live.js";
import { api, iso, secs, setState, setTime, shorten, source, taskUrl, tickTimes } from "./celery_common.js";
import { bindActions } from "./celery_actions.js";

const table = document.getElementById("tasks");
const tbody = table.querySelector("tbody");
const template = document.getElementById("task-row");
const selected = new Set(); // uuids the user ticked, kept across refreshes
const rows = new Map(); // uuid -> <tr>

for (const tr of tbody.querySelectorAll("tr[data-uuid]")) rows.set(tr.dataset.uuid, tr);

function field(tr, name) {
  return tr.querySelector(`[data-field="${name}"]`);
}

function argsText(task) {
  const args = task.args || "";
  const kwargs = task.kwargs || "";
  return kwargs && kwargs !== "{}" ? `${args} ${kwargs}`.trim() : args;
}

function fillRow(tr, task) {
  tr.dataset.uuid = task.uuid;
  tr.dataset.state = task.state;
  tr.dataset.firstSeen = task.first_seen_at ?? "";
  setState(field(tr, "state"), task.state);
  field(tr, "name").textContent = task.name || "?";
  field(tr, "name").title = task.name || "";
  const link = field(tr, "uuid");
  link.textContent = task.uuid;
  link.href = taskUrl(task.uuid);
  setTime(field(tr, "seen"), task.received_at ?? task.first_seen_at);
  field(tr, "runtime").textContent = secs(task.runtime);
  field(tr, "worker").textContent = task.worker || "";
  field(tr, "queue").textContent = task.queue || "";
  const text = argsText(task);
  field(tr, "args").textContent = shorten(text);
  field(tr, "args").title = shorten(text, 1000);
  const box = tr.querySelector("input.pick-box");
  if (box) {
    box.value = task.uuid;
    box.setAttribute("aria-label", `select task ${task.uuid}`);
    box.checked = selected.has(task.uuid);
  }
}

function showTotal(total, capped) {
  const el = document.getElementById("total");
  el.dataset.total = total;
  el.dataset.capped = String(capped);
  el.textContent = total.toLocaleString("en-US") + (capped ? "+" : "");
}

function showError(message) {
  const el = document.getElementById("search-error");
  el.textContent = message || "";
  el.hidden = !message;
}

const FRESH_MS = 2500; // as long as the fresh-row animation in app.css

// Highlight each new row for FRESH_MS on its own clock. Moving rows (render) restarts their CSS
// animation, so every highlighted row's animation is resumed where its clock stands.
function fadeFresh(fresh) {
  const now = performance.now();
  for (const tr of fresh) {
    tr.dataset.freshAt = String(now);
    tr.classList.add("fresh");
    setTimeout(() => tr.classList.remove("fresh"), FRESH_MS);
  }
  for (const tr of tbody.querySelectorAll("tr.fresh")) {
    tr.style.setProperty("--fresh-delay", `${Number(tr.dataset.freshAt) - now}ms`);
  }
}

function render(page) {
  const next = [];
  const fresh = [];
  for (const task of page.tasks) {
    let tr = rows.get(task.uuid);
    if (!tr) {
      tr = template.content.firstElementChild.cloneNode(true);
      fresh.push(tr);
    }
    fillRow(tr, task);
    next.push([task.uuid, tr]);
  }
  rows.clear();
  for (const [uuid, tr] of next) rows.set(uuid, tr);
  // The same <tr> elements move; a ticked box or a focused link stays as the user left it.
  tbody.replaceChildren(...next.map(([, tr]) => tr));
  fadeFresh(fresh);
  showTotal(page.total, page.total_capped);
  document.getElementById("no-tasks").hidden = page.tasks.length > 0;
  syncPickAll();
}

// -- live: deltas applied to rows; page one re-read when the filter or the order requires it -------
const query = new URLSearchParams(table.dataset.apiQuery);
const PAGE = Number(query.get("limit")) || 50;
const REFRESH_MS = 1000; // re-reads: the first at once, then at most one a second
let sinceFetch = null; // uuid -> task: deltas that arrived while a re-read was on its way

// Whether `task` matches the page's filter: true, false, or null when only the server can tell
// (text matching follows the database's collation). A shown row matched when it was read, so for
// it only what can change since is judged again: its state, worker, result and exception.
const CHANGING = new Set(["state", "worker", "result", "exception"]);

function judge(task, shown) {
  const verdicts = [];
  const state = query.get("state");
  if (state) verdicts.push(task.state === state.toUpperCase());
  if (query.get("worker")) verdicts.push(null);
  if (!shown) {
    if (query.get("queue")) verdicts.push(task.queue === query.get("queue"));
    if (query.get("since")) verdicts.push(task.first_seen_at >= Number(query.get("since")));
    if (query.get("until")) verdicts.push(task.first_seen_at <= Number(query.get("until")));
    if (query.get("name")) verdicts.push(null);
  }
  for (const term of (query.get("q") || "").split(/\s+/).filter(Boolean)) {
    const [word, value] = term.split(/:(.*)/s);
    const key = value === undefined ? "" : word.toLowerCase();
    if (key === "state") verdicts.push(task.state === value.toUpperCase());
    else if (!shown || CHANGING.has(key)) verdicts.push(null);
  }
  if (verdicts.includes(false)) return false;
  return verdicts.includes(null) ? null : true;
}

// Page order: newest first_seen_at first, then uuid descending (the server's keyset order).
function before(task, tr) {
  const seen = Number(tr.dataset.firstSeen);
  return task.first_seen_at > seen || (task.first_seen_at === seen && task.uuid > tr.dataset.uuid);
}

function changeTotal(by) {
  const el = document.getElementById("total");
  if (el.dataset.capped !== "true") showTotal(Number(el.dataset.total) + by, false);
}

function remove(uuid) {
  rows.get(uuid).remove();
  rows.delete(uuid);
  changeTotal(-1);
}

// Put a task that is not shown at its place in page one, if it belongs there.
function insert(task) {
  const shown = [...rows.values()];
  const next = shown.find((tr) => before(task, tr));
  if (!next && shown.length >= PAGE) return;
  const tr = template.content.firstElementChild.cloneNode(true);
  fillRow(tr, task);
  tbody.insertBefore(tr, next || null);
  rows.set(task.uuid, tr);
  fadeFresh([tr]);
  changeTotal(1);
  if (rows.size > PAGE) {
    const last = tbody.lastElementChild;
    rows.delete(last.dataset.uuid);
    last.remove();
  }
  document.getElementById("no-tasks").hidden = true;
}

// Apply one task's latest stored row; true when page one must be re-read to be right.
function applyTask(task) {
  const tr = rows.get(task.uuid);
  const verdict = judge(task, Boolean(tr));
  if (tr) {
    if (verdict === true) {
      fillRow(tr, task);
      return false;
    }
    remove(task.uuid); // it no longer matches, or the server must say: never show it meanwhile
    return true;
  }
  if (verdict === true && task.first_seen_at != null) insert(task);
  return verdict === null;
}

function applyDelta(delta) {
  let reread = false;
  for (const [key, task] of Object.entries(delta)) {
    if (!key.startsWith("task:") || !task) continue;
    if (sinceFetch) sinceFetch.set(task.uuid, task);
    reread = applyTask(task) || reread;
  }
  syncPickAll();
  if (reread) schedule();
}

async function refresh() {
  sinceFetch = new Map();
  try {
    const response = await fetch(`${api}/tasks?${table.dataset.apiQuery}`, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) {
      showError(body.error || `HTTP ${response.status}`);
      return;
    }
    showError("");
    render(body);
    // The read may predate deltas that arrived meanwhile; they are at least as new: apply them again.
    const newer = sinceFetch;
    sinceFetch = null;
    applyDelta(Object.fromEntries([...newer].map(([uuid, task]) => [`task:${uuid}`, task])));
  } catch (err) {
    console.warn("tasks refresh failed:", err);
  } finally {
    sinceFetch = null;
  }
}

const schedule = rereader(refresh, REFRESH_MS);

if (table.dataset.live === "true") {
  subscribe(`celery/${source}`, () => schedule(), applyDelta);
}

// -- selection ---------------------------------------------------------------------------------
const pickAll = document.getElementById("pick-all");
const countEl = document.getElementById("selected-count");

function syncPickAll() {
  if (countEl) countEl.textContent = String(selected.size);
  if (!pickAll) return;
  const boxes = [...tbody.querySelectorAll("input.pick-box")];
  const ticked = boxes.filter((b) => b.checked).length;
  pickAll.checked = boxes.length > 0 && ticked === boxes.length;
  pickAll.indeterminate = ticked > 0 && ticked < boxes.length;
}

tbody.addEventListener("change", (event) => {
  const box = event.target.closest("input.pick-box");
  if (!box) return;
  if (box.checked) selected.add(box.value);
  else selected.delete(box.value);
  syncPickAll();
});

if (pickAll) {
  pickAll.addEventListener("change", () => {
    for (const box of tbody.querySelectorAll("input.pick-box")) {
      box.checked = pickAll.checked;
      if (box.checked) selected.add(box.value);
      else selected.delete(box.value);
    }
    syncPickAll();
  });
}

// -- controls ----------------------------------------------------------------------------------

// "2026-11-27T10:00" (UTC, as the page says), with a zone, or epoch seconds -> epoch seconds.
function toEpoch(label, text) {
  const raw = text.trim();
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw);
  let normal = raw.replace(" ", "T");
  if (/^\d{4}-\d{2}-\d{2}$/.test(normal)) normal += "T00:00";
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(normal)) normal += "Z";
  const ms = Date.parse(normal);
  if (Number.isNaN(ms)) throw new Error(`${label}: ${raw} is not a time like 2026-11-27T10:00 (UTC)`);
  return ms / 1000;
}

bindActions({
  "celery.retry_selected": (request) => {
    if (!selected.size) throw new Error("tick the tasks to retry first");
    const uuids = [...selected];
    request.params.uuids = uuids.join(",");
    request.target = `${uuids.length} selected task${uuids.length === 1 ? "" : "s"}`;
    request.confirmText = `Retry ${uuids.length} selected task${uuids.length === 1 ? "" : "s"}? Each failed or revoked `
      + "one is re-sent with its stored name and arguments to its queue, as a new task.";
  },
  "celery.retry_failures": async (request, form) => {
    const name = form.querySelector('[data-role="name"]').value.trim();
    const since = toEpoch("from", form.querySelector('[data-role="since"]').value);
    const until = toEpoch("until", form.querySelector('[data-role="until"]').value);
    if (!name) throw new Error("name the task whose failures to retry");
    const query = new URLSearchParams({ name, since: String(since), until: String(until) });
    const response = await fetch(`${api}/failures?${query}`, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    if (body.count === 0) throw new Error(`no failure of ${name} between ${iso(since)} and ${iso(until)}`);
    request.target = name;
    request.params = { since, until, expected: body.count };
    request.confirmText = `Retry all ${body.count.toLocaleString("en-US")} failure${body.count === 1 ? "" : "s"} of ${name} `
      + `between ${iso(since)} and ${iso(until)}? Each is re-sent with its stored arguments to its queue, as a new task.`;
  },
});

syncPickAll();
tickTimes();
