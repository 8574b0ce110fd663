// What every Celery page shares: the page's source, formatting that agrees with the server's
// filters (dashboard/views/pages.py, dashboard/views/celery_pages.py), and ticking relative times.
// Everything a watched system reports is untrusted: it is only ever set with textContent.

// Other pages (Dask, Kafka) reuse these helpers: their root element carries data-root as well.
const root = document.getElementById("celery") || document.querySelector("[data-root]");
export const source = root ? root.dataset.source : "";
export const base = root ? root.dataset.root : "";
export const api = `${base}/api/celery/${encodeURIComponent(source)}`;

// State -> [symbol, label] (dashboard/views/celery_pages.py TASK_STATES agrees).
export const STATES = {
  PENDING: ["○", "pending"], RECEIVED: ["◔", "received"], STARTED: ["▶", "started"], SUCCESS: ["✓", "success"],
  FAILURE: ["✕", "failure"], RETRY: ["↻", "retry"], REVOKED: ["⊘", "revoked"], REJECTED: ["⊗", "rejected"],
  LOST: ["?", "lost"],
};

// Server clock minus browser clock, so that ages do not depend on the browser's clock.
const skew = Number(document.body.dataset.serverNow) - Date.now() / 1000 || 0;

export function now() {
  return Date.now() / 1000 + skew;
}

export function ago(ts, at = now()) {
  if (ts === null || ts === undefined || ts === "") return "never";
  const age = Math.max(0, Math.floor(at - Number(ts)));
  if (age < 60) return `${age} s ago`;
  if (age < 3600) return `${Math.floor(age / 60)} min ago`;
  if (age < 86400) return `${Math.floor(age / 3600)} h ago`;
  return `${Math.floor(age / 86400)} d ago`;
}

export function iso(ts, ms = false) {
  if (ts === null || ts === undefined || ts === "") return "";
  const date = new Date(Number(ts) * 1000);
  if (Number.isNaN(date.getTime())) return `impossible time ${ts}`;  // as the server shows it
  const text = date.toISOString();
  return ms ? text : text.replace(/\.\d+Z$/, "Z");
}

export function secs(value) {
  if (value === null || value === undefined) return "–";
  const v = Number(value);
  if (v < 1) return `${(v * 1000).toFixed(0)} ms`;
  if (v < 60) return `${v.toFixed(2)} s`;
  if (v < 3600) return `${Math.floor(v / 60)} min ${Math.floor(v % 60)} s`;
  return `${Math.floor(v / 3600)} h ${Math.floor((v % 3600) / 60)} min`;
}

export function num(value) {
  if (value === null || value === undefined) return "–";
  return typeof value === "number" ? value.toLocaleString("en-US") : String(value);
}

export function shorten(text, limit = 80) {
  const s = text || "";
  return s.length <= limit ? s : s.slice(0, limit - 1) + "…";
}

// A <time data-ts> as the server renders it: relative text, exact UTC time in its title.
export function setTime(el, ts) {
  el.dataset.ts = ts ?? "";
  el.dateTime = iso(ts);
  el.title = iso(ts, true);
  el.textContent = ago(ts);
}

export function setState(el, state) {
  const [symbol, label] = STATES[state] || ["?", String(state || "unknown").toLowerCase()];
  el.dataset.state = state;
  el.querySelector(".state-symbol").textContent = symbol;
  el.querySelector(".state-label").textContent = label;
}

export function taskUrl(uuid) {
  return `${base}/celery/${encodeURIComponent(source)}/tasks/${encodeURIComponent(uuid)}`;
}

export function workerUrl(hostname) {
  return `${base}/celery/${encodeURIComponent(source)}/workers/${encodeURIComponent(hostname)}`;
}

export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// Relative times tick every second without any new data.
export function tickTimes() {
  setInterval(() => {
    const at = now();
    for (const t of document.querySelectorAll("time[data-ts]")) {
      if (t.dataset.ts !== "") t.textContent = ago(t.dataset.ts, at);
    }
  }, 1000);
}
