// Consumer groups list: follow the source's room; each group row is updated in place, new groups
// are cloned from the page's <template>, gone groups removed, and the list kept worst first.
import { subscribe } from "./live.js";
import { num, secs, setTime, tickTimes } from "./celery_common.js";
import { groupUrl, rate, setStatus, source, sparkPoints, topicUrl } from "./kafka_common.js";

const SEVERITY = { STOP: 0, STALL: 1, REWIND: 2, ERR: 3, WARN: 4, OK: 5 };
const SPARK_MAX = 240; // dashboard/views/kafka_pages.py agrees
const list = document.getElementById("groups");
const body = list.querySelector("tbody");
const template = document.getElementById("group-row");
const rows = new Map(); // group -> <tr>

for (const tr of body.querySelectorAll("tr[data-group]")) rows.set(tr.dataset.group, tr);

function field(tr, name) {
  return tr.querySelector(`[data-field="${name}"]`);
}

function row(group) {
  let tr = rows.get(group);
  if (!tr) {
    tr = template.content.firstElementChild.cloneNode(true);
    tr.dataset.group = group;
    const link = field(tr, "group");
    link.textContent = group;
    link.href = groupUrl(group);
    rows.set(group, tr);
    body.append(tr);
  }
  return tr;
}

function seconds(value, extrapolated) {
  if (value === null || value === undefined) return "–";
  return `${secs(value)}${extrapolated ? " ≈" : ""}`;
}

function update(g) {
  const tr = row(g.group);
  if (tr.dataset.updated === String(g.updated_at)) return;
  tr.dataset.updated = String(g.updated_at);
  tr.dataset.status = g.status;
  tr.dataset.lag = String(g.lag);
  setStatus(field(tr, "status"), g.status, g.reason);
  field(tr, "reason").textContent = g.reason || "";
  field(tr, "lag").textContent = num(g.lag);
  field(tr, "lag_seconds").textContent = seconds(g.lag_seconds, g.extrapolated);
  field(tr, "partitions").textContent = String(g.partitions);
  const members = field(tr, "members");
  members.textContent = g.members === null || g.members === undefined ? "unknown" : String(g.members);
  members.title = g.members_note || "";
  field(tr, "consume_rate").textContent = rate(g.consume_rate);
  setTime(field(tr, "last_commit"), g.last_commit);
  const topics = field(tr, "topics");
  topics.replaceChildren();
  (g.topics || []).forEach((t, i) => {
    if (i) topics.append(document.createTextNode(", "));
    const a = document.createElement("a");
    a.textContent = t;
    a.href = topicUrl(t);
    topics.append(a);
  });
  const spark = field(tr, "spark");
  const values = spark.dataset.values ? spark.dataset.values.split(",").map(Number) : [];
  values.push(Number(g.lag));
  spark.dataset.values = values.slice(-SPARK_MAX).join(",");
  spark.querySelector("polyline").setAttribute("points", sparkPoints(values.slice(-SPARK_MAX)));
}

function order() {
  const sorted = [...rows.values()].sort((a, b) =>
    (SEVERITY[a.dataset.status] ?? 3) - (SEVERITY[b.dataset.status] ?? 3)
    || Number(b.dataset.lag || 0) - Number(a.dataset.lag || 0)
    || a.dataset.group.localeCompare(b.dataset.group));
  sorted.forEach((tr) => body.append(tr));
  document.getElementById("group-count").textContent = String(rows.size);
  document.getElementById("not-ok-count").textContent = String(sorted.filter((tr) => tr.dataset.status !== "OK").length);
  document.getElementById("no-groups").hidden = rows.size > 0;
}

function apply(entries) {
  for (const [key, item] of entries) {
    if (!key.startsWith("group:")) continue;
    const group = key.slice(6);
    if (item === null) {
      rows.get(group)?.remove();
      rows.delete(group);
    } else {
      update(item);
    }
  }
  order();
}

subscribe(`kafka/${source}`, (items) => {
  // A snapshot is the whole truth: rows it lacks are gone.
  for (const group of [...rows.keys()]) {
    if (!items.has(`group:${group}`)) apply([[`group:${group}`, null]]);
  }
  apply(items.entries());
}, (delta) => apply(Object.entries(delta)));

tickTimes();
