// What every Kafka page shares: its source and API, status words and number formats that agree
// with the server (dashboard/views/kafka_pages.py). Broker-reported names only go in via textContent.
const root = document.getElementById("kafka");
export const source = root ? root.dataset.source : "";
export const base = root ? root.dataset.root : "";
export const api = `${base}/api/kafka/${encodeURIComponent(source)}`;

// Status word -> symbol (dashboard/views/kafka_pages.py STATUSES agrees).
export const SYMBOLS = { OK: "●", WARN: "▲", ERR: "✕", REWIND: "↺", STALL: "◼", STOP: "■" };
export const SPARK = { w: 120, h: 24 };

export function setStatus(node, status, reason) {
  node.dataset.status = status;
  node.title = reason || "";
  node.querySelector(".state-symbol").textContent = SYMBOLS[status] || "?";
  node.querySelector(".status-word").textContent = status;
}

export function rate(value) {
  if (value === null || value === undefined) return "–";
  const v = Number(value);
  return `${v.toLocaleString("en-US", { maximumFractionDigits: v < 100 ? 1 : 0, minimumFractionDigits: v < 100 ? 1 : 0 })}/s`;
}

export function sparkPoints(values) {
  if (!values.length) return "";
  const top = Math.max(...values) || 1;
  const step = SPARK.w / Math.max(1, values.length - 1);
  return values.map((v, i) => `${(i * step).toFixed(1)},${(SPARK.h - 1 - (v / top) * (SPARK.h - 2)).toFixed(1)}`).join(" ");
}

export async function getJson(path) {
  const response = await fetch(`${api}${path}`, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

export function field(scope, name) {
  return scope.querySelector(`[data-field="${name}"]`);
}

// Keep `body`'s rows (keyed by dataset[key]) equal to `items` in order: update, add from the template, remove.
export function sync(body, template, items, keyOf, keyName, fill) {
  const rows = new Map([...body.querySelectorAll("tr")].map((tr) => [tr.dataset[keyName], tr]));
  const wanted = items.map((item) => {
    const key = keyOf(item);
    let tr = rows.get(key);
    if (!tr) {
      tr = template.content.firstElementChild.cloneNode(true);
      tr.dataset[keyName] = key;
    }
    rows.delete(key);
    fill(tr, item);
    return tr;
  });
  for (const gone of rows.values()) gone.remove();
  wanted.forEach((tr) => body.append(tr));
}

export function groupUrl(group) {
  return `${base}/kafka/${encodeURIComponent(source)}/groups/${encodeURIComponent(group)}`;
}

export function topicUrl(topic) {
  return `${base}/kafka/${encodeURIComponent(source)}/topics/${encodeURIComponent(topic)}`;
}
