// A topic: its produce rate, each group's consume rate (and whether it keeps up), and the partitions,
// re-read from the API (at most once a second) whenever the source's room says a group consuming
// this topic changed, appeared or went. Rows are cloned from the page's <template>s and filled with
// textContent only: every name here comes from the broker.
import { rereader, subscribe } from "./live.js";
import { num } from "./celery_common.js";
import { field, getJson, groupUrl, rate, setStatus, source, sync } from "./kafka_common.js";

const page = document.getElementById("topic-page");
const topic = page.dataset.topic;
const topicPath = `/topics/${encodeURIComponent(topic)}`;
const MIN_GAP_MS = 1000;

const statusBlank = document.getElementById("rate-row").content.querySelector(".kstatus");

function fillRate(tr, c) {
  const link = field(tr, "group");
  link.textContent = c.group;
  link.href = groupUrl(c.group);
  const cell = field(tr, "status-cell");
  if (c.status) {
    if (!cell.querySelector(".kstatus")) cell.replaceChildren(statusBlank.cloneNode(true));
    setStatus(cell.querySelector(".kstatus"), c.status, "");
  } else {
    cell.textContent = "–";
  }
  field(tr, "rate").textContent = rate(c.rate);
  let verdict = "–";
  if (c.keeps_up === true) verdict = "yes";
  else if (c.keeps_up === false) verdict = `no: ${rate(c.short)} short`;
  field(tr, "keeps_up").textContent = verdict;
}

function fillPartition(tr, p) {
  field(tr, "group").textContent = p.group;
  field(tr, "partition").textContent = String(p.partition);
  field(tr, "end").textContent = num(p.end);
  field(tr, "committed").textContent = num(p.committed);
  field(tr, "lag").textContent = num(p.lag);
  setStatus(field(tr, "status"), p.status, p.reason);
}

async function refresh() {
  try {
    const body = await getJson(topicPath);
    document.getElementById("produce-rate").textContent = rate(body.topic.produce_rate);
    document.getElementById("partition-count").textContent = String(body.topic.partitions);
    sync(document.querySelector("#rates tbody"), document.getElementById("rate-row"), body.consumers,
      (c) => c.group, "group", fillRate);
    sync(document.querySelector("#partitions tbody"), document.getElementById("partition-row"), body.partitions,
      (p) => `${p.group}/${p.partition}`, "key", fillPartition);
  } catch (err) {
    // A topic no group consumes any more answers 404: the page keeps what it last showed.
    console.warn("kafka topic:", err);
  }
}

const schedule = rereader(refresh, MIN_GAP_MS);

// A group concerns this page if it consumes the topic, or is shown here and went or stopped consuming it.
function concerns(key, item) {
  if (!key.startsWith("group:")) return false;
  if (item && (item.topics || []).includes(topic)) return true;
  const name = key.slice(6);
  return [...document.querySelectorAll("#rates tbody tr")].some((tr) => tr.dataset.group === name);
}

subscribe(`kafka/${source}`, () => schedule(), (delta) => {
  if (Object.entries(delta).some(([key, item]) => concerns(key, item))) schedule();
});
