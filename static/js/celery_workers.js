// Workers list and worker detail: follow the room's worker deltas; online/offline is worked out
// as the API does (silent for two heartbeat intervals, or missing two inspect pings = offline)
// and re-checked every second, so a worker that goes quiet turns offline without any new data.
import { subscribe } from "./live.js";
import { now, num, setTime, source, tickTimes, workerUrl } from "./celery_common.js";
import { bindActions } from "./celery_actions.js";

const list = document.getElementById("workers");
const template = document.getElementById("worker-row");
const nodes = new Map(); // hostname -> element carrying data-hostname (a <tr>, or the detail page)

for (const node of document.querySelectorAll("[data-hostname]")) {
  if (node.dataset.hostname) nodes.set(node.dataset.hostname, node);
}

function field(node, name) {
  return node.querySelector(`[data-field="${name}"]`);
}

function isOnline(node, at = now()) {
  const d = node.dataset;
  const heartbeat = d.heartbeat === "" ? null : Number(d.heartbeat);
  const byEvents = d.flag === "true" && heartbeat !== null && at - heartbeat <= 2 * (Number(d.freq) || 2);
  const byPing = d.pinged !== "" && at - Number(d.pinged) <= 2 * (Number(d.poll) || 5);
  return byEvents || byPing;
}

function showOnline(node) {
  const online = isOnline(node);
  const badge = field(node, "online");
  if (badge.dataset.online === String(online)) return;
  badge.dataset.online = String(online);
  badge.querySelector(".state-symbol").textContent = online ? "●" : "✕";
  badge.querySelector(".state-label").textContent = online ? "online" : "offline";
}

function loadavg(values) {
  return Array.isArray(values) && values.length ? values.map((v) => Number(v).toFixed(2)).join(" ") : "–";
}

function set(node, name, text) {
  const target = field(node, name);
  if (target) target.textContent = text;
}

function update(hostname, item) {
  let node = nodes.get(hostname);
  if (!node) {
    if (!list) return; // the detail page follows its own worker only
    node = template.content.firstElementChild.cloneNode(true);
    node.dataset.hostname = hostname;
    const link = field(node, "hostname");
    link.textContent = hostname;
    link.href = workerUrl(hostname);
    nodes.set(hostname, node);
    list.querySelector("tbody").append(node);
    document.getElementById("no-workers").hidden = true;
  }
  const d = node.dataset;
  if ("online" in item) d.flag = String(Boolean(item.online));
  if (item.last_heartbeat != null) d.heartbeat = item.last_heartbeat;
  if (item.freq != null) d.freq = item.freq;
  if (item.info && typeof item.info === "object") {
    d.pinged = item.info.pinged_at ?? "";
    d.poll = item.info.poll_interval ?? "";
  }
  if (item.active != null) set(node, "active", String(item.active));
  if (item.processed != null) set(node, "processed", num(item.processed));
  if (item.loadavg != null) set(node, "loadavg", loadavg(item.loadavg));
  if (Array.isArray(item.drained)) {
    const badge = field(node, "drained");
    if (badge) badge.hidden = item.drained.length === 0;
  }
  setTime(field(node, "last_heartbeat"), d.heartbeat === "" ? null : Number(d.heartbeat));
  showOnline(node);
}

function summarize() {
  if (!list) return;
  const online = [...nodes.values()].filter((n) => isOnline(n)).length;
  document.getElementById("online-count").textContent = String(online);
  document.getElementById("worker-count").textContent = String(nodes.size);
}

function apply(items) {
  for (const [key, item] of items) {
    if (key.startsWith("worker:") && item) update(item.hostname || key.slice(7), item);
  }
  summarize();
}

subscribe(`celery/${source}`, (items) => apply(items.entries()), (delta) => apply(Object.entries(delta)));

setInterval(() => {
  for (const node of nodes.values()) showOnline(node);
  summarize();
}, 1000);

bindActions();
tickTimes();
